// SPDX-License-Identifier: Apache-2.0
// `facegate edge` as a process against a real nats-server: it replays a looping clip (shared
// data: CI=true fails without it, elsewhere skips), a consumer in the test reads fg.faces.* and
// checks that every face item the edge reports arrives exactly once after dedupe, sealed, with an
// aligned crop and no frame; through a nats-server restart mid-stream (the edge buffers, then
// drains) and through an edge restart with items still buffered on disk (the next run drains
// them under their old ids and publishes its own under a new epoch).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bus_test_util.h"
#include "fg/bus/nats.h"
#include "fg/gallery/crypto.h"

namespace fg::bus {
namespace {

using namespace fg::bus::testing;

/// `facegate edge ...` in the background, output to files; SIGTERM then (bounded) SIGKILL.
class EdgeProcess {
  public:
    EdgeProcess(std::vector<std::string> argv, const std::filesystem::path& log) {
        pid_ = fork();
        if (pid_ == 0) {
            const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            execv(args[0], args.data());
            _exit(127);
        }
    }
    ~EdgeProcess() { Stop(); }
    EdgeProcess(const EdgeProcess&) = delete;
    EdgeProcess& operator=(const EdgeProcess&) = delete;
    /// SIGTERM: a clean stop (the buffer stays on disk). The exit code, or -1 if it had to be killed.
    int Stop() {
        if (pid_ <= 0) return code_;
        kill(pid_, SIGTERM);
        int status = 0;
        const auto deadline = Clock::now() + 20s;
        while (waitpid(pid_, &status, WNOHANG) != pid_) {
            if (Clock::now() >= deadline) {
                kill(pid_, SIGKILL);
                waitpid(pid_, nullptr, 0);
                pid_ = -1;
                return code_ = -1;
            }
            std::this_thread::sleep_for(50ms);
        }
        pid_ = -1;
        return code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

  private:
    pid_t pid_ = -1;
    int code_ = -1;
};

/// The test's consumer of the region's face queue: dedupes by id, checks every item.
struct FaceConsumer {
    std::shared_ptr<const gallery::KeyRing> keys;
    std::mutex mu;
    std::map<std::string, int> seen;  ///< id -> deliveries kept after dedupe (must be 1)
    std::atomic<int> unique{0};
    std::atomic<int> raw_repeats{0};  ///< deliveries of an id already seen (deduped here)
    std::atomic<int> bad{0};
    std::atomic<std::size_t> max_bytes{0};

    void Run(Consumer& c, DedupeWindow& window, std::atomic<bool>& stop) {
        while (!stop.load()) {
            auto batch = c.Fetch(64, 200ms);
            if (!batch.ok()) {
                std::this_thread::sleep_for(50ms);
                continue;
            }
            for (auto& d : *batch) {
                Check(d->data(), window);
                (void)d->Ack();
            }
        }
    }

