// SPDX-License-Identifier: Apache-2.0
#include "fg/stream/source.h"

#include <fstream>
#include <mutex>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "fg/stream/stream_manager.h"
#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::stream {

void PrintTo(SourceState s, std::ostream* os) {
    *os << SourceStateName(s);
}

namespace {

using namespace std::chrono_literals;
using test::WaitFor;

/// Records every state change (callbacks run on source threads).
class StateLog {
  public:
    StateCallback Callback() {
        return [this](const StateChange& c) {
            std::lock_guard lock(mu_);
            states_.push_back(c.state);
            errors_.push_back(c.error);
        };
    }
    std::vector<SourceState> states() const {
        std::lock_guard lock(mu_);
        return states_;
    }
    bool Saw(SourceState s) const {
        std::lock_guard lock(mu_);
        return std::find(states_.begin(), states_.end(), s) != states_.end();
    }

  private:
    mutable std::mutex mu_;
    std::vector<SourceState> states_;
    std::vector<std::string> errors_;
};

std::unique_ptr<Source> MustCreate(SourceConfig config, Source::Callbacks callbacks = {}) {
    auto source = Source::Create(std::move(config), std::move(callbacks));
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    return source.ok() ? std::move(source).value() : nullptr;
}

/// Drains a finite source until it is exhausted; returns the frames.
std::vector<Frame> Drain(Source& source, std::chrono::milliseconds deadline = 20s) {
    std::vector<Frame> frames;
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!source.Exhausted() && std::chrono::steady_clock::now() < end) {
        if (auto f = source.WaitPop(100ms)) {
            frames.push_back(std::move(*f));
        }
    }
    return frames;
}

class SourceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        video_ = tmp_ / "clip.avi";
        ASSERT_TRUE(test::WriteTestVideo(video_, 30)) << "cannot write a test video with FFmpeg";
    }
    fg::testing::TmpDir tmp_;
    std::filesystem::path video_;
};

TEST(SourceConfigTest, ResolveKind) {
    EXPECT_EQ(ResolveKind({.uri = "rtsp://cam/x"}), SourceKind::kRtsp);
    EXPECT_EQ(ResolveKind({.uri = "RTSPS://cam/x"}), SourceKind::kRtsp);
    EXPECT_EQ(ResolveKind({.uri = "http://cam/mjpg"}), SourceKind::kHttp);
    EXPECT_EQ(ResolveKind({.uri = "/dev/video0"}), SourceKind::kDevice);
    EXPECT_EQ(ResolveKind({.uri = "2"}), SourceKind::kDevice);
    EXPECT_EQ(ResolveKind({.uri = "/tmp"}), SourceKind::kImageFolder);
    EXPECT_EQ(ResolveKind({.uri = "/x/clip.mp4"}), SourceKind::kFile);
    EXPECT_EQ(ResolveKind({.uri = "/tmp", .kind = SourceKind::kFile}), SourceKind::kFile);
    EXPECT_TRUE(IsLive(SourceKind::kRtsp));
    EXPECT_FALSE(IsLive(SourceKind::kImageFolder));
}

TEST(SourceConfigTest, ValidateNamesTheField) {
    const auto message = [](const SourceConfig& c) { return c.Validate().message(); };
    EXPECT_NE(message({.uri = "a.mp4"}).find("id"), std::string::npos);
    EXPECT_NE(message({.id = "c", .uri = ""}).find("uri"), std::string::npos);
    EXPECT_NE(message({.id = "c", .uri = "a.mp4", .queue_depth = 0}).find("queue_depth"),
              std::string::npos);
    EXPECT_NE(message({.id = "c", .uri = "rtsp://h/x", .process_every_frame = true})
                  .find("process_every_frame"),
              std::string::npos);
    EXPECT_NE(message({.id = "c", .uri = "rtsp://h/x", .loop = true}).find("loop"),
              std::string::npos);
    SourceConfig bad_backoff{.id = "c", .uri = "rtsp://h/x"};
    bad_backoff.reconnect.min = 2s;
    bad_backoff.reconnect.max = 1s;
    EXPECT_NE(message(bad_backoff).find("reconnect.min"), std::string::npos);
    EXPECT_TRUE(SourceConfig({.id = "c", .uri = "rtsp://h/x"}).Validate().ok());
    EXPECT_FALSE(Source::Create({.id = "c", .uri = "a.mp4", .queue_depth = 0}).ok());
}

