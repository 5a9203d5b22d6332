// SPDX-License-Identifier: Apache-2.0
// facegate edge: the scale-out edge role (docs/scale.md). Runs the streams up to face selection
// (sources, motion gate, detect, track, best shots, alignment) and publishes each selected face
// as a face item on the bus (never a frame), through EdgePublisher's on-disk buffer while the
// bus is down. Optionally also decides locally against a gallery replica, so a door still opens
// without the bus.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <spdlog/spdlog.h>

#include "common.h"
#include "fg/cluster/cluster_status.h"
#include "stream_root.h"
#include "fg/bus/edge_publisher.h"
#include "fg/bus/kafka.h"
#include "fg/bus/nats.h"
#include "fg/gallery/crypto.h"
#include "fg/pipeline/pipeline.h"

namespace fg::cli {
namespace {

std::atomic<bool> g_stop{false};
// The first SIGTERM / Ctrl-C stops cleanly (buffer kept on disk); a second one exits at once.
extern "C" void OnEdgeSignal(int) {
    if (g_stop.exchange(true)) std::_Exit(130);
}

struct EdgeArgs {
    std::string config;
    std::string bus = "nats://127.0.0.1:4222";
    std::string region = "default";
    std::string node_id;  ///< name in `cluster status` (default edge-<region>-<epoch>)
    // Passive liveness per track (it needs the whole frame, so it runs here); the fused verdict
    // travels in every face item and the worker decides spoof / not yet live from it.
    bool liveness = false;
    std::string liveness_preset;
    float liveness_threshold = 0.5f;
    std::vector<std::string> streams;  ///< id=url
    std::string buffer_dir;
    double buffer_max_mb = 256;
    std::uint64_t buffer_max_items = 1'000'000;
    std::string local_gallery;
    std::string events = "-";
    std::string key_file;
    std::string key_env = "FG_GALLERY_KEY";
    bool no_seal = false;
    int publish_timeout_ms = 2000;
    bool every_frame = false;
    bool loop = false;
    bool no_motion = false;
    bool measure_frames = false;
    std::string stats_file;
    EngineOptions engine;
};

/// The file form of the flags (docs/scale.md, "Edge"): flags given on the command line win.
Status LoadEdgeConfig(const std::string& file, EdgeArgs& a, const CLI::App& cmd) {
    std::ifstream in(file);
    if (!in) return NotFound("edge config " + file + " cannot be read");
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return InvalidArgument("edge config " + file + ": not a JSON object");
    auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
    try {
        for (const auto& [k, v] : j.items()) {
            if (k == "bus") { if (!given("--bus")) a.bus = v.get<std::string>(); }
            else if (k == "region") { if (!given("--region")) a.region = v.get<std::string>(); }
            else if (k == "node_id") { if (!given("--node-id")) a.node_id = v.get<std::string>(); }
            else if (k == "liveness") { if (!given("--liveness")) a.liveness = v.get<bool>(); }
            else if (k == "liveness_preset") { if (!given("--liveness-preset")) a.liveness_preset = v.get<std::string>(); }
            else if (k == "liveness_threshold") { if (!given("--liveness-threshold")) a.liveness_threshold = v.get<float>(); }
            else if (k == "buffer_dir") { if (!given("--buffer-dir")) a.buffer_dir = v.get<std::string>(); }
            else if (k == "buffer_max_mb") { if (!given("--buffer-max-mb")) a.buffer_max_mb = v.get<double>(); }
            else if (k == "buffer_max_items") { if (!given("--buffer-max-items")) a.buffer_max_items = v.get<std::uint64_t>(); }
            else if (k == "local_gallery") { if (!given("--local-gallery")) a.local_gallery = v.get<std::string>(); }
            else if (k == "events") { if (!given("--events")) a.events = v.get<std::string>(); }
            else if (k == "key_file") { if (!given("--key-file")) a.key_file = v.get<std::string>(); }
            else if (k == "seal") { if (!given("--no-seal")) a.no_seal = !v.get<bool>(); }
            else if (k == "publish_timeout_ms") { if (!given("--publish-timeout-ms")) a.publish_timeout_ms = v.get<int>(); }
            else if (k == "streams") {
                if (given("--stream")) continue;
                for (const auto& s : v) a.streams.push_back(s.at("id").get<std::string>() + "=" + s.at("url").get<std::string>());
            } else {
                return InvalidArgument("edge config " + file + ": unknown field '" + k + "'");
            }
        }
    } catch (const nlohmann::json::exception& e) {
        return InvalidArgument("edge config " + file + ": " + e.what());
    }
    return Status::Ok();
}

/// A bus that may not be reachable yet: the edge starts (and buffers) without it, and connects
/// on a later publish (at most once per retry interval).
class LazyBus final : public bus::Bus {
  public:
    explicit LazyBus(std::function<Result<std::unique_ptr<bus::Bus>>()> make) : make_(std::move(make)) {}
    Result<bus::PublishAck> Publish(const bus::Route& route, const std::string& id, std::string_view data) override {
        bus::Bus* b = Get();
        if (!b) return Unavailable("bus not connected yet");
        return b->Publish(route, id, data);
    }
    Result<std::unique_ptr<bus::Consumer>> Subscribe(const bus::Subscription& sub) override {
        bus::Bus* b = Get();
        if (!b) return Unavailable("bus not connected yet");
        return b->Subscribe(sub);
    }
    bus::BusStats stats() const override {
        std::lock_guard lock(mu_);
        return bus_ ? bus_->stats() : bus::BusStats{};
    }
    /// The connected bus's request/reply (null until connected, and on Kafka). Never connects.
    bus::Rpc* rpc() override {
        std::lock_guard lock(mu_);
        return bus_ ? bus_->rpc() : nullptr;
    }
    bus::Bus* Get() {
        std::lock_guard lock(mu_);
        if (bus_) return bus_.get();
        const auto now = std::chrono::steady_clock::now();
        if (now < next_try_) return nullptr;
        Result<std::unique_ptr<bus::Bus>> b = make_();
        if (!b.ok()) {
            spdlog::warn("edge: bus: {}", b.status().ToString());
            next_try_ = now + std::chrono::seconds(1);
            return nullptr;
        }
        bus_ = std::move(*b);
        return bus_.get();
    }

