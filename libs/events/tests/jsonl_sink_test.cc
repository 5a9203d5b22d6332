// SPDX-License-Identifier: Apache-2.0
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "fg/events/sink.h"

namespace fg::events {
namespace {

namespace fs = std::filesystem;

class TmpDir {
  public:
    TmpDir() {
        path_ = fs::temp_directory_path() /
                ("fg_events_test_" + std::to_string(::getpid()) + "_" + NewEventId());
        fs::create_directories(path_);
    }
    ~TmpDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

std::vector<std::string> ReadLines(const fs::path& p) {
    std::ifstream in(p);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

Event Numbered(int i) {
    Event e = MakeEvent("cam-" + std::to_string(i % 3), TrackStarted{.detection_score = 0.9f});
    e.track_id = static_cast<std::uint64_t>(i + 1);
    return e;
}

TEST(JsonLinesSinkTest, OneValidEventPerLineAppended) {
    TmpDir dir;
    const fs::path file = dir / "events.jsonl";
    {
        auto sink = CreateJsonLinesSink({.path = file.string()});
        ASSERT_TRUE(sink.ok()) << sink.status().ToString();
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE((*sink)->Publish(Numbered(i)).ok());
        }
        // Written by the sink's thread: on disk once Flush returns.
        EXPECT_TRUE(FlushFor(**sink, std::chrono::seconds(5)).ok());
        EXPECT_EQ(ReadLines(file).size(), 3u);
        const SinkStats s = (*sink)->stats();
        EXPECT_EQ(s.published, 3u);
        EXPECT_EQ(s.delivered, 3u);
        EXPECT_EQ(s.dropped, 0u);
        EXPECT_EQ((*sink)->name(), "jsonl:" + file.string());
    }
    {
        auto again = CreateJsonLinesSink({.path = file.string()});
        ASSERT_TRUE(again.ok());
        ASSERT_TRUE((*again)->Publish(Numbered(3)).ok());
    }
    const auto lines = ReadLines(file);
    ASSERT_EQ(lines.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        const auto j = nlohmann::json::parse(lines[i]);
        EXPECT_TRUE(ValidateEventJson(j).ok()) << lines[i];
        EXPECT_EQ(j["track_id"], i + 1);
        EXPECT_EQ(j["type"], "track_started");
    }
}

TEST(JsonLinesSinkTest, ConcurrentPublishersNeverInterleave) {
    TmpDir dir;
    const fs::path file = dir / "events.jsonl";
    auto sink = std::move(CreateJsonLinesSink({.path = file.string()})).value();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 250; ++i) {
                Event e = Numbered(t * 1000 + i);
                // Large payloads make torn writes likely if writes were not serialised.
                e.payload = Recognized{.subject_id = "s", .best_shot_jpeg_base64 =
                                                             std::string(5000, 'A' + t)};
                EXPECT_TRUE(sink->Publish(e).ok());
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    ASSERT_TRUE(FlushFor(*sink, std::chrono::seconds(10)).ok());
    const auto lines = ReadLines(file);
    ASSERT_EQ(lines.size(), 1000u);
    std::set<std::uint64_t> ids;
    for (const auto& line : lines) {
        const auto j = nlohmann::json::parse(line);
        ASSERT_TRUE(ValidateEventJson(j).ok());
        ids.insert(j["track_id"].get<std::uint64_t>());
    }
    EXPECT_EQ(ids.size(), 1000u);
    EXPECT_EQ(sink->stats().delivered, 1000u);
}

TEST(JsonLinesSinkTest, Stdout) {
    auto sink = std::move(CreateJsonLinesSink({.path = "-"})).value();
    EXPECT_EQ(sink->name(), "jsonl:stdout");
    testing::internal::CaptureStdout();
    ASSERT_TRUE(sink->Publish(Numbered(0)).ok());
    ASSERT_TRUE(FlushFor(*sink, std::chrono::seconds(5)).ok());
    const std::string out = testing::internal::GetCapturedStdout();
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.back(), '\n');
    EXPECT_TRUE(ValidateEventJson(nlohmann::json::parse(out)).ok());
}

TEST(JsonLinesSinkTest, UnwritablePathIsAnErrorNamingIt) {
    auto sink = CreateJsonLinesSink({.path = "/nonexistent-dir/x/events.jsonl"});
    ASSERT_FALSE(sink.ok());
    EXPECT_NE(sink.status().message().find("/nonexistent-dir/x/events.jsonl"), std::string::npos);
}

TEST(JsonLinesSinkTest, FullDiskCountsFailures) {
    if (!fs::exists("/dev/full")) {
        GTEST_SKIP() << "no /dev/full";
    }
    auto sink = std::move(CreateJsonLinesSink({.path = "/dev/full"})).value();
    EXPECT_TRUE(sink->Publish(Numbered(0)).ok());  // accepted; the write fails on the writer thread
    ASSERT_TRUE(FlushFor(*sink, std::chrono::seconds(5)).ok());
    const SinkStats s = sink->stats();
    EXPECT_EQ(s.published, 1u);
    EXPECT_EQ(s.delivered, 0u);
    EXPECT_EQ(s.dropped, 1u);
    EXPECT_EQ(s.failed_attempts, 1u);
}

TEST(MultiSinkTest, FansOutAndSumsStats) {
    TmpDir dir;
    auto memory = std::make_unique<MemorySink>();
    MemorySink* mem = memory.get();
    std::vector<std::unique_ptr<Sink>> children;
    children.push_back(std::move(memory));
    children.push_back(std::move(CreateJsonLinesSink({.path = (dir / "a.jsonl").string()})).value());
    MultiSink multi(std::move(children));
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(multi.Publish(Numbered(i)).ok());
    }
    EXPECT_TRUE(FlushFor(multi, std::chrono::milliseconds(100)).ok());
    EXPECT_EQ(mem->events().size(), 5u);
    EXPECT_EQ(ReadLines(dir / "a.jsonl").size(), 5u);
    EXPECT_EQ(multi.stats().published, 10u);
    EXPECT_EQ(multi.stats().delivered, 10u);
    const auto per = multi.child_stats();
    ASSERT_EQ(per.size(), 2u);
    EXPECT_EQ(per[0].first, "memory");
    EXPECT_EQ(per[1].second.delivered, 5u);
    EXPECT_NE(multi.name().find("jsonl:"), std::string::npos);
}

TEST(MultiSinkTest, OneFailingChildDoesNotStopTheOthers) {
    auto memory = std::make_unique<MemorySink>();
    MemorySink* mem = memory.get();
    std::vector<std::unique_ptr<Sink>> children;
    if (!fs::exists("/dev/full")) {
        GTEST_SKIP() << "no /dev/full";
    }
    children.push_back(std::move(CreateJsonLinesSink({.path = "/dev/full"})).value());
    children.push_back(std::move(memory));
    MultiSink multi(std::move(children));
    EXPECT_TRUE(multi.Publish(Numbered(0)).ok());  // the file's write fails on its own thread
    EXPECT_EQ(mem->events().size(), 1u);
    EXPECT_FALSE(FlushFor(multi, std::chrono::seconds(5)).ok() && multi.stats().dropped == 0);
    EXPECT_EQ(multi.stats().dropped, 1u);
}

TEST(SinkFromJsonTest, BuildsSinks) {
    TmpDir dir;
    auto jsonl = CreateSinkFromJson({{"type", "jsonl"}, {"path", (dir / "e.jsonl").string()}});
    ASSERT_TRUE(jsonl.ok()) << jsonl.status().ToString();
    EXPECT_EQ((*jsonl)->name(), "jsonl:" + (dir / "e.jsonl").string());
    auto hook = CreateSinkFromJson({{"type", "webhook"},
                                    {"url", "http://127.0.0.1:9/events"},
                                    {"headers", {{"Authorization", "Bearer x"}}},
                                    {"max_buffered", 10},
                                    {"request_timeout_ms", 100},
                                    {"stop_timeout_ms", 100}});
    ASSERT_TRUE(hook.ok()) << hook.status().ToString();
    EXPECT_EQ((*hook)->name(), "webhook:http://127.0.0.1:9/events");
}

TEST(SinkFromJsonTest, ErrorsNameTheKey) {
    auto message = [](const nlohmann::json& j) {
        return CreateSinkFromJson(j, "sinks[1]").status().message();
    };
    EXPECT_NE(message({{"path", "-"}}).find("sinks[1].type"), std::string::npos);
    EXPECT_NE(message({{"type", "kafka"}}).find("sinks[1].type"), std::string::npos);
    EXPECT_NE(message({{"type", "jsonl"}, {"pth", "-"}}).find("'pth'"), std::string::npos);
    EXPECT_NE(message({{"type", "webhook"}}).find("sinks[1].url"), std::string::npos);
    EXPECT_NE(message({{"type", "webhook"}, {"url", "http://h/"}, {"max_buffered", 0}})
                  .find("sinks[1].max_buffered"),
              std::string::npos);
    EXPECT_NE(message({{"type", "webhook"}, {"url", "http://h/"}, {"request_timeout_ms", "5"}})
                  .find("sinks[1].request_timeout_ms"),
              std::string::npos);
    EXPECT_NE(message({{"type", "webhook"}, {"url", "ftp://h/"}}).find("scheme"),
              std::string::npos);
    EXPECT_NE(message(nlohmann::json::array()).find("sinks[1]"), std::string::npos);
}

}  // namespace
}  // namespace fg::events