TEST_F(SourceTest, FileEveryFrameInOrderThenEnded) {
    StateLog log;
    auto source = MustCreate(
        {.id = "file", .uri = video_.string(), .queue_depth = 2, .process_every_frame = true},
        {.on_state = log.Callback()});
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source);
    ASSERT_EQ(frames.size(), 30u);
    for (std::size_t i = 0; i < frames.size(); ++i) {
        EXPECT_EQ(frames[i].sequence, i);
        EXPECT_EQ(frames[i].source_id, "file");
        EXPECT_EQ(frames[i].image.type(), CV_8UC3);
        EXPECT_EQ(frames[i].image.size(), cv::Size(320, 240));
        ASSERT_TRUE(frames[i].media_time.has_value());
        if (i > 0) {
            EXPECT_GT(*frames[i].media_time, *frames[i - 1].media_time);
            EXPECT_GE(frames[i].capture_time, frames[i - 1].capture_time);
        }
    }
    // Frames own their pixels: later frames did not overwrite earlier ones.
    EXPECT_GT(cv::norm(frames[0].image, frames[10].image, cv::NORM_L1), 0.0);
    EXPECT_EQ(source->state(), SourceState::kEnded);
    const SourceStats stats = source->Stats();
    EXPECT_EQ(stats.frames_decoded, 30u);
    EXPECT_EQ(stats.frames_delivered, 30u);
    EXPECT_EQ(stats.frames_dropped, 0u);
    EXPECT_EQ(stats.kind, SourceKind::kFile);
    // The callback runs just after the state becomes visible.
    EXPECT_TRUE(WaitFor([&] { return log.states().size() >= 3; }, 5s));
    EXPECT_EQ(log.states(), (std::vector<SourceState>{SourceState::kConnecting, SourceState::kLive,
                                                      SourceState::kEnded}));
    source->Stop();
    EXPECT_EQ(source->state(), SourceState::kEnded) << "terminal states are kept";
}

TEST_F(SourceTest, SlowConsumerGetsNewestAndDropsAreCounted) {
    auto source = MustCreate({.id = "file", .uri = video_.string()});
    ASSERT_NE(source, nullptr);
    // Wait until the decoder has finished the whole clip without any consumer.
    ASSERT_TRUE(WaitFor([&] { return source->state() == SourceState::kEnded; }, 10s));
    auto last = source->TryPop();
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->sequence, 29u) << "depth 1 keeps only the newest frame";
    EXPECT_FALSE(source->TryPop().has_value());
    const SourceStats stats = source->Stats();
    EXPECT_EQ(stats.frames_decoded, 30u);
    EXPECT_EQ(stats.frames_dropped, 29u);
    EXPECT_TRUE(source->Exhausted());
}

TEST_F(SourceTest, LoopRestartsWithNewGeneration) {
    auto source = MustCreate(
        {.id = "loop", .uri = video_.string(), .process_every_frame = true, .loop = true});
    ASSERT_NE(source, nullptr);
    std::vector<Frame> frames;
    ASSERT_TRUE(WaitFor(
        [&] {
            if (auto f = source->TryPop())
                frames.push_back(std::move(*f));
            return frames.size() >= 75;
        },
        20s));
    EXPECT_EQ(frames[29].generation, 0u);
    EXPECT_EQ(frames[30].generation, 1u);
    EXPECT_EQ(frames[60].generation, 2u);
    EXPECT_EQ(frames[60].sequence, 60u) << "sequence keeps counting across loops";
    EXPECT_EQ(source->Stats().reconnects, 0u) << "a loop is not a reconnect";
    EXPECT_EQ(source->state(), SourceState::kLive);
    source->Stop();
    EXPECT_EQ(source->state(), SourceState::kStopped);
    EXPECT_TRUE(source->Exhausted());
}

TEST_F(SourceTest, PacedAtNativeFps) {
    const auto clip = tmp_ / "paced.avi";
    ASSERT_TRUE(test::WriteTestVideo(clip, 30, 20.0));
    auto source = MustCreate({.id = "paced",
                              .uri = clip.string(),
                              .queue_depth = 4,
                              .process_every_frame = true,
                              .pace_native_fps = true});
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source);
    ASSERT_EQ(frames.size(), 30u);
    // 29 intervals of 50 ms: functional lower bounds only (pacing happened at all).
    EXPECT_GE(frames.back().capture_time - frames.front().capture_time, 1200ms);
    const double fps = source->Stats().fps;
    EXPECT_GT(fps, 5.0);
    EXPECT_LT(fps, 40.0);
}