  private:
    std::function<Result<std::unique_ptr<bus::Bus>>()> make_;
    mutable std::mutex mu_;
    std::unique_ptr<bus::Bus> bus_;
    std::chrono::steady_clock::time_point next_try_{};
};

/// Hands every face item face selection produces to the publisher (on the stream threads).
class EdgeObserver final : public pipeline::PipelineObserver {
  public:
    explicit EdgeObserver(bus::EdgePublisher& publisher) : publisher_(publisher) {}
    void OnFaceItems(const std::vector<pipeline::FaceItem>& items) override {
        for (const pipeline::FaceItem& item : items) {
            if (Status st = publisher_.Submit(item); !st.ok())
                spdlog::error("edge: face item of stream '{}' lost: {}", item.stream_id, st.ToString());
        }
    }

  private:
    bus::EdgePublisher& publisher_;
};

/// --measure-frames: what sending whole frames would cost instead (the BENCHMARKS.md figure):
/// every processed frame JPEG-encoded at the source's size (quality 90), bytes summed.
class FrameBytesObserver final : public pipeline::PipelineObserver {
  public:
    void OnFrame(const pipeline::FrameView& view) override {
        if (!view.frame || view.frame->image.empty()) return;
        std::vector<uchar> jpeg;
        if (!cv::imencode(".jpg", view.frame->image, jpeg, {cv::IMWRITE_JPEG_QUALITY, 90})) return;
        bytes_.fetch_add(jpeg.size());
        frames_.fetch_add(1);
    }
    std::uint64_t bytes() const { return bytes_.load(); }
    std::uint64_t frames() const { return frames_.load(); }