    void Check(std::string_view data, DedupeWindow& window) {
        std::size_t m = max_bytes.load();
        while (data.size() > m && !max_bytes.compare_exchange_weak(m, data.size())) {
        }
        // Sealed: unreadable without the key.
        if (DecodeEnvelope(data).ok()) bad.fetch_add(1);
        auto env = DecodeEnvelope(data, keys.get());
        if (!env.ok()) {
            bad.fetch_add(1);
            return;
        }
        auto item = FaceItemFromEnvelope(*env);
        // A face item: an aligned crop (or a liveness-only item), never a frame.
        if (!item.ok() || item->item_id != env->id || env->camera != "cam" ||
            (item->embed && (item->aligned.cols != 112 || item->aligned.rows != 112))) {
            bad.fetch_add(1);
            return;
        }
        if (!window.FirstSeen(env->id)) {
            raw_repeats.fetch_add(1);
            return;
        }
        std::lock_guard lock(mu);
        ++seen[env->id];
        unique.fetch_add(1);
    }
};

nlohmann::json ReadStats(const std::filesystem::path& p) {
    std::ifstream in(p);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
}

std::uint64_t SegmentBytes(const std::filesystem::path& dir) {
    std::uint64_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        if (e.path().filename().string().starts_with("seg-")) n += std::filesystem::file_size(e.path(), ec);
    return n;
}

TEST(BusEdgeE2E, ExactlyOnceThroughBusAndEdgeRestarts) {
    if (!HaveNatsServer()) GTEST_SKIP() << "nats-server is not installed";
    const auto video = SharedDir() / "data/videos/intel_head-pose-face-detection-male.mp4";
    FG_REQUIRE_PATH(video);
    fg::testing::TmpDir tmp;
    auto key = gallery::CreateKeyFile(tmp / "gallery.key");
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    FaceConsumer consumer;
    consumer.keys = std::make_shared<const gallery::KeyRing>(*key);

    NatsServer nats(tmp.path());
    ASSERT_TRUE(nats.Start());
    NatsConfig nc;
    nc.url = nats.url();
    auto bus = CreateNatsBus(nc);
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    auto faces = (*bus)->Subscribe({.topic = Topic::kFaces, .region = "site1", .group = "workers"});
    ASSERT_TRUE(faces.ok()) << faces.status().ToString();
    DedupeWindow window(100000);
    std::atomic<bool> stop{false};
    std::thread reader([&] { consumer.Run(**faces, window, stop); });

    const std::filesystem::path buffer = tmp / "buffer";
    auto edge_argv = [&](const std::string& stats) {
        return std::vector<std::string>{FG_FACEGATE_BIN, "edge", "--bus", nats.url(), "--region", "site1",
                                        "--stream", "cam=" + video.string(), "--loop",
                                        "--buffer-dir", buffer.string(), "--key-file", (tmp / "gallery.key").string(),
                                        "--publish-timeout-ms", "1000", "--stats", (tmp / stats).string(),
                                        "--threads", "1"};
    };
    const auto log = tmp / "edge.log";
    auto dump_log = [&] {
        std::ifstream in(log);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };

    // Run 1: items flow; nats-server restarts mid-stream; the edge buffers, then drains.
    std::uint64_t items = 0;
    {
        EdgeProcess edge(edge_argv("run1.json"), log);
        ASSERT_TRUE(WaitFor([&] { return consumer.unique.load() >= 3; }, 40s)) << dump_log();
        nats.Stop();
        ASSERT_TRUE(WaitFor([&] { return SegmentBytes(buffer) > 0; }, 20s)) << "nothing buffered\n" << dump_log();
        ASSERT_TRUE(nats.Start());
        const int before = consumer.unique.load();
        ASSERT_TRUE(WaitFor([&] { return consumer.unique.load() > before + 2; }, 30s)) << dump_log();
        EXPECT_EQ(edge.Stop(), 0) << dump_log();
        const auto s = ReadStats(tmp / "run1.json");
        ASSERT_TRUE(s.contains("items")) << dump_log();
        EXPECT_GT(s["buffered"].get<int>(), 0) << s.dump();
        EXPECT_GT(s["drained"].get<int>(), 0) << s.dump();
        EXPECT_EQ(s["dropped"].get<int>(), 0) << s.dump();
        items += s["items"].get<std::uint64_t>();
    }
    // Run 2 with the bus down: everything it selects stays in the buffer when it stops.
    nats.Stop();
    {
        const std::uint64_t before = SegmentBytes(buffer);  // run 1's drained tail segment
        EdgeProcess edge(edge_argv("run2.json"), log);
        ASSERT_TRUE(WaitFor([&] { return SegmentBytes(buffer) > before + 20000; }, 40s)) << dump_log();
        EXPECT_EQ(edge.Stop(), 0) << dump_log();
        const auto s = ReadStats(tmp / "run2.json");
        ASSERT_TRUE(s.contains("items")) << dump_log();
        EXPECT_GT(s["buffer_depth"].get<int>(), 0) << s.dump();
        EXPECT_EQ(s["dropped"].get<int>(), 0) << s.dump();
        items += s["items"].get<std::uint64_t>();
    }
    // Run 3, bus back: drains run 2's items (their ids), then publishes its own (a new epoch).
    ASSERT_TRUE(nats.Start());
    {
        EdgeProcess edge(edge_argv("run3.json"), log);
        ASSERT_TRUE(WaitFor([&] { return consumer.unique.load() >= static_cast<int>(items) + 2; }, 40s))
            << consumer.unique.load() << " of " << items << "\n" << dump_log();
        EXPECT_EQ(edge.Stop(), 0) << dump_log();
        const auto s = ReadStats(tmp / "run3.json");
        ASSERT_TRUE(s.contains("items")) << dump_log();
        EXPECT_GT(s["drained"].get<int>(), 0) << s.dump();
        EXPECT_EQ(s["dropped"].get<int>(), 0) << s.dump();
        EXPECT_EQ(s["buffer_depth"].get<int>(), 0) << s.dump();
        items += s["items"].get<std::uint64_t>();
    }
    // Every item reported by the three runs, exactly once after dedupe; nothing else.
    EXPECT_TRUE(WaitFor([&] { return consumer.unique.load() >= static_cast<int>(items); }, 20s));
    std::this_thread::sleep_for(500ms);  // a late duplicate would show up here
    stop = true;
    reader.join();
    EXPECT_EQ(consumer.unique.load(), static_cast<int>(items));
    EXPECT_EQ(consumer.bad.load(), 0);
    EXPECT_LT(consumer.max_bytes.load(), 32u * 1024);  // a crop and metadata, never a frame
    std::set<std::string> epochs;
    std::lock_guard lock(consumer.mu);
    for (const auto& [id, n] : consumer.seen) {
        EXPECT_EQ(n, 1) << id;
        epochs.insert(id.substr(0, id.find('.')));
    }
    EXPECT_EQ(epochs.size(), 3u);  // one epoch per edge run
    std::cerr << "edge e2e: " << items << " items, " << consumer.raw_repeats.load()
              << " transport repeats deduped\n";
}

// The whole loop: one edge replaying the clip, three `facegate worker`s (stub embedder: the
// plumbing is under test; libs/cluster tests the real one), a result consumer: every face item
// the edge reports yields exactly one result after dedupe.
TEST(BusEdgeE2E, EdgeAndThreeWorkersGiveOneResultPerItem) {
    if (!HaveNatsServer()) GTEST_SKIP() << "nats-server is not installed";
    const auto video = SharedDir() / "data/videos/intel_head-pose-face-detection-male.mp4";
    FG_REQUIRE_PATH(video);
    fg::testing::TmpDir tmp;
    ASSERT_TRUE(gallery::CreateKeyFile(tmp / "gallery.key").ok());
    const std::string key = (tmp / "gallery.key").string();
    NatsServer nats(tmp.path());
    ASSERT_TRUE(nats.Start());
    NatsConfig nc;
    nc.url = nats.url();
    auto bus = CreateNatsBus(nc);
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    auto results = (*bus)->Subscribe({.topic = Topic::kResults, .region = "site2", .group = "test"});
    ASSERT_TRUE(results.ok()) << results.status().ToString();
    std::mutex mu;
    std::map<std::string, int> seen;
    std::atomic<int> unique{0};
    std::set<std::string> workers;
    DedupeWindow window(100000);
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop.load()) {
            auto batch = (*results)->Fetch(64, 200ms);
            if (!batch.ok()) {
                std::this_thread::sleep_for(50ms);
                continue;
            }
            for (auto& d : *batch) {
                auto env = DecodeEnvelope(d->data());
                auto r = env.ok() ? ResultFromEnvelope(*env) : Result<RecognitionResult>(env.status());
                if (r.ok() && window.FirstSeen(r->item_id)) {
                    std::lock_guard lock(mu);
                    ++seen[r->item_id];
                    workers.insert(r->worker_id);
                    unique.fetch_add(1);
                }
                (void)d->Ack();
            }
        }
    });
    const auto log = tmp / "procs.log";
    auto dump_log = [&] {
        std::ifstream in(log);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    std::vector<std::unique_ptr<EdgeProcess>> procs;
    for (int i = 0; i < 3; ++i) {
        procs.push_back(std::make_unique<EdgeProcess>(
            std::vector<std::string>{FG_FACEGATE_BIN, "worker", "--bus", nats.url(), "--region", "site2",
                                     "--key-file", key, "--embedder", "stub", "--worker-id", "w" + std::to_string(i)},
            log));
    }
    std::uint64_t items = 0;
    {
        EdgeProcess edge({FG_FACEGATE_BIN, "edge", "--bus", nats.url(), "--region", "site2", "--stream",
                          "cam=" + video.string(), "--loop", "--buffer-dir", (tmp / "buffer").string(),
                          "--key-file", key, "--stats", (tmp / "edge.json").string(), "--threads", "1",
                          "--liveness"},  // the edge's liveness verdict travels in the items
                         log);
        ASSERT_TRUE(WaitFor([&] { return unique.load() >= 12; }, 45s)) << dump_log();
        EXPECT_EQ(edge.Stop(), 0) << dump_log();
        const auto s = ReadStats(tmp / "edge.json");
        ASSERT_TRUE(s.contains("items")) << dump_log();
        EXPECT_EQ(s["dropped"].get<int>(), 0) << s.dump();
        items = s["items"].get<std::uint64_t>();
    }
    EXPECT_TRUE(WaitFor([&] { return unique.load() >= static_cast<int>(items); }, 20s)) << dump_log();
    std::this_thread::sleep_for(500ms);  // a late duplicate would show up here
    for (auto& p : procs) p->Stop();
    stop = true;
    reader.join();
    EXPECT_EQ(unique.load(), static_cast<int>(items));
    std::lock_guard lock(mu);
    for (const auto& [id, n] : seen) {
        EXPECT_EQ(n, 1) << id;
        EXPECT_TRUE(id.starts_with("cam/")) << id;
    }
    std::cerr << "edge + 3 workers: " << items << " items, results from " << workers.size() << " worker(s)\n";
}

}  // namespace
}  // namespace fg::bus