TEST_F(SourceTest, MissingFileFailsClearly) {
    auto source = MustCreate({.id = "missing", .uri = (tmp_ / "nope.mp4").string()});
    ASSERT_NE(source, nullptr);
    ASSERT_TRUE(WaitFor([&] { return source->state() == SourceState::kFailed; }, 5s));
    EXPECT_NE(source->Stats().last_error.find("not found"), std::string::npos)
        << source->Stats().last_error;
    EXPECT_TRUE(source->Exhausted());
    EXPECT_FALSE(source->WaitPop(1s).has_value());  // returns at once for a terminal source
}

TEST_F(SourceTest, CorruptFileFailsClearly) {
    const auto junk = tmp_ / "junk.mp4";
    {
        std::ofstream out(junk, std::ios::binary);
        for (int i = 0; i < 100000; ++i)
            out.put(static_cast<char>((i * 7919) & 0xff));
    }
    StateLog log;
    auto source = MustCreate({.id = "junk", .uri = junk.string()}, {.on_state = log.Callback()});
    ASSERT_NE(source, nullptr);
    ASSERT_TRUE(WaitFor([&] { return source->state() == SourceState::kFailed; }, 10s));
    const std::string error = source->Stats().last_error;
    EXPECT_NE(error.find("junk.mp4"), std::string::npos) << error;
    EXPECT_NE(error.find("not a video"), std::string::npos) << error;
    EXPECT_EQ(source->Stats().open_attempts, 1u) << "a broken file is not retried";
    EXPECT_FALSE(log.Saw(SourceState::kLive));
}

TEST_F(SourceTest, TruncatedFileEndsWithTheFramesBeforeTheCut) {
    const auto cut = tmp_ / "cut.avi";
    {
        std::ifstream in(video_, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::ofstream out(cut, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    }
    auto source = MustCreate({.id = "cut", .uri = cut.string(), .process_every_frame = true});
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source);
    EXPECT_GT(frames.size(), 5u);
    EXPECT_LT(frames.size(), 30u);
    EXPECT_EQ(source->state(), SourceState::kEnded);
}

TEST_F(SourceTest, ImageFolderSkipsNonImages) {
    const auto dir = tmp_ / "frames";
    std::filesystem::create_directories(dir);
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(cv::imwrite((dir / ("f" + std::to_string(i) + ".png")).string(),
                                test::PatternFrame(i)));
    }
    std::ofstream(dir / "f2_notes.txt") << "not an image";
    std::ofstream(dir / "f3.jpg") << "truncated jpeg";  // an image name with garbage inside
    std::filesystem::create_directories(dir / "subdir");
    auto source = MustCreate({.id = "folder",
                              .uri = dir.string(),
                              .queue_depth = 8,
                              .process_every_frame = true,
                              .folder_fps = 10.0});
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source);
    ASSERT_EQ(frames.size(), 5u);
    EXPECT_EQ(source->Stats().files_skipped, 2u);
    EXPECT_EQ(source->Stats().kind, SourceKind::kImageFolder);
    EXPECT_EQ(source->state(), SourceState::kEnded);
    // media_time follows the sorted file index at folder_fps: f0 f1 f2 f2_notes f3(bad) f3 f4.
    EXPECT_EQ(*frames[0].media_time, 0us);
    EXPECT_EQ(*frames[1].media_time, 100000us);
}

TEST_F(SourceTest, ResolutionChangePassesThrough) {
    // A camera that switches resolution: frames keep coming at the new size.
    const auto dir = tmp_ / "sizes";
    std::filesystem::create_directories(dir);
    ASSERT_TRUE(cv::imwrite((dir / "a.png").string(), test::PatternFrame(0, {320, 240})));
    ASSERT_TRUE(cv::imwrite((dir / "b.png").string(), test::PatternFrame(1, {640, 360})));
    ASSERT_TRUE(cv::imwrite((dir / "c.png").string(), test::PatternFrame(2, {320, 240})));
    auto source = MustCreate(
        {.id = "sizes", .uri = dir.string(), .queue_depth = 4, .process_every_frame = true});
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].image.size(), cv::Size(320, 240));
    EXPECT_EQ(frames[1].image.size(), cv::Size(640, 360));
    EXPECT_EQ(frames[2].image.size(), cv::Size(320, 240));
    EXPECT_EQ(source->Stats().width, 320);
}

