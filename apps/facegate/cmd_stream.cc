// SPDX-License-Identifier: Apache-2.0
// facegate run --config FILE      streams + gallery + sinks from one config file
// facegate bench stream --video F  one video as fast as possible; frames, fps, latency, ...
// facegate bench cameras --video F how many cameras playing F in real time one box sustains
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include "common.h"
#include "stream_root.h"
#include "fg/events/sink.h"
#include "fg/gallery/gallery.h"
#include "fg/pipeline/pipeline.h"
#include "fg/pipeline/run_config.h"

namespace fg::cli {
namespace {

/// CPU time (user + system) of the whole process so far, every thread: decoder, FFmpeg's
/// own threads, stream and embedding threads.
double ProcessCpuSeconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_reload{false};

extern "C" void OnReloadSignal(int) { g_reload = true; }

/// SIGHUP: re-reads the config file and applies its `streams` list while the others keep
/// running (Pipeline::SetStreams: removed, added, changed ones restarted, unchanged ones keep
/// their tracks and connection). The rest of the file (engine, gallery, sinks, pipeline
/// settings) is not reloaded: that needs a restart, and we say so. A config that does not
/// parse or validate changes nothing.
void ReloadStreams(const std::string& file, pipeline::Pipeline& p) {
    auto rc = pipeline::LoadRunConfig(file);
    if (!rc.ok()) {
        spdlog::error("reload: config not applied, the streams keep running: {}",
                      rc.status().ToString());
        return;
    }
    auto u = p.SetStreams(rc->pipeline.streams);
    if (!u.ok()) {
        spdlog::error("reload: config not applied: {}", u.status().ToString());
        return;
    }
    for (const std::string& e : u->errors) spdlog::error("reload: {}", e);
    spdlog::info("reload: {} stream(s) added, {} removed, {} restarted, {} running (only the "
                 "streams list is reloaded; other changes need a restart)",
                 u->added, u->removed, u->restarted, u->running);
}

// The first Ctrl-C stops cleanly; a second one exits at once, should shutdown be stuck.
extern "C" void OnSignal(int) {
    if (g_interrupted.exchange(true)) std::_Exit(130);
}

nlohmann::json StatsJson(const pipeline::PipelineStats& s, double seconds) {
    nlohmann::json streams = nlohmann::json::array();
    for (const auto& st : s.streams) {
        streams.push_back({{"id", st.id},
                           {"frames", st.frames},
                           {"detector_runs", st.detector_runs},
                           {"gated", st.gated},
                           {"embeddings", st.embeddings},
                           {"tracks", st.tracks_started},
                           {"events", st.events},
                           {"dropped", st.source.frames_dropped},
                           {"reconnects", st.source.reconnects},
                           {"state", std::string(stream::SourceStateName(st.source.state))},
                           {"latency_p50_ms", st.latency.p50_ms},
                           {"latency_p99_ms", st.latency.p99_ms},
                           {"recognized_latency_p50_ms", st.recognized_latency.p50_ms},
                           {"recognized_latency_p99_ms", st.recognized_latency.p99_ms},
                           {"media_seconds", st.media_seconds}});
    }
    return {{"frames", s.frames},
            {"seconds", seconds},
            {"fps", seconds > 0 ? static_cast<double>(s.frames) / seconds : 0.0},
            {"detector_runs", s.detector_runs},
            {"gated_frames", s.gated},
            {"gated_share", s.frames ? static_cast<double>(s.gated) / s.frames : 0.0},
            {"embeddings", s.embeddings},
            {"embed_batches", s.embed_batches},
            {"events", s.events},
            {"identities", s.identities},
            {"latency_p50_ms", s.latency.p50_ms},
            {"latency_p99_ms", s.latency.p99_ms},
            {"recognized", s.recognized_latency.samples},
            {"recognized_latency_p50_ms", s.recognized_latency.p50_ms},
            {"recognized_latency_p99_ms", s.recognized_latency.p99_ms},
            {"streams", streams}};
}

int RunConfigFile(const std::string& file, const std::string& draw_dir, bool create) {
    auto rc = pipeline::LoadRunConfig(file);
    if (!rc.ok()) return Fail(rc.status());
    if (!draw_dir.empty()) rc->pipeline.draw_dir = draw_dir;
    StreamRootConfig rootc{
        FromSection(rc->engine),
        {rc->gallery.db, rc->gallery.key_file, rc->gallery.key_env, create || rc->gallery.create},
        {}};
    for (const auto& sc : rc->sinks) rootc.sinks.push_back(sc);
    rootc.history = rc->history;
    auto root = StreamRoot::Build(rootc);
    if (!root.ok()) return Fail(root.status());
    auto p = root->MakePipeline(rc->pipeline);
    if (!p.ok()) return Fail(p.status());

    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::signal(SIGHUP, OnReloadSignal);
    const auto t0 = std::chrono::steady_clock::now();
    if (Status st = (*p)->Start(); !st.ok()) return Fail(st);
    // Runs until Ctrl-C / SIGTERM, or until every (finite) source has ended.
    while (!g_interrupted && !(*p)->WaitFinished(std::chrono::milliseconds(200))) {
        if (g_reload.exchange(false)) ReloadStreams(file, **p);
    }
    (*p)->Stop();  // ends open tracks and flushes the sinks
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const pipeline::PipelineStats stats = (*p)->Stats();
    nlohmann::json summary = StatsJson(stats, secs);
    if (root->sink) {
        // Events lost by a sink (a webhook that stayed down, a full disk) are no silent loss.
        const events::SinkStats ss = root->sink->stats();
        summary["sink"] = {{"published", ss.published},
                           {"delivered", ss.delivered},
                           {"dropped", ss.dropped},
                           {"failed_attempts", ss.failed_attempts}};
        if (ss.dropped > 0) spdlog::warn("{} event(s) dropped by the sinks", ss.dropped);
    }
    std::cerr << summary.dump() << "\n";
    // A stream that gave up (a missing or unreadable file, a camera past max_attempts) is an
    // error even though the others ran: scripts must not take it for success.
    int code = kExitOk;
    for (const auto& s : stats.streams) {
        if (s.source.state != stream::SourceState::kFailed) continue;
        code = Fail(FailedPrecondition("stream '" + s.id + "' failed: " + s.source.last_error));
    }
    return code;
}

struct BenchStreamArgs {
    EngineOptions engine;
    std::string video;
    GalleryLocation gallery;
    std::string mode = "default";
    std::string draw_dir;
    std::string events;
    int detect_interval = 2;
    int settled_detect_interval = 4;
    bool no_motion = false;
    bool json = false;
};

int BenchStream(BenchStreamArgs a) {
    StreamRootConfig rootc{a.engine, a.gallery, {}};
    if (!a.events.empty()) rootc.sinks.push_back({{"type", "jsonl"}, {"path", a.events}});
    rootc.sinks_field = "--events";
    auto root = StreamRoot::Build(rootc);
    if (!root.ok()) return Fail(root.status());
    pipeline::PipelineConfig pc;
    pc.mode = a.mode == "naive" ? pipeline::PipelineMode::kNaive : pipeline::PipelineMode::kDefault;
    pc.detect_interval = a.detect_interval;
    pc.settled_detect_interval = std::max(a.settled_detect_interval, a.detect_interval);
    pc.draw_dir = a.draw_dir;
    pipeline::StreamSpec s;
    s.source.id = "bench";
    s.source.uri = a.video;
    s.source.process_every_frame = true;  // as fast as possible, but every frame
    s.motion_gate = !a.no_motion;
    pc.streams.push_back(s);
    auto p = root->MakePipeline(pc);
    if (!p.ok()) return Fail(p.status());
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    if (Status st = (*p)->Start(); !st.ok()) return Fail(st);
    // fps counts from the first processed frame: opening the video and creating the workers
    // are paid once, and on a clip of a few seconds they took a third of the time.
    auto t_first = t0;
    std::uint64_t first_frames = 0;
    double cpu_first = ProcessCpuSeconds();
    while (!(*p)->Finished()) {
        if (const std::uint64_t n = (*p)->Stats().frames; n > 0) {
            t_first = Clock::now();
            cpu_first = ProcessCpuSeconds();
            first_frames = n;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    (*p)->WaitFinished(std::chrono::hours(24));
    const auto t_end = Clock::now();
    const double cpu_seconds = ProcessCpuSeconds() - cpu_first;
    const double secs = std::chrono::duration<double>(t_end - t_first).count();
    (*p)->Stop();
    const pipeline::PipelineStats stats = (*p)->Stats();
    if (!stats.streams.empty() && stats.streams[0].source.state == stream::SourceState::kFailed) {
        return Fail(InvalidArgument("cannot read video " + a.video + ": " +
                                    stats.streams[0].source.last_error));
    }
    nlohmann::json j = StatsJson(stats, secs);
    j["fps"] = secs > 0 && stats.frames > first_frames
                   ? static_cast<double>(stats.frames - first_frames) / secs
                   : 0.0;
    j["startup_seconds"] = std::chrono::duration<double>(t_first - t0).count();
    // CPU per camera: the cores this stream would keep busy in real time (1.0 = one whole
    // core). CPU from the first processed frame on, over the media time of the frames
    // processed since (the first ones' share of the clip is taken out like their time).
    const double media = stats.streams.empty() ? 0.0 : stats.streams[0].media_seconds;
    const double media_measured =
        stats.frames > 0 ? media * static_cast<double>(stats.frames - first_frames) / stats.frames
                         : 0.0;
    j["cpu_seconds"] = cpu_seconds;
    j["media_seconds"] = media;
    j["cpu_per_camera"] = media_measured > 0 ? cpu_seconds / media_measured : 0.0;
    j["mode"] = a.mode;
    j["video"] = a.video;
    j["backend"] = a.engine.backend;
    j["threads"] = a.engine.threads;
    if (a.json) {
        PrintJson(j, false);
    } else {
        std::cout << "frames " << stats.frames << "  fps " << j["fps"].get<double>()
                  << "  detector runs " << stats.detector_runs << "  embeddings "
                  << stats.embeddings << "  latency p50 " << stats.latency.p50_ms << " ms  p99 "
                  << stats.latency.p99_ms << " ms  recognized p50 " << stats.recognized_latency.p50_ms
                  << " ms  p99 " << stats.recognized_latency.p99_ms << " ms  cpu/camera "
                  << j["cpu_per_camera"].get<double>() << "  identities " << j["identities"].dump()
                  << "\n";
    }
    return kExitOk;
}

struct BenchCamerasArgs {
    EngineOptions engine;
    std::string video;
    GalleryLocation gallery;
    int max_cameras = 8;
    int min_cameras = 1;
    double seconds = 20;
    double warmup_seconds = 3;
    double max_drop_share = 0.02;
    double stagger_seconds = 0.25;
    bool json = false;
};

/// One step of `bench cameras`: N cameras for a while, measured after a warm-up.
struct CamerasStep {
    int cameras = 0;
    double native_fps = 0;        // the clip's frame rate: what each camera delivers
    double decoded_fps = 0;       // per camera, mean: below native_fps = decoders fell behind
    double processed_fps = 0;     // per camera, mean
    double min_processed_fps = 0;
    double drop_share = 0;        // frames decoded but replaced by a newer one before processing
    double latency_p50_ms = 0;
    double latency_p99_ms = 0;
    double cpu_per_camera = 0;    // cores
    bool sustained = false;
};

/// Plays the clip as N live cameras at once (each paced at its native rate and looped, so a
/// busy pipeline drops frames as a real camera's would), N = min..max, and reports per N the
/// processed rate, drops and latency. A camera is sustained when its decoder keeps the
/// native rate and (almost) no frame is dropped: no backlog can build (queues hold one frame),
/// so falling behind shows as drops and a slower decoder, never as a growing queue.
Result<CamerasStep> RunCamerasStep(const BenchCamerasArgs& a, const StreamRoot& root, int n) {
    FG_ASSIGN_OR_RETURN(std::unique_ptr<pipeline::Pipeline> p, root.MakePipeline({}));
    FG_RETURN_IF_ERROR(p->Start());
    using Clock = std::chrono::steady_clock;
    const auto sleep_s = [](double s) {
        std::this_thread::sleep_for(std::chrono::duration<double>(s));
    };
    // Real cameras are not in step: started together, N copies of one clip would show the
    // same faces at the same instants and ask the shared embedder for them all at once.
    for (int i = 0; i < n; ++i) {
        if (i > 0) sleep_s(a.stagger_seconds);
        pipeline::StreamSpec s;
        s.source.id = "cam" + std::to_string(i + 1);
        s.source.uri = a.video;
        s.source.pace_native_fps = true;
        s.source.loop = true;
        FG_RETURN_IF_ERROR(p->AddStream(s));
    }
    sleep_s(a.warmup_seconds);
    const pipeline::PipelineStats s0 = p->Stats();
    const double cpu0 = ProcessCpuSeconds();
    const auto t0 = Clock::now();
    sleep_s(a.seconds);
    const pipeline::PipelineStats s1 = p->Stats();
    const double cpu = ProcessCpuSeconds() - cpu0;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    p->Stop();

    CamerasStep step;
    step.cameras = n;
    std::uint64_t decoded = 0, dropped = 0, processed = 0;
    double media = 0;
    step.min_processed_fps = 1e9;
    for (std::size_t i = 0; i < s1.streams.size(); ++i) {
        const auto& b = s1.streams[i];
        const auto* f = i < s0.streams.size() ? &s0.streams[i] : nullptr;
        const std::uint64_t dec = b.source.frames_decoded - (f ? f->source.frames_decoded : 0);
        const std::uint64_t dro = b.source.frames_dropped - (f ? f->source.frames_dropped : 0);
        const std::uint64_t pro = b.frames - (f ? f->frames : 0);
        decoded += dec;
        dropped += dro;
        processed += pro;
        step.min_processed_fps = std::min(step.min_processed_fps, pro / secs);
        if (b.frames > 0 && b.media_seconds > 0) media = b.media_seconds / b.frames;
    }
    step.native_fps = media > 0 ? 1.0 / media : 0.0;
    step.decoded_fps = decoded / secs / n;
    step.processed_fps = processed / secs / n;
    step.drop_share = decoded ? static_cast<double>(dropped) / decoded : 0.0;
    step.latency_p50_ms = s1.latency.p50_ms;
    step.latency_p99_ms = s1.latency.p99_ms;
    step.cpu_per_camera = cpu / secs / n;
    step.sustained = step.drop_share <= a.max_drop_share &&
                     (step.native_fps <= 0 || step.decoded_fps >= 0.97 * step.native_fps);
    return step;
}

int BenchCameras(BenchCamerasArgs a) {
    auto root = StreamRoot::Build({a.engine, a.gallery, {}});
    if (!root.ok()) return Fail(root.status());
    nlohmann::json steps = nlohmann::json::array();
    // The answer is conservative: the largest N up to which every step was sustained (on a
    // shared box a larger N sometimes passes after a smaller one failed).
    int best = 0;
    bool all_sustained = true;
    int failures = 0;
    for (int n = a.min_cameras; n <= a.max_cameras; ++n) {
        auto step = RunCamerasStep(a, *root, n);
        if (!step.ok()) return Fail(step.status());
        const CamerasStep& c = *step;
        all_sustained = all_sustained && c.sustained;
        if (all_sustained) best = n;
        failures = c.sustained ? 0 : failures + 1;
        steps.push_back({{"cameras", c.cameras},
                         {"native_fps", c.native_fps},
                         {"decoded_fps", c.decoded_fps},
                         {"processed_fps", c.processed_fps},
                         {"min_processed_fps", c.min_processed_fps},
                         {"drop_share", c.drop_share},
                         {"latency_p50_ms", c.latency_p50_ms},
                         {"latency_p99_ms", c.latency_p99_ms},
                         {"cpu_per_camera", c.cpu_per_camera},
                         {"sustained", c.sustained}});
        if (!a.json) {
            std::cerr << c.cameras << " cameras: processed " << c.processed_fps << " fps each (min "
                      << c.min_processed_fps << ", native " << c.native_fps << "), decoded "
                      << c.decoded_fps << ", dropped " << c.drop_share * 100 << " %, latency p50 "
                      << c.latency_p50_ms << " ms p99 " << c.latency_p99_ms << " ms, cpu/camera "
                      << c.cpu_per_camera << (c.sustained ? "  sustained" : "  NOT sustained")
                      << "\n";
        }
        // Two failed steps in a row show the limit.
        if (failures >= 2) break;
    }
    nlohmann::json j = {{"video", a.video},
                        {"seconds", a.seconds},
                        {"stagger_seconds", a.stagger_seconds},
                        {"max_drop_share", a.max_drop_share},
                        {"sustained_cameras", best},
                        {"steps", steps}};
    if (a.json) {
        PrintJson(j, false);
    } else {
        std::cout << "sustained cameras: " << best << "\n";
    }
    return kExitOk;
}

}  // namespace

void RegisterStreamCommands(CLI::App& app, Action& action) {
    auto* run = app.add_subcommand(
        "run", "Run camera streams with a gallery and event sinks from a config file (docs/run-config.md)");
    auto file = std::make_shared<std::string>();
    auto draw = std::make_shared<std::string>();
    run->add_option("--config", *file, "Config file (JSON)")->required();
    run->add_option("--draw", *draw, "Write an annotated video per stream into this folder");
    auto create = std::make_shared<bool>(false);
    run->add_flag("--create", *create,
                  "Create the gallery if its file does not exist (else a missing gallery is an error)");
    run->callback([&action, file, draw, create] {
        action = [file, draw, create] { return RunConfigFile(*file, *draw, *create); };
    });

    CLI::App* bench = SubcommandOf(app, "bench", "Benchmarks");
    auto* bs = bench->add_subcommand("stream", "Process a video as fast as possible and report throughput and latency");
    auto a = std::make_shared<BenchStreamArgs>();
    a->engine.threads = 1;
    a->engine.AddTo(*bs);
    bs->add_option("--video", a->video, "Video file (or any source URI)")->required();
    bs->add_option("--gallery", a->gallery.db, "Gallery (SQLite path or postgresql:// URL)");
    bs->add_option("--key-file", a->gallery.key_file, "Gallery key file");
    bs->add_option("--mode", a->mode, "default (gate, track, best shots) or naive (every face, every frame)")
        ->check(CLI::IsMember({"default", "naive"}))
        ->capture_default_str();
    bs->add_option("--detect-interval", a->detect_interval, "Run the detector at most every N frames")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bs->add_option("--settled-detect-interval", a->settled_detect_interval,
                   "Detector cadence once every face in view is decided (at least --detect-interval)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bs->add_flag("--no-motion", a->no_motion, "Disable the motion gate");
    bs->add_option("--draw", a->draw_dir, "Write the annotated video into this folder");
    bs->add_option("--events", a->events, "Write the events as JSON lines to this file ('-' = stdout)");
    bs->add_flag("--json", a->json, "JSON output");
    bs->callback([&action, a] { action = [a] { return BenchStream(*a); }; });

    auto* bc = bench->add_subcommand(
        "cameras", "Play a clip as N live cameras at once (N growing) and report how many are sustained");
    auto c = std::make_shared<BenchCamerasArgs>();
    c->engine.threads = 1;
    c->engine.AddTo(*bc);
    bc->add_option("--video", c->video, "Video file each camera plays, paced at its native rate and looped")
        ->required();
    bc->add_option("--gallery", c->gallery.db, "Gallery (SQLite path or postgresql:// URL)");
    bc->add_option("--key-file", c->gallery.key_file, "Gallery key file");
    bc->add_option("--min", c->min_cameras, "Fewest cameras")->check(CLI::Range(1, 256))->capture_default_str();
    bc->add_option("--max", c->max_cameras, "Most cameras")->check(CLI::Range(1, 256))->capture_default_str();
    bc->add_option("--seconds", c->seconds, "Measured time per step")
        ->check(CLI::Range(0.5, 3600.0))
        ->capture_default_str();
    bc->add_option("--warmup", c->warmup_seconds, "Unmeasured time before each step")
        ->check(CLI::Range(0.0, 600.0))
        ->capture_default_str();
    bc->add_option("--max-drop-share", c->max_drop_share, "Dropped share a sustained camera may have")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    bc->add_option("--stagger", c->stagger_seconds, "Seconds between the starts of two cameras (0 = all in step)")
        ->check(CLI::Range(0.0, 60.0))
        ->capture_default_str();
    bc->add_flag("--json", c->json, "JSON output");
    bc->callback([&action, c] {
        action = [c] {
            if (c->min_cameras > c->max_cameras) {
                return Fail(InvalidArgument("--min must be <= --max"));
            }
            return BenchCameras(*c);
        };
    });
}

}  // namespace fg::cli