namespace fg::events {
namespace {

// A stdout (or pipe) nobody reads: the old sink wrote on the stream thread and blocked it for
// good once the pipe buffer filled. Publish now only enqueues; the queue is bounded and the
// oldest events are dropped and counted.
TEST(JsonLinesSinkTest, ABlockedReaderNeverStallsPublish) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    {
        auto sink = std::move(CreateJsonLinesSink({.path = "/dev/fd/" + std::to_string(fds[1]),
                                                   .max_queued = 100}))
                        .value();
        std::atomic<bool> done{false};
        std::thread publisher([&] {
            for (int i = 0; i < 2000; ++i) {
                Event e = Numbered(i);
                e.payload = Recognized{.subject_id = "s", .best_shot_jpeg_base64 = std::string(2000, 'A')};
                EXPECT_TRUE(sink->Publish(e).ok());
            }
            done = true;
        });
        // 2000 x 2 KB = 4 MB against a 64 KB pipe nobody reads.
        for (int i = 0; i < 200 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_TRUE(done) << "Publish blocked behind the writer";
        publisher.join();
        EXPECT_FALSE(FlushFor(*sink, std::chrono::milliseconds(200)).ok());  // still queued
        const SinkStats s = sink->stats();
        EXPECT_EQ(s.published, 2000u);
        EXPECT_GE(s.dropped, 2000u - 2 * 100u - 64u);  // queue, the writer's batch, the pipe
        // Drain the pipe so the writer finishes and the sink closes.
        std::thread reader([&] {
            char buf[65536];
            while (read(fds[0], buf, sizeof buf) > 0) {
            }
        });
        EXPECT_TRUE(FlushFor(*sink, std::chrono::seconds(10)).ok());
        sink.reset();
        close(fds[1]);
        reader.join();
    }
    close(fds[0]);
}

TEST(JsonLinesSinkTest, FileIsCreatedOwnerOnlyWhateverTheUmask) {
    TmpDir dir;
    const fs::path file = dir / "events.jsonl";
    const mode_t old = umask(0);
    auto sink = CreateJsonLinesSink({.path = file.string()});
    umask(old);
    ASSERT_TRUE(sink.ok());
    EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
}

}  // namespace
}  // namespace fg::events