// A frame above max_frame_pixels costs nothing more than its decoding: folder images are checked
// from the header (the guarded decoder of single images), video frames before they are queued.
TEST_F(SourceTest, FolderImagesAboveTheFrameCapAreSkipped) {
    const auto dir = tmp_ / "big";
    std::filesystem::create_directories(dir);
    ASSERT_TRUE(cv::imwrite((dir / "a.png").string(), test::PatternFrame(0, {320, 240})));
    ASSERT_TRUE(cv::imwrite((dir / "b.png").string(), test::PatternFrame(1, {640, 360})));
    SourceConfig c{.id = "big", .uri = dir.string(), .queue_depth = 4, .process_every_frame = true};
    c.max_frame_pixels = 320 * 240;
    auto source = MustCreate(c);
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].image.size(), cv::Size(320, 240));
    EXPECT_EQ(source->Stats().files_skipped, 1u);
}

TEST_F(SourceTest, VideoFramesAboveTheFrameCapFailTheStream) {
    SourceConfig c{.id = "cap", .uri = video_.string(), .process_every_frame = true};
    c.max_frame_pixels = 1000;
    auto source = MustCreate(c);
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source);
    EXPECT_TRUE(frames.empty());
    ASSERT_TRUE(WaitFor([&] { return source->Exhausted(); }, 5s));
    EXPECT_NE(source->Stats().last_error.find("max_frame_pixels"), std::string::npos)
        << source->Stats().last_error;
    SourceConfig zero{.id = "z", .uri = video_.string()};
    zero.max_frame_pixels = 0;
    EXPECT_NE(zero.Validate().message().find("max_frame_pixels"), std::string::npos);
}

TEST_F(SourceTest, FolderWithoutImagesFails) {
    const auto dir = tmp_ / "empty";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "readme.txt") << "nothing to see";
    auto source = MustCreate({.id = "empty", .uri = dir.string()});
    ASSERT_NE(source, nullptr);
    ASSERT_TRUE(WaitFor([&] { return source->state() == SourceState::kFailed; }, 5s));
    EXPECT_NE(source->Stats().last_error.find("no decodable frame"), std::string::npos);
}

TEST(LiveSourceTest, ClosedPortKeepsRetryingWithBackoffAndStopsPromptly) {
    const int port = fg::testing::FreeLoopbackPort();  // nothing listens there
    StateLog log;
    SourceConfig config{.id = "closed", .uri = "rtsp://127.0.0.1:" + std::to_string(port) + "/x"};
    config.reconnect = {.min = 50ms, .max = 200ms};
    auto source = MustCreate(config, {.on_state = log.Callback()});
    ASSERT_NE(source, nullptr);
    ASSERT_TRUE(WaitFor([&] { return source->Stats().open_attempts >= 4; }, 10s));
    EXPECT_EQ(source->state(), SourceState::kConnecting);
    EXPECT_NE(source->Stats().last_error.find("cannot open rtsp"), std::string::npos)
        << source->Stats().last_error;
    const auto start = std::chrono::steady_clock::now();
    source->Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(source->state(), SourceState::kStopped);
    EXPECT_FALSE(log.Saw(SourceState::kLive));
}

TEST(LiveSourceTest, MaxAttemptsGivesUp) {
    SourceConfig config{.id = "give-up",
                        .uri = "rtsp://127.0.0.1:" + std::to_string(fg::testing::FreeLoopbackPort()) + "/x"};
    config.reconnect = {.min = 10ms, .max = 20ms, .max_attempts = 3};
    auto source = MustCreate(config);
    ASSERT_NE(source, nullptr);
    ASSERT_TRUE(WaitFor([&] { return source->state() == SourceState::kFailed; }, 10s));
    EXPECT_EQ(source->Stats().open_attempts, 3u);
    EXPECT_NE(source->Stats().last_error.find("gave up after 3 attempts"), std::string::npos);
}

