// SPDX-License-Identifier: Apache-2.0
// The pipeline with a real RTSP camera (libs/stream's fg_rtsp_test_server, a child process) and
// a looping file: live -> server killed -> a stream_state "stalled" event while the file stream
// keeps being processed -> server restarted -> stream_state "live" again within 5 s.
// Label "rtsp" (serial: the 5 s deadline must not compete with model tests for the CPU).
#include <algorithm>

#include <gtest/gtest.h>

#include "fg/events/sink.h"
#include "fg/pipeline/pipeline.h"
#include "fg/vision/engine.h"
#include "fg/testing/testing.h"
#include "test_util.h"  // libs/stream/tests: child process, free port, test video

namespace fg::pipeline {
namespace {

using namespace std::chrono_literals;
namespace st = fg::stream::test;

/// stream_state values published for `stream`, in order.
std::vector<std::string> States(const events::MemorySink& sink, const std::string& stream) {
    std::vector<std::string> out;
    for (const events::Event& e : sink.events()) {
        if (e.stream_id != stream || e.type() != events::EventType::kStreamState) continue;
        out.push_back(std::get<events::StreamState>(e.payload).state);
    }
    return out;
}

std::uint64_t Frames(const Pipeline& p, const std::string& stream) {
    for (const StreamRunStats& s : p.Stats().streams) {
        if (s.id == stream) return s.frames;
    }
    return 0;
}

TEST(PipelineRtsp, StalledEventWhileOtherStreamRunsThenLiveAgainWithinFiveSeconds) {
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    FG_REQUIRE_PATH(ModelsDir() / "fr_feature.onnx");
    auto engine = vision::Engine::Create({.pack = "default", .backend = {.threads = 1}});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();

    fg::testing::TmpDir tmp;
    const auto clip = tmp / "clip.avi";
    ASSERT_TRUE(st::WriteTestVideo(clip, 50));
    const int port = fg::testing::FreeLoopbackPort();
    const std::vector<std::string> server_argv{FG_RTSP_TEST_SERVER, std::to_string(port), "/test"};
    auto server = std::make_unique<st::ChildProcess>(server_argv);
    ASSERT_TRUE(server->started());
    ASSERT_TRUE(st::WaitForPort(port, 10s)) << "RTSP test server did not start";

    PipelineConfig config;
    StreamSpec cam;
    cam.source = {.id = "cam",
                  .uri = "rtsp://127.0.0.1:" + std::to_string(port) + "/test",
                  .open_timeout = 5s,
                  .read_timeout = 2s,
                  .stall_timeout = 1s};
    cam.source.reconnect = {.min = 100ms, .max = 500ms};
    config.streams.push_back(cam);
    StreamSpec file;
    file.source = {.id = "file", .uri = clip.string(), .pace_native_fps = true, .loop = true};
    config.streams.push_back(file);

    auto sink = std::make_shared<events::MemorySink>();
    auto p = Pipeline::Create(config, *engine, nullptr, sink);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    Pipeline& pipeline = **p;
    ASSERT_TRUE(pipeline.Start().ok());

    const auto has = [&](const std::string& state, std::size_t from = 0) {
        const auto s = States(*sink, "cam");
        return std::find(s.begin() + static_cast<std::ptrdiff_t>(std::min(from, s.size())), s.end(),
                         state) != s.end();
    };
    ASSERT_TRUE(st::WaitFor([&] { return has("live") && Frames(pipeline, "cam") >= 10; }, 20s))
        << "RTSP never went live through the pipeline";

    server->Kill9();
    ASSERT_TRUE(st::WaitFor([&] { return has("stalled"); }, 5s))
        << "no stalled event; cam states so far: " << ::testing::PrintToString(States(*sink, "cam"));
    const std::size_t after_stall = States(*sink, "cam").size();

    // The camera is down; the file stream keeps being processed (25 fps, paced).
    const std::uint64_t file_before = Frames(pipeline, "file");
    const std::uint64_t cam_down = Frames(pipeline, "cam");
    std::this_thread::sleep_for(1500ms);
    EXPECT_GT(Frames(pipeline, "file"), file_before + 10);
    // At most the frame being processed and one already queued when the stall was seen.
    EXPECT_LE(Frames(pipeline, "cam"), cam_down + 2);
    EXPECT_FALSE(has("live", after_stall));

    server = std::make_unique<st::ChildProcess>(server_argv);
    ASSERT_TRUE(server->started());
    const auto restarted = std::chrono::steady_clock::now();
    ASSERT_TRUE(st::WaitFor([&] { return has("live", after_stall); }, 5s))
        << "no live event within 5 s of the restart; states "
        << ::testing::PrintToString(States(*sink, "cam"));
    std::printf("pipeline rtsp: live again %.2f s after the server restart\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - restarted).count());
    const std::uint64_t cam_back = Frames(pipeline, "cam");
    EXPECT_TRUE(st::WaitFor([&] { return Frames(pipeline, "cam") >= cam_back + 5; }, 5s))
        << "live, but no frames processed";

    const auto stop_start = std::chrono::steady_clock::now();
    pipeline.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - stop_start, 5s);
    // Stop reports both streams stopped; the file stream was never interrupted.
    EXPECT_EQ(States(*sink, "cam").back(), "stopped");
    const auto file_states = States(*sink, "file");
    EXPECT_EQ(std::count(file_states.begin(), file_states.end(), "stalled"), 0);
    for (const events::Event& e : sink->events()) {
        EXPECT_TRUE(events::ValidateEventJson(events::ToJson(e)).ok());
    }
}

}  // namespace
}  // namespace fg::pipeline