  private:
    std::atomic<std::uint64_t> bytes_{0};
    std::atomic<std::uint64_t> frames_{0};
};

Result<std::unique_ptr<bus::Bus>> MakeBus(const EdgeArgs& a) {
    const std::chrono::milliseconds timeout(a.publish_timeout_ms);
    if (a.bus.starts_with("nats://") || a.bus.starts_with("tls://")) {
        bus::NatsConfig c;
        c.url = a.bus;
        c.name = "facegate-edge";
        c.publish_timeout = timeout;
        c.ack_timeout = std::min(timeout, std::chrono::milliseconds(1000));
        return bus::CreateNatsBus(c);
    }
    if (a.bus.starts_with("kafka://")) {
        bus::KafkaConfig c;
        c.bootstrap_servers = a.bus.substr(8);
        c.publish_timeout = timeout;
        return bus::CreateKafkaBus(c);
    }
    return InvalidArgument("--bus must be nats://host:port or kafka://broker,... (got '" + a.bus + "')");
}

nlohmann::json StatsJson(const bus::EdgePublisherStats& s, const pipeline::PipelineStats& p) {
    double media_seconds = 0;
    for (const auto& st : p.streams) media_seconds += st.media_seconds;
    return {{"items", s.items},       {"published", s.published}, {"buffered", s.buffered},
            {"drained", s.drained},   {"dropped", s.dropped},     {"buffer_depth", s.depth},
            {"duplicates", s.duplicates}, {"bus_up", s.bus_up},   {"item_bytes", s.bytes},
            {"frames", p.frames},     {"media_seconds", media_seconds},
            {"detector_runs", p.detector_runs}, {"embeddings", p.embeddings}, {"events", p.events}};
}

int RunEdge(EdgeArgs a, const CLI::App& cmd) {
    if (!a.config.empty()) {
        if (Status st = LoadEdgeConfig(a.config, a, cmd); !st.ok()) return Fail(st);
    }
    if (a.streams.empty()) return Fail(InvalidArgument("no stream: pass --stream id=url (or \"streams\" in --config)"));
    if (a.buffer_dir.empty()) return Fail(InvalidArgument("--buffer-dir is required (the on-disk buffer)"));
    if (a.buffer_max_mb <= 0) return Fail(InvalidArgument("--buffer-max-mb must be > 0"));
    if (a.publish_timeout_ms < 100) return Fail(InvalidArgument("--publish-timeout-ms must be >= 100"));
    if (Status st = bus::ValidToken(a.region, "--region"); !st.ok()) return Fail(st);
    if (!a.bus.starts_with("nats://") && !a.bus.starts_with("tls://") && !a.bus.starts_with("kafka://"))
        return Fail(MakeBus(a).status());
    pipeline::PipelineConfig pc;
    pc.liveness = a.liveness;
    pc.liveness_preset = a.liveness_preset;
    pc.liveness_threshold = a.liveness_threshold;
    if (Status st = pc.Validate(); !st.ok() && a.liveness) return Fail(st);
    for (const std::string& s : a.streams) {
        const auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
            return Fail(InvalidArgument("--stream wants id=url, got '" + s + "'"));
        pipeline::StreamSpec spec;
        spec.source.id = s.substr(0, eq);
        spec.source.uri = s.substr(eq + 1);
        spec.source.process_every_frame = a.every_frame;
        spec.source.loop = a.loop;
        spec.motion_gate = !a.no_motion;
        // The stream id is the camera token of the bus route: check it now, not per item.
        if (Status st = bus::ValidToken(spec.source.id, "--stream id"); !st.ok()) return Fail(st);
        pc.streams.push_back(spec);
    }

    // Sealing key (the gallery key the workers hold): the bus and the buffer keep face crops.
    std::shared_ptr<const gallery::KeyRing> keys;
    if (!a.no_seal) {
        auto k = ResolveGalleryKeys({.db = "", .key_file = a.key_file, .key_env = a.key_env, .create = false});
        if (!k.ok()) return Fail(k.status().WithContext("sealing key (--key-file / $" + a.key_env + ")"));
        keys = *k;
    }
    auto epoch = bus::NextEdgeEpoch(a.buffer_dir);
    if (!epoch.ok()) return Fail(epoch.status());
    bus::DiskBufferOptions bo;
    bo.dir = a.buffer_dir;
    bo.max_bytes = static_cast<std::uint64_t>(a.buffer_max_mb * 1024 * 1024);
    bo.max_records = a.buffer_max_items;
    auto buffer = bus::DiskBuffer::Open(bo);
    if (!buffer.ok()) return Fail(buffer.status());
    if (const auto held = (*buffer)->depth(); held > 0)
        spdlog::info("edge: {} face item(s) buffered by a previous run; draining them first", held);

    auto bus_ptr = std::make_shared<LazyBus>([a] { return MakeBus(a); });
    (void)bus_ptr->Get();  // connect now if the bus is up; buffer otherwise
    bus::EdgePublisher publisher(bus_ptr, std::move(*buffer),
                                 {.region = a.region, .keys = keys, .epoch = *epoch});

    StreamRootConfig rootc;
    rootc.engine = a.engine;
    if (!a.local_gallery.empty()) {
        // Local decisions: the in-process recognition against a gallery replica; its events
        // (recognized / unknown_face) go to --events (stdout by default).
        rootc.gallery = {a.local_gallery, a.key_file, a.key_env, false};
        rootc.sinks.push_back({{"type", "jsonl"}, {"path", a.events}});
        rootc.sinks_field = "--events";
        pc.recognize = true;
    } else {
        pc.recognize = false;
    }
    auto root = StreamRoot::Build(rootc);
    if (!root.ok()) return Fail(root.status());
    auto observer = std::make_shared<EdgeObserver>(publisher);
    std::vector<std::shared_ptr<pipeline::PipelineObserver>> observers{observer};
    auto frame_bytes = std::make_shared<FrameBytesObserver>();
    if (a.measure_frames) observers.push_back(frame_bytes);
    auto p = root->MakePipeline(pc, nullptr, observers);
    if (!p.ok()) return Fail(p.status());

    std::signal(SIGINT, OnEdgeSignal);
    std::signal(SIGTERM, OnEdgeSignal);
    if (Status st = publisher.Start(); !st.ok()) return Fail(st);
    if (Status st = (*p)->Start(); !st.ok()) return Fail(st);
    spdlog::info("edge: region '{}', {} stream(s), epoch {}, bus {}", a.region, pc.streams.size(), *epoch, a.bus);
    // `facegate cluster status` sees this edge (its buffer above all) once the bus is connected
    // (NATS; Kafka has no request/reply).
    const std::int64_t started = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    const std::string node = a.node_id.empty() ? "edge-" + a.region + "-" + std::to_string(*epoch) : a.node_id;
    std::unique_ptr<cluster::StatusResponder> status;
    // Runs until SIGTERM / Ctrl-C, or until every (finite) source has ended.
    while (!g_stop && !(*p)->WaitFinished(std::chrono::milliseconds(200))) {
        if (!status && bus_ptr->rpc() != nullptr) {
            status = std::make_unique<cluster::StatusResponder>(bus_ptr->rpc(), [&] {
                cluster::NodeStatus st{.node = node, .role = "edge", .region = a.region};
                st.started_unix_ms = started;
                nlohmann::json c = StatsJson(publisher.stats(), (*p)->Stats());
                c["bus_up"] = c["bus_up"].get<bool>() ? 1 : 0;  // counters are numbers
                st.counters = std::move(c);
                return st;
            });
            if (Status st = status->Start(); !st.ok()) spdlog::warn("edge: no cluster status: {}", st.message());
        }
    }
    status.reset();  // before the pipeline and publisher it reads
    (*p)->Stop();
    // Finite sources: give the drain a bounded chance to empty the buffer; what stays is kept
    // on disk for the next run.
    while (!g_stop && !publisher.WaitDrained(std::chrono::milliseconds(200))) {
    }
    publisher.Stop();
    nlohmann::json summary = StatsJson(publisher.stats(), (*p)->Stats());
    if (a.measure_frames) {
        summary["frame_jpeg_bytes"] = frame_bytes->bytes();
        summary["frame_jpeg_frames"] = frame_bytes->frames();
        const auto item_bytes = summary["item_bytes"].get<std::uint64_t>();
        if (frame_bytes->bytes() > 0)
            summary["saved_share"] = 1.0 - static_cast<double>(item_bytes) / static_cast<double>(frame_bytes->bytes());
    }
    std::cerr << summary.dump() << "\n";
    if (!a.stats_file.empty()) {
        std::ofstream out(a.stats_file, std::ios::trunc);
        out << summary.dump() << "\n";
    }
    int code = kExitOk;
    for (const auto& s : (*p)->Stats().streams) {
        if (s.source.state != stream::SourceState::kFailed) continue;
        code = Fail(FailedPrecondition("stream '" + s.id + "' failed: " + s.source.last_error));
    }
    return code;
}

}  // namespace

void RegisterEdgeCommands(CLI::App& app, Action& action) {
    auto a = std::make_shared<EdgeArgs>();
    auto* cmd = app.add_subcommand(
        "edge", "scale-out edge: streams -> best shots -> face items on the bus, buffered on disk "
                "while the bus is down (docs/scale.md)");
    cmd->add_option("--config", a->config, "JSON file with the options below (flags win)");
    cmd->add_option("--bus", a->bus, "nats://host:port[,..] or kafka://broker[,..]")->capture_default_str();
    cmd->add_flag("--liveness", a->liveness,
                  "Passive liveness per track (the pack's liveness models); the verdict travels in each face item");
    cmd->add_option("--liveness-preset", a->liveness_preset, "Liveness preset (default: the pack's default)");
    cmd->add_option("--liveness-threshold", a->liveness_threshold, "Liveness threshold")->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--node-id", a->node_id, "Name in `facegate cluster status` (default edge-<region>-<epoch>)");
    cmd->add_option("--region", a->region, "region token of the routes (fg.faces.<region>.<stream>)")
        ->capture_default_str();
    cmd->add_option("--stream", a->streams, "a stream as id=url (file, rtsp://, http://, /dev/videoN, folder); repeatable");
    cmd->add_option("--buffer-dir", a->buffer_dir, "directory of the on-disk buffer (and the run epoch)");
    cmd->add_option("--buffer-max-mb", a->buffer_max_mb, "buffer bound in MiB (the oldest items are dropped past it)")
        ->capture_default_str();
    cmd->add_option("--buffer-max-items", a->buffer_max_items, "buffer bound in items")->capture_default_str();
    cmd->add_option("--local-gallery", a->local_gallery,
                    "also decide locally against this gallery (a replica), events to --events");
    cmd->add_option("--events", a->events, "JSON-lines file of the local decisions ('-' = stdout)")->capture_default_str();
    cmd->add_option("--key-file", a->key_file, "gallery key that seals face items (else $FG_GALLERY_KEY, else the per-user key)");
    cmd->add_flag("--no-seal", a->no_seal, "publish face items unsealed (a trusted, encrypted bus only)");
    cmd->add_option("--publish-timeout-ms", a->publish_timeout_ms,
                    "a publish not stored by the bus within this is buffered on disk")->capture_default_str();
    cmd->add_flag("--every-frame", a->every_frame, "process every frame of a file as fast as possible (tests, benchmarks)");
    cmd->add_flag("--loop", a->loop, "loop finite sources");
    cmd->add_flag("--no-motion", a->no_motion, "no motion gate");
    cmd->add_flag("--measure-frames", a->measure_frames,
                  "also JPEG-encode every processed frame and report what sending frames would cost");
    cmd->add_option("--stats", a->stats_file, "write the final counters as JSON to this file");
    a->engine.AddTo(*cmd);
    cmd->callback([a, cmd, &action] { action = [a, cmd] { return RunEdge(*a, *cmd); }; });
}

}  // namespace fg::cli
