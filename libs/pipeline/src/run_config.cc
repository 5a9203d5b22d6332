// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/run_config.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace fg::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// Reads the keys of one JSON object, refusing unknown ones and wrong types, with the full
/// path of the option in every message ("streams[0].motion.width must be an integer").
class Obj {
  public:
    Obj(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

    Status Check(const std::set<std::string>& known) const {
        if (!j_.is_object()) return InvalidArgument(where_ + " must be an object");
        for (auto it = j_.begin(); it != j_.end(); ++it) {
            if (!known.count(it.key())) {
                return InvalidArgument("unknown option " + Path(it.key()));
            }
        }
        return Status::Ok();
    }
    std::string Path(const std::string& key) const {
        return where_.empty() ? key : where_ + "." + key;
    }
    bool Has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
    const json& At(const std::string& key) const { return j_.at(key); }

    Status Str(const std::string& key, std::string& out) const {
        if (!Has(key)) return Status::Ok();
        if (!At(key).is_string()) return InvalidArgument(Path(key) + " must be a string");
        out = At(key).get<std::string>();
        return Status::Ok();
    }
    Status Bool(const std::string& key, bool& out) const {
        if (!Has(key)) return Status::Ok();
        if (!At(key).is_boolean()) return InvalidArgument(Path(key) + " must be true or false");
        out = At(key).get<bool>();
        return Status::Ok();
    }
    template <typename T>
    Status Int(const std::string& key, T& out, long long lo, long long hi) const {
        if (!Has(key)) return Status::Ok();
        if (!At(key).is_number_integer()) return InvalidArgument(Path(key) + " must be an integer");
        const long long v = At(key).get<long long>();
        if (v < lo || v > hi) {
            return InvalidArgument(Path(key) + " must be in [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "], got " + std::to_string(v));
        }
        out = static_cast<T>(v);
        return Status::Ok();
    }
    template <typename T>
    Status Num(const std::string& key, T& out, double lo, double hi) const {
        if (!Has(key)) return Status::Ok();
        if (!At(key).is_number()) return InvalidArgument(Path(key) + " must be a number");
        const double v = At(key).get<double>();
        if (!(v >= lo && v <= hi)) {
            std::ostringstream os;
            os << Path(key) << " must be in [" << lo << ", " << hi << "], got " << v;
            return InvalidArgument(os.str());
        }
        out = static_cast<T>(v);
        return Status::Ok();
    }
    Status Ms(const std::string& key, std::chrono::milliseconds& out, long long lo,
              long long hi) const {
        long long v = out.count();
        FG_RETURN_IF_ERROR(Int(key, v, lo, hi));
        out = std::chrono::milliseconds(v);
        return Status::Ok();
    }

  private:
    const json& j_;
    std::string where_;
};

constexpr long long kDay = 86'400'000;

std::string Resolve(const fs::path& base, const std::string& p) {
    if (p.empty() || p == "-") return p;
    const fs::path path(p);
    return path.is_absolute() ? p : (base / path).lexically_normal().string();
}

Status ParseEngine(const json& j, EngineSection& e) {
    Obj o(j, "engine");
    FG_RETURN_IF_ERROR(o.Check({"pack", "detector_pack", "embedder_pack", "backend", "threads",
                                "score_threshold", "min_face", "flip"}));
    FG_RETURN_IF_ERROR(o.Str("pack", e.pack));
    FG_RETURN_IF_ERROR(o.Str("detector_pack", e.detector_pack));
    FG_RETURN_IF_ERROR(o.Str("embedder_pack", e.embedder_pack));
    FG_RETURN_IF_ERROR(o.Str("backend", e.backend));
    if (e.backend != "auto" && e.backend != "onednn" && e.backend != "opencv") {
        return InvalidArgument("engine.backend must be auto, onednn or opencv");
    }
    FG_RETURN_IF_ERROR(o.Int("threads", e.threads, 0, 256));
    FG_RETURN_IF_ERROR(o.Num("score_threshold", e.score_threshold, 0.0, 1.0));
    FG_RETURN_IF_ERROR(o.Num("min_face", e.min_face, 0.0, 100000.0));
    FG_RETURN_IF_ERROR(o.Bool("flip", e.flip));
    return Status::Ok();
}

Status ParseStream(const json& j, const std::string& where, const fs::path& base, StreamSpec& s) {
    Obj o(j, where);
    FG_RETURN_IF_ERROR(o.Check({"id", "uri", "kind", "transport", "queue_depth",
                                "process_every_frame", "pace", "loop", "folder_fps",
                                "open_timeout_ms", "read_timeout_ms", "stall_timeout_ms",
                                "reconnect", "device", "motion", "max_frame_pixels",
                                "verify_tls"}));
    stream::SourceConfig& c = s.source;
    if (!o.Has("id")) return InvalidArgument(where + ".id is required");
    if (!o.Has("uri")) return InvalidArgument(where + ".uri is required");
    FG_RETURN_IF_ERROR(o.Str("id", c.id));
    FG_RETURN_IF_ERROR(o.Str("uri", c.uri));
    std::string kind = "auto";
    FG_RETURN_IF_ERROR(o.Str("kind", kind));
    static const std::map<std::string, stream::SourceKind> kinds = {
        {"auto", stream::SourceKind::kAuto},     {"file", stream::SourceKind::kFile},
        {"rtsp", stream::SourceKind::kRtsp},     {"http", stream::SourceKind::kHttp},
        {"device", stream::SourceKind::kDevice}, {"folder", stream::SourceKind::kImageFolder}};
    if (!kinds.count(kind)) {
        return InvalidArgument(where + ".kind must be auto, file, rtsp, http, device or folder");
    }
    c.kind = kinds.at(kind);
    std::string transport = "tcp";
    FG_RETURN_IF_ERROR(o.Str("transport", transport));
    if (transport != "tcp" && transport != "udp") {
        return InvalidArgument(where + ".transport must be tcp or udp");
    }
    c.rtsp_transport = transport == "udp" ? stream::RtspTransport::kUdp : stream::RtspTransport::kTcp;
    // Local paths are relative to the config file; URLs and device numbers are left alone.
    const stream::SourceKind resolved = stream::ResolveKind(c);
    if (resolved == stream::SourceKind::kFile || resolved == stream::SourceKind::kImageFolder) {
        c.uri = Resolve(base, c.uri);
        if (c.kind == stream::SourceKind::kAuto) c.kind = stream::ResolveKind(c);
    }
    FG_RETURN_IF_ERROR(o.Int("queue_depth", c.queue_depth, 1, 1000));
    FG_RETURN_IF_ERROR(o.Bool("process_every_frame", c.process_every_frame));
    FG_RETURN_IF_ERROR(o.Bool("pace", c.pace_native_fps));
    FG_RETURN_IF_ERROR(o.Bool("loop", c.loop));
    FG_RETURN_IF_ERROR(o.Num("folder_fps", c.folder_fps, 0.01, 1000.0));
    FG_RETURN_IF_ERROR(o.Ms("open_timeout_ms", c.open_timeout, 100, kDay));
    FG_RETURN_IF_ERROR(o.Ms("read_timeout_ms", c.read_timeout, 100, kDay));
    FG_RETURN_IF_ERROR(o.Ms("stall_timeout_ms", c.stall_timeout, 100, kDay));
    FG_RETURN_IF_ERROR(o.Int("max_frame_pixels", c.max_frame_pixels, 1, 1'000'000'000));
    FG_RETURN_IF_ERROR(o.Bool("verify_tls", c.verify_tls));
    if (o.Has("reconnect")) {
        Obj r(o.At("reconnect"), where + ".reconnect");
        FG_RETURN_IF_ERROR(r.Check({"min_ms", "max_ms", "multiplier", "max_attempts"}));
        FG_RETURN_IF_ERROR(r.Ms("min_ms", c.reconnect.min, 1, kDay));
        FG_RETURN_IF_ERROR(r.Ms("max_ms", c.reconnect.max, 1, kDay));
        FG_RETURN_IF_ERROR(r.Num("multiplier", c.reconnect.multiplier, 1.0, 100.0));
        FG_RETURN_IF_ERROR(r.Int("max_attempts", c.reconnect.max_attempts, 0, 1'000'000'000));
    }
    if (o.Has("device")) {
        Obj d(o.At("device"), where + ".device");
        FG_RETURN_IF_ERROR(d.Check({"width", "height", "fps"}));
        FG_RETURN_IF_ERROR(d.Int("width", c.device_width, 0, 16384));
        FG_RETURN_IF_ERROR(d.Int("height", c.device_height, 0, 16384));
        FG_RETURN_IF_ERROR(d.Num("fps", c.device_fps, 0.0, 1000.0));
    }
    if (o.Has("motion")) {
        Obj m(o.At("motion"), where + ".motion");
        FG_RETURN_IF_ERROR(m.Check({"enabled", "width", "blur", "pixel_threshold",
                                    "min_changed_share", "background_rate",
                                    "compensate_brightness", "max_interval_frames",
                                    "max_interval_ms"}));
        FG_RETURN_IF_ERROR(m.Bool("enabled", s.motion_gate));
        stream::MotionGateConfig& g = s.motion;
        FG_RETURN_IF_ERROR(m.Int("width", g.width, 16, 1920));
        FG_RETURN_IF_ERROR(m.Int("blur", g.blur, 1, 99));
        FG_RETURN_IF_ERROR(m.Int("pixel_threshold", g.pixel_threshold, 1, 255));
        FG_RETURN_IF_ERROR(m.Num("min_changed_share", g.min_changed_share, 0.0, 1.0));
        FG_RETURN_IF_ERROR(m.Num("background_rate", g.background_rate, 0.0, 1.0));
        FG_RETURN_IF_ERROR(m.Bool("compensate_brightness", g.compensate_brightness));
        FG_RETURN_IF_ERROR(m.Int("max_interval_frames", g.max_interval_frames, 0, 1'000'000));
        FG_RETURN_IF_ERROR(m.Ms("max_interval_ms", g.max_interval, 0, kDay));
    }
    FG_RETURN_IF_ERROR(c.Validate().WithContext(where));
    if (s.motion_gate) FG_RETURN_IF_ERROR(s.motion.Validate().WithContext(where + ".motion"));
    return Status::Ok();
}

}  // namespace

Result<StreamSpec> ParseStreamSpec(const json& j, const std::string& where, const fs::path& base) {
    StreamSpec s;
    FG_RETURN_IF_ERROR(ParseStream(j, where, base, s));
    return s;
}

Result<RunConfig> ParseRunConfig(const json& j, const fs::path& base, bool require_streams) {
    RunConfig rc;
    Obj top(j, "");
    FG_RETURN_IF_ERROR(top.Check({"engine", "gallery", "history", "streams", "detect_interval",
                                  "settled_detect_interval", "mode",
                                  "tracker", "recognition", "liveness", "events", "draw_dir",
                                  "draw_fps", "embed_batch", "track_timeout_ms"}));
    if (top.Has("engine")) FG_RETURN_IF_ERROR(ParseEngine(top.At("engine"), rc.engine));
    if (top.Has("gallery")) {
        Obj g(top.At("gallery"), "gallery");
        FG_RETURN_IF_ERROR(g.Check({"db", "key_file", "key_env", "create"}));
        FG_RETURN_IF_ERROR(g.Bool("create", rc.gallery.create));
        FG_RETURN_IF_ERROR(g.Str("db", rc.gallery.db));
        FG_RETURN_IF_ERROR(g.Str("key_file", rc.gallery.key_file));
        FG_RETURN_IF_ERROR(g.Str("key_env", rc.gallery.key_env));
        if (!rc.gallery.db.starts_with("postgres")) rc.gallery.db = Resolve(base, rc.gallery.db);
        rc.gallery.key_file = Resolve(base, rc.gallery.key_file);
    }
    if (top.Has("history")) {
        Obj h(top.At("history"), "history");
        FG_RETURN_IF_ERROR(h.Check({"enabled", "location", "retention_days", "keep_crops"}));
        FG_RETURN_IF_ERROR(h.Bool("enabled", rc.history.enabled));
        FG_RETURN_IF_ERROR(h.Str("location", rc.history.location));
        FG_RETURN_IF_ERROR(h.Int("retention_days", rc.history.retention_days, 0, 36500));
        FG_RETURN_IF_ERROR(h.Bool("keep_crops", rc.history.keep_crops));
        if (!rc.history.location.empty() && !rc.history.location.starts_with("postgres"))
            rc.history.location = Resolve(base, rc.history.location);
    }
    PipelineConfig& p = rc.pipeline;
    const bool no_streams = !top.Has("streams") && !require_streams;
    if (!no_streams && (!top.Has("streams") || !top.At("streams").is_array() ||
                        (require_streams && top.At("streams").empty()))) {
        return InvalidArgument(require_streams ? "streams must be a non-empty list"
                                               : "streams must be a list");
    }
    for (std::size_t i = 0; !no_streams && i < top.At("streams").size(); ++i) {
        StreamSpec s;
        FG_RETURN_IF_ERROR(ParseStream(top.At("streams")[i], "streams[" + std::to_string(i) + "]",
                                       base, s));
        p.streams.push_back(std::move(s));
    }
    std::string mode = "default";
    FG_RETURN_IF_ERROR(top.Str("mode", mode));
    if (mode != "default" && mode != "naive") return InvalidArgument("mode must be default or naive");
    p.mode = mode == "naive" ? PipelineMode::kNaive : PipelineMode::kDefault;
    FG_RETURN_IF_ERROR(top.Int("detect_interval", p.detect_interval, 1, 1000));
    // Unless given, never below detect_interval (a slower base cadence stays the floor).
    p.settled_detect_interval = std::max(p.settled_detect_interval, p.detect_interval);
    FG_RETURN_IF_ERROR(top.Int("settled_detect_interval", p.settled_detect_interval, 1, 1000));
    FG_RETURN_IF_ERROR(top.Int("embed_batch", p.embed_batch, 1, 256));
    FG_RETURN_IF_ERROR(top.Str("draw_dir", p.draw_dir));
    p.draw_dir = Resolve(base, p.draw_dir);
    FG_RETURN_IF_ERROR(top.Num("draw_fps", p.draw_fps, 0.1, 1000.0));
    FG_RETURN_IF_ERROR(top.Ms("track_timeout_ms", p.track_timeout, 0, kDay));
    if (top.Has("tracker")) {
        Obj t(top.At("tracker"), "tracker");
        track::TrackerConfig& c = p.tracker;
        FG_RETURN_IF_ERROR(t.Check({"high_thresh", "low_thresh", "new_track_thresh", "match_iou",
                                    "low_match_iou", "min_hits", "max_lost_frames"}));
        FG_RETURN_IF_ERROR(t.Num("high_thresh", c.high_thresh, 0.0, 1.0));
        FG_RETURN_IF_ERROR(t.Num("low_thresh", c.low_thresh, 0.0, 1.0));
        FG_RETURN_IF_ERROR(t.Num("new_track_thresh", c.new_track_thresh, 0.0, 1.0));
        FG_RETURN_IF_ERROR(t.Num("match_iou", c.match_iou, 0.0, 1.0));
        FG_RETURN_IF_ERROR(t.Num("low_match_iou", c.low_match_iou, 0.0, 1.0));
        FG_RETURN_IF_ERROR(t.Int("min_hits", c.min_hits, 1, 1000));
        FG_RETURN_IF_ERROR(t.Int("max_lost_frames", c.max_lost_frames, 1, 100000));
    }
    if (top.Has("recognition")) {
        Obj r(top.At("recognition"), "recognition");
        RecognitionPolicy& c = p.recognition;
        FG_RETURN_IF_ERROR(r.Check({"min_quality", "patience_frames", "quality_gain",
                                    "min_gap_frames", "recheck_interval_ms", "unknown_min_faces",
                                    "max_embeddings"}));
        FG_RETURN_IF_ERROR(r.Num("min_quality", c.min_quality, 0.0, 1.0));
        FG_RETURN_IF_ERROR(r.Int("patience_frames", c.patience_frames, 0, 100000));
        FG_RETURN_IF_ERROR(r.Num("quality_gain", c.quality_gain, 0.0, 1.0));
        FG_RETURN_IF_ERROR(r.Int("min_gap_frames", c.min_gap_frames, 1, 100000));
        FG_RETURN_IF_ERROR(r.Int("recheck_interval_ms", c.recheck_interval_ms, 0, kDay));
        FG_RETURN_IF_ERROR(r.Int("unknown_min_faces", c.unknown_min_faces, 1, 1000));
        FG_RETURN_IF_ERROR(r.Int("max_embeddings", c.max_embeddings, 1, 1000));
    }
    if (top.Has("liveness")) {
        Obj l(top.At("liveness"), "liveness");
        FG_RETURN_IF_ERROR(l.Check({"enabled", "preset", "threshold", "min_frames"}));
        FG_RETURN_IF_ERROR(l.Bool("enabled", p.liveness));
        FG_RETURN_IF_ERROR(l.Str("preset", p.liveness_preset));
        FG_RETURN_IF_ERROR(l.Num("threshold", p.liveness_threshold, 0.0, 1.0));
        FG_RETURN_IF_ERROR(l.Int("min_frames", p.liveness_min_frames, 1, 1000));
    }
    if (top.Has("events")) {
        Obj e(top.At("events"), "events");
        FG_RETURN_IF_ERROR(e.Check({"best_shot_crops", "sinks"}));
        FG_RETURN_IF_ERROR(e.Bool("best_shot_crops", p.best_shot_crops));
        if (e.Has("sinks")) {
            if (!e.At("sinks").is_array()) return InvalidArgument("events.sinks must be a list");
            rc.sinks = e.At("sinks");
            for (auto& s : rc.sinks) {
                // Not s.value("type", ""): it throws on a non-string type (fg_fuzz_run_config);
                // the sink factory reports that one with its field name.
                const auto type = s.is_object() ? s.find("type") : s.end();
                if (type != s.end() && type->is_string() && *type == "jsonl" &&
                    s.contains("path") && s["path"].is_string()) {
                    s["path"] = Resolve(base, s["path"].get<std::string>());
                }
            }
        }
    }
    if (!top.Has("events") || !Obj(top.At("events"), "events").Has("sinks")) {
        rc.sinks = json::array({{{"type", "jsonl"}, {"path", "-"}}});  // stdout
    }
    // The engine's score_threshold says what a face is; weaker detections only feed the
    // tracker's second stage (the commands run the detector at tracker.low_thresh).
    p.face_score_threshold = rc.engine.score_threshold;
    FG_RETURN_IF_ERROR(p.Validate());
    return rc;
}

Result<RunConfig> LoadRunConfig(const fs::path& file) {
    std::ifstream in(file);
    if (!in) return NotFound("cannot read config file " + file.string());
    json j;
    try {
        j = json::parse(in, nullptr, true, /*ignore_comments=*/true);
    } catch (const json::parse_error& e) {
        return InvalidArgument("config file " + file.string() + " is not valid JSON: " + e.what());
    }
    auto r = ParseRunConfig(j, file.parent_path());
    if (!r.ok()) return r.status().WithContext(file.string());
    return r;
}

}  // namespace fg::pipeline
