// SPDX-License-Identifier: Apache-2.0
// facegate run --config FILE      streams + gallery + sinks from one config file
// facegate bench stream --video F  one video as fast as possible; frames, fps, latency, ...
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "common.h"
#include "fg/events/sink.h"
#include "fg/gallery/gallery.h"
#include "fg/pipeline/pipeline.h"
#include "fg/pipeline/run_config.h"

namespace fg::cli {
namespace {

std::atomic<bool> g_interrupted{false};

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
                           {"latency_p99_ms", st.latency.p99_ms}});
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
            {"streams", streams}};
}

Result<std::shared_ptr<gallery::Gallery>> OpenOptionalGallery(const GalleryLocation& where,
                                                              const EngineOptions& engine) {
    if (where.db.empty()) return std::shared_ptr<gallery::Gallery>();
    FG_ASSIGN_OR_RETURN(std::unique_ptr<gallery::Gallery> g, OpenGalleryAt(where, engine));
    return std::shared_ptr<gallery::Gallery>(std::move(g));
}

EngineOptions FromSection(const pipeline::EngineSection& e) {
    EngineOptions o;
    o.pack = e.pack;
    o.detector_pack = e.detector_pack;
    o.embedder_pack = e.embedder_pack;
    o.backend = e.backend;
    o.threads = e.threads;
    o.score_threshold = e.score_threshold;
    o.min_face = e.min_face;
    o.no_flip = !e.flip;
    return o;
}

int RunConfigFile(const std::string& file, const std::string& draw_dir) {
    auto rc = pipeline::LoadRunConfig(file);
    if (!rc.ok()) return Fail(rc.status());
    if (!draw_dir.empty()) rc->pipeline.draw_dir = draw_dir;
    const EngineOptions eo = FromSection(rc->engine);
    auto cfg = eo.ToConfig(true);
    if (!cfg.ok()) return Fail(cfg.status());
    auto engine = vision::Engine::Create(*cfg);
    if (!engine.ok()) return Fail(engine.status());
    auto g = OpenOptionalGallery({rc->gallery.db, rc->gallery.key_file, rc->gallery.key_env}, eo);
    if (!g.ok()) return Fail(g.status().WithContext("gallery"));
    std::vector<std::unique_ptr<events::Sink>> sinks;
    for (std::size_t i = 0; i < rc->sinks.size(); ++i) {
        auto s = events::CreateSinkFromJson(rc->sinks[i], "events.sinks[" + std::to_string(i) + "]");
        if (!s.ok()) return Fail(s.status());
        sinks.push_back(std::move(*s));
    }
    auto sink = std::make_shared<events::MultiSink>(std::move(sinks));
    auto p = pipeline::Pipeline::Create(rc->pipeline, *engine, *g, sink);
    if (!p.ok()) return Fail(p.status());

    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    const auto t0 = std::chrono::steady_clock::now();
    if (Status st = (*p)->Start(); !st.ok()) return Fail(st);
    // Runs until Ctrl-C / SIGTERM, or until every (finite) source has ended.
    while (!g_interrupted && !(*p)->WaitFinished(std::chrono::milliseconds(200))) {
    }
    (*p)->Stop();  // ends open tracks and flushes the sinks
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const pipeline::PipelineStats stats = (*p)->Stats();
    std::cerr << StatsJson(stats, secs).dump() << "\n";
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
    auto cfg = a.engine.ToConfig(true);
    if (!cfg.ok()) return Fail(cfg.status());
    auto engine = vision::Engine::Create(*cfg);
    if (!engine.ok()) return Fail(engine.status());
    auto g = OpenOptionalGallery(a.gallery, a.engine);
    if (!g.ok()) return Fail(g.status().WithContext("gallery"));
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
    std::shared_ptr<events::Sink> sink;
    if (!a.events.empty()) {
        auto js = events::CreateJsonLinesSink({.path = a.events});
        if (!js.ok()) return Fail(js.status());
        sink = std::move(*js);
    }
    auto p = pipeline::Pipeline::Create(pc, *engine, *g, sink);
    if (!p.ok()) return Fail(p.status());
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    if (Status st = (*p)->Start(); !st.ok()) return Fail(st);
    // fps counts from the first processed frame: opening the video and creating the workers
    // are paid once, and on a clip of a few seconds they took a third of the time.
    auto t_first = t0;
    std::uint64_t first_frames = 0;
    while (!(*p)->Finished()) {
        if (const std::uint64_t n = (*p)->Stats().frames; n > 0) {
            t_first = Clock::now();
            first_frames = n;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    (*p)->WaitFinished(std::chrono::hours(24));
    const auto t_end = Clock::now();
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
                  << stats.latency.p99_ms << " ms  identities " << j["identities"].dump() << "\n";
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
    run->callback([&action, file, draw] { action = [file, draw] { return RunConfigFile(*file, *draw); }; });

    CLI::App* bench = app.get_subcommand("bench");
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
}

}  // namespace fg::cli