TEST(LiveSourceTest, StopIsPromptWhileOpenIsBlocked) {
    // The server accepts the connection but never answers, so FFmpeg's open blocks until its
    // (long) open timeout; Stop must not wait for that.
    for (const std::string scheme : {"rtsp", "http"}) {
        test::LoopbackServer silent(test::LoopbackServer::Mode::kSilent);
        auto source =
            MustCreate({.id = "silent",
                        .uri = scheme + "://127.0.0.1:" + std::to_string(silent.port()) + "/x",
                        .open_timeout = 20s,
                        .read_timeout = 20s});
        ASSERT_NE(source, nullptr);
        std::this_thread::sleep_for(300ms);  // let the decoder enter the blocking open
        EXPECT_EQ(source->state(), SourceState::kConnecting);
        const auto start = std::chrono::steady_clock::now();
        source.reset();  // the destructor stops
        EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << scheme;
        // Closing the server makes the abandoned open fail, so its thread exits soon.
    }
}

TEST(LiveSourceTest, HttpMjpegGoesLiveThenStallsWhenTheServerGoes) {
    auto server = std::make_unique<test::LoopbackServer>(test::LoopbackServer::Mode::kMjpeg);
    StateLog log;
    SourceConfig config{.id = "mjpeg",
                        .uri = "http://127.0.0.1:" + std::to_string(server->port()) + "/video.mjpg",
                        .read_timeout = 2s,
                        .stall_timeout = 1s};
    config.reconnect = {.min = 50ms, .max = 200ms};
    auto source = MustCreate(config, {.on_state = log.Callback()});
    ASSERT_NE(source, nullptr);
    int frames = 0;
    ASSERT_TRUE(WaitFor(
        [&] {
            if (auto f = source->TryPop()) {
                EXPECT_EQ(f->image.size(), cv::Size(320, 240));
                ++frames;
            }
            return frames >= 5;
        },
        10s))
        << source->Stats().last_error;
    EXPECT_EQ(source->state(), SourceState::kLive);
    EXPECT_EQ(source->Stats().kind, SourceKind::kHttp);
    server.reset();
    // The state changes before the callback runs (outside the source's lock), so wait for
    // the callback's record rather than read it right after the state flips.
    EXPECT_TRUE(WaitFor([&] { return log.Saw(SourceState::kStalled); }, 5s));
    const auto s = source->state();
    EXPECT_TRUE(s == SourceState::kStalled || s == SourceState::kConnecting) << int(s);
}

// A camera that sends a frame now and then (issue 4: "a camera that delivers 1 frame per
// minute", scaled to one frame per 1.5 s). Configured as libs/stream/README.md says (stall and
// read timeouts above the frame interval) it stays live, delivers every frame and never
// reconnects; with the default-like short stall timeout it reports `stalled` between frames
// and goes live again with the next frame, without losing it.
TEST(LiveSourceTest, ACameraSendingAFrameEveryFewSecondsIsServedNotDropped) {
    test::LoopbackServer server(test::LoopbackServer::Mode::kMjpeg, 1500ms);
    const std::string uri = "http://127.0.0.1:" + std::to_string(server.port()) + "/video.mjpg";
    // Opens the camera with this stall timeout, takes three frames, returns the stats.
    auto three_frames = [&](std::chrono::milliseconds stall, StateLog& log) {
        SourceConfig config{.id = "slow", .uri = uri, .read_timeout = 5s, .stall_timeout = stall};
        config.reconnect = {.min = 50ms, .max = 200ms};
        auto source = MustCreate(config, {.on_state = log.Callback()});
        EXPECT_NE(source, nullptr);
        if (!source) return SourceStats{};
        int frames = 0;
        EXPECT_TRUE(WaitFor(
            [&] {
                if (source->TryPop()) ++frames;
                return frames >= 3;
            },
            15s))
            << source->Stats().last_error;
        return source->Stats();
    };
    StateLog patient;
    const SourceStats a = three_frames(4s, patient);
    EXPECT_EQ(a.state, SourceState::kLive);
    EXPECT_FALSE(patient.Saw(SourceState::kStalled));
    EXPECT_EQ(a.reconnects, 0u);
    EXPECT_EQ(a.frames_dropped, 0u);

    StateLog eager;
    const SourceStats b = three_frames(500ms, eager);
    EXPECT_TRUE(eager.Saw(SourceState::kStalled));
    EXPECT_EQ(b.frames_dropped, 0u);
    // Stalled between frames, live again when one arrives.
    const auto states = eager.states();
    EXPECT_NE(std::find(std::find(states.begin(), states.end(), SourceState::kStalled),
                        states.end(), SourceState::kLive),
              states.end());
}

