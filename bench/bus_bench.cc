// SPDX-License-Identifier: Apache-2.0
// The bus plumbing cost (issue 17): face items with a real 112x112 JPEG crop go edge -> NATS
// JetStream -> worker (stub embedder: decode the envelope and the crop, publish a result) -> ack,
// on loopback. Prints JSON: items/s, and p50/p99 per item of the publish (until the stream's ack)
// and of the whole path (publish start to the worker's confirmed ack).
//   fg_bus_bench [--items N] [--workers K] [--url nats://...]   (default: starts nats-server -js)
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "fg/testing/testing.h"
#include "fg/bus/messages.h"
#include "fg/bus/nats.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double Percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
    int items = 5000, workers = 2;
    std::string url;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--items") items = std::atoi(argv[i + 1]);
        else if (a == "--workers") workers = std::atoi(argv[i + 1]);
        else if (a == "--url") url = argv[i + 1];
    }
    if (items <= 0 || workers <= 0) {
        std::fprintf(stderr, "usage: fg_bus_bench [--items N] [--workers K] [--url nats://...]\n");
        return 2;
    }

    // A private nats-server on a fixed-by-the-OS port, storage in a temp dir.
    pid_t server = -1;
    std::filesystem::path dir;
    if (url.empty()) {
        dir = std::filesystem::temp_directory_path() / ("fg_bus_bench." + std::to_string(getpid()));
        std::filesystem::create_directories(dir);
        const std::string port = std::to_string(fg::testing::FreeLoopbackPort());
        std::vector<std::string> args = {"nats-server", "-a", "127.0.0.1", "-p", port, "-js",
                                         "-sd", (dir / "js").string(), "-l", (dir / "nats.log").string()};
        std::vector<char*> cargv;
        for (auto& s : args) cargv.push_back(s.data());
        cargv.push_back(nullptr);
        if (posix_spawnp(&server, "nats-server", nullptr, nullptr, cargv.data(), environ) != 0) {
            std::fprintf(stderr, "cannot start nats-server\n");
            return 1;
        }
        url = "nats://127.0.0.1:" + port;
    }

    int rc = 0;
    {
        fg::bus::NatsConfig config{.url = url};
        auto bus = fg::bus::CreateNatsBus(config);
        if (!bus.ok()) {
            std::fprintf(stderr, "%s\n", bus.status().ToString().c_str());
            rc = 1;
        } else {
            std::vector<std::unique_ptr<fg::bus::Consumer>> consumers;
            for (int w = 0; w < workers; ++w) {
                auto c = (*bus)->Subscribe({.topic = fg::bus::Topic::kFaces, .region = "bench", .group = "workers"});
                if (!c.ok()) {
                    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
                    return 1;
                }
                consumers.push_back(std::move(*c));
            }
            cv::Mat crop(112, 112, CV_8UC3);
            cv::randu(crop, 0, 255);
            cv::GaussianBlur(crop, crop, {7, 7}, 2);  // face-like smoothness, a realistic JPEG size
            // Shared between the edge and the workers: atomics (ns since the clock's epoch).
            std::vector<std::atomic<std::int64_t>> start(static_cast<std::size_t>(items));
            std::vector<std::atomic<std::int64_t>> path_ns(static_cast<std::size_t>(items));
            for (auto& v : path_ns) v.store(-1);
            std::vector<double> publish_ms(static_cast<std::size_t>(items));
            std::atomic<int> done{0};
            std::atomic<bool> stop{false};
            std::vector<std::thread> threads;
            for (int w = 0; w < workers; ++w) {
                threads.emplace_back([&, w] {
                    while (!stop.load()) {
                        auto batch = consumers[static_cast<std::size_t>(w)]->Fetch(32, 100ms);
                        if (!batch.ok()) continue;
                        for (auto& d : *batch) {
                            auto env = fg::bus::DecodeEnvelope(d->data());
                            auto item = env.ok() ? fg::bus::FaceItemFromEnvelope(*env)
                                                 : fg::Result<fg::pipeline::FaceItem>(env.status());
                            if (!item.ok()) {
                                (void)d->Term();
                                continue;
                            }
                            fg::bus::RecognitionResult r{.item_id = item->item_id, .stream_id = item->stream_id,
                                                         .decision = "unknown", .worker_id = "bench"};
                            auto renv = fg::bus::ResultEnvelope(r, "bench", env->camera, 0);
                            if (!renv.ok() || !fg::bus::PublishEnvelope(**bus, *renv).ok() || !d->Ack().ok()) continue;
                            const int index = static_cast<int>(item->frame_index);
                            std::int64_t unset = -1;
                            if (index >= 0 && index < items &&
                                path_ns[static_cast<std::size_t>(index)].compare_exchange_strong(
                                    unset, NowNs() - start[static_cast<std::size_t>(index)].load())) {
                                done.fetch_add(1);
                            }
                        }
                    }
                });
            }
            const auto t0 = Clock::now();
            for (int i = 0; i < items; ++i) {
                fg::pipeline::FaceItem item;
                item.stream_id = "cam" + std::to_string(i % 8);
                item.frame_index = i;
                item.item_id = item.stream_id + "/0/0/" + std::to_string(i);
                item.aligned = crop;
                const std::int64_t t_start = NowNs();
                start[static_cast<std::size_t>(i)].store(t_start);
                auto env = fg::bus::FaceItemEnvelope(item, "bench", item.stream_id, 0);
                if (!env.ok() || !fg::bus::PublishEnvelope(**bus, *env).ok()) {
                    std::fprintf(stderr, "publish %d failed\n", i);
                    rc = 1;
                    break;
                }
                publish_ms[static_cast<std::size_t>(i)] = static_cast<double>(NowNs() - t_start) / 1e6;
            }
            const auto limit = Clock::now() + 60s;
            while (done.load() < items && Clock::now() < limit) std::this_thread::sleep_for(5ms);
            const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
            stop.store(true);
            for (auto& t : threads) t.join();
            std::vector<double> path;
            for (const auto& v : path_ns) {
                if (v.load() >= 0) path.push_back(static_cast<double>(v.load()) / 1e6);
            }
            std::printf(
                "{\"items\": %d, \"workers\": %d, \"completed\": %zu, \"items_per_s\": %.0f, "
                "\"publish_ms_p50\": %.3f, \"publish_ms_p99\": %.3f, \"path_ms_p50\": %.3f, "
                "\"path_ms_p99\": %.3f}\n",
                items, workers, path.size(), static_cast<double>(path.size()) / seconds,
                Percentile(publish_ms, 0.5), Percentile(publish_ms, 0.99), Percentile(path, 0.5),
                Percentile(path, 0.99));
            if (static_cast<int>(path.size()) != items) rc = 1;
        }
    }
    if (server > 0) {
        kill(server, SIGTERM);
        int status = 0;
        waitpid(server, &status, 0);
        std::filesystem::remove_all(dir);
    }
    return rc;
}