TEST(LiveSourceTest, MissingDeviceRetries) {
    SourceConfig config{.id = "cam", .uri = "/dev/video97"};
    config.reconnect = {.min = 20ms, .max = 50ms};
    auto source = MustCreate(config);
    ASSERT_NE(source, nullptr);
    ASSERT_TRUE(WaitFor([&] { return source->Stats().open_attempts >= 2; }, 10s));
    EXPECT_EQ(source->state(), SourceState::kConnecting);
    EXPECT_EQ(source->Stats().kind, SourceKind::kDevice);
}

TEST_F(SourceTest, ManagerRoundRobinAddRemoveAndExhaustion) {
    std::mutex mu;
    std::vector<StateChange> changes;
    StreamManager manager([&](const StateChange& c) {
        std::lock_guard lock(mu);
        changes.push_back(c);
    });
    EXPECT_TRUE(manager.AllExhausted());
    ASSERT_TRUE(
        manager
            .Add({.id = "a", .uri = video_.string(), .queue_depth = 2, .process_every_frame = true})
            .ok());
    ASSERT_TRUE(
        manager
            .Add({.id = "b", .uri = video_.string(), .queue_depth = 2, .process_every_frame = true})
            .ok());
    EXPECT_EQ(manager.Add({.id = "a", .uri = video_.string()}).code(), StatusCode::kAlreadyExists);
    EXPECT_EQ(manager.Add({.id = "", .uri = video_.string()}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(manager.Ids(), (std::vector<std::string>{"a", "b"}));

    std::map<std::string, std::uint64_t> next;
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (!manager.AllExhausted() && std::chrono::steady_clock::now() < end) {
        if (auto f = manager.WaitNext(200ms)) {
            EXPECT_EQ(f->sequence, next[f->source_id]++) << f->source_id;
        }
    }
    EXPECT_EQ(next["a"], 30u);
    EXPECT_EQ(next["b"], 30u);
    ASSERT_TRUE(manager.Stats("a").ok());
    EXPECT_EQ(manager.Stats("a")->state, SourceState::kEnded);
    EXPECT_EQ(manager.AllStats().size(), 2u);
    EXPECT_EQ(manager.Stats("zzz").status().code(), StatusCode::kNotFound);

    EXPECT_TRUE(manager.Remove("a").ok());
    EXPECT_EQ(manager.Remove("a").code(), StatusCode::kNotFound);
    EXPECT_EQ(manager.Ids(), (std::vector<std::string>{"b"}));
    {
        std::lock_guard lock(mu);
        EXPECT_FALSE(changes.empty());
    }
    manager.Stop();
    EXPECT_FALSE(manager.WaitNext(1s).has_value());
    EXPECT_EQ(manager.Add({.id = "c", .uri = video_.string()}).code(),
              StatusCode::kFailedPrecondition);
}

TEST_F(SourceTest, ManagerAddRemoveWhileConsumersWait) {
    StreamManager manager;
    std::atomic<bool> done{false};
    std::atomic<int> received{0};
    std::vector<std::thread> consumers;
    for (int i = 0; i < 2; ++i) {
        consumers.emplace_back([&] {
            while (!done) {
                if (manager.WaitNext(50ms))
                    ++received;
            }
        });
    }
    for (int round = 0; round < 20; ++round) {
        const std::string id = "s" + std::to_string(round % 4);
        (void)manager.Remove(id);
        ASSERT_TRUE(manager.Add({.id = id, .uri = video_.string(), .loop = true}).ok());
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(WaitFor([&] { return received > 20; }, 10s));
    // Wake releases waiting consumers at once.
    done = true;
    manager.Wake();
    for (auto& t : consumers)
        t.join();
    EXPECT_EQ(manager.Ids().size(), 4u);
}

TEST(SharedVideoTest, DecodesARealClip) {
    const auto clip = fg::SharedDir() / "data/videos/intel_head-pose-face-detection-female.mp4";
    FG_REQUIRE_PATH(clip);
    auto source = MustCreate(
        {.id = "intel", .uri = clip.string(), .queue_depth = 4, .process_every_frame = true});
    ASSERT_NE(source, nullptr);
    const auto frames = Drain(*source, 60s);
    EXPECT_GE(frames.size(), 20u);  // 23 frames at 12 fps, 480x270
    EXPECT_EQ(source->state(), SourceState::kEnded);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.front().image.size(), cv::Size(480, 270));
}

}  // namespace
}  // namespace fg::stream
