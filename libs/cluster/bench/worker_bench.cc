// SPDX-License-Identifier: Apache-2.0
// fg_cluster_bench: face items per second through a real nats-server and K `facegate worker`
// processes (stub or model embedder), and the per-item round trip of the bus path vs the same
// work in process. Starts its own nats-server on a free loopback port; prints one JSON object.
//   fg_cluster_bench --workers 3 --embedder model --items 300
// Everything runs on this box: the publisher (the edges' part), nats-server, the workers and the
// result consumer share its cores, as they would not in a deployment.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "bus_test_util.h"
#include "fg/base/paths.h"
#include "fg/bus/nats.h"
#include "fg/cluster/embedders.h"
#include "fg/cluster/result_consumer.h"
#include "fg/image/image_io.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

/// Face-like crops (dlib's example photos resized to 112x112): their JPEG size is a real face's.
std::vector<cv::Mat> Crops() {
    std::vector<cv::Mat> out;
    const fs::path johns = fg::DlibExamplesDir() / "johns";
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(johns, ec)) {
        for (const auto& f : fs::directory_iterator(d.path())) {
            auto img = fg::LoadImage(f.path());
            if (!img.ok()) continue;
            cv::Mat c;
            cv::resize(*img, c, {112, 112});
            out.push_back(c);
            if (out.size() % 4 == 0) break;
        }
    }
    if (out.empty()) {  // no dlib photos: a smooth synthetic crop
        cv::Mat c(112, 112, CV_8UC3);
        cv::randu(c, 60, 200);
        cv::GaussianBlur(c, c, {0, 0}, 4);
        out.push_back(c);
    }
    return out;
}

pid_t Spawn(const std::string& bin, std::vector<std::string> args, const fs::path& log) {
    args.insert(args.begin(), bin);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, (log.string() + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, (log.string() + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

std::string ReadAll(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
}

/// Counts results and wakes a waiter for a given id.
struct Collector {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;
    std::string last_id;
    Clock::time_point last_at;
};

}  // namespace

int main(int argc, char** argv) {
    std::string facegate = FG_FACEGATE_BIN, embedder = "stub";
    int workers = 1, items = 300, latency_items = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--facegate") facegate = v;
        else if (k == "--workers") workers = std::stoi(v);
        else if (k == "--embedder") embedder = v;
        else if (k == "--items") items = std::stoi(v);
        else if (k == "--latency-items") latency_items = std::stoi(v);
        else {
            std::cerr << "usage: fg_cluster_bench [--workers K] [--embedder stub|model] [--items N] "
                         "[--latency-items M] [--facegate BIN]\n";
            return 2;
        }
    }
    fg::testing::TmpDir tmp;
    fg::bus::testing::NatsServer server(tmp.path());
    if (!server.Start()) {
        std::cerr << "nats-server did not start\n";
        return 1;
    }
    fg::bus::NatsConfig nc;
    nc.url = server.url();
    auto bus = fg::bus::CreateNatsBus(nc);
    if (!bus.ok()) {
        std::cerr << bus.status().ToString() << "\n";
        return 1;
    }
    const std::vector<cv::Mat> crops = Crops();

    Collector col;
    fg::cluster::ResultConsumer rc({.region = "bench", .group = "bench", .fetch_batch = 64, .fetch_wait = 50ms},
                                   **bus, [&](const fg::bus::RecognitionResult& r, const fg::bus::Envelope&) {
                                       std::lock_guard lock(col.mu);
                                       ++col.count;
                                       col.last_id = r.item_id;
                                       col.last_at = Clock::now();
                                       col.cv.notify_all();
                                   });
    if (!rc.Start().ok()) return 1;

    std::vector<pid_t> pids;
    for (int w = 0; w < workers; ++w) {
        pids.push_back(Spawn(facegate,
                             {"worker", "--bus", server.url(), "--region", "bench", "--worker-id",
                              "b" + std::to_string(w), "--embedder", embedder, "--threads", "1",
                              "--batch", "8"},
                             tmp / ("w" + std::to_string(w))));
    }
    auto stop_workers = [&] {
        for (pid_t p : pids) kill(p, SIGTERM);
        for (pid_t p : pids) waitpid(p, nullptr, 0);
    };
    // Ready: each worker printed its "ready" line (engine loaded, consuming).
    const auto ready_by = Clock::now() + 60s;
    for (int w = 0; w < workers; ++w) {
        while (ReadAll(tmp / ("w" + std::to_string(w) + ".out")).find("ready") == std::string::npos) {
            if (Clock::now() > ready_by) {
                std::cerr << "worker " << w << " not ready: " << ReadAll(tmp / ("w" + std::to_string(w) + ".err"));
                stop_workers();
                return 1;
            }
            std::this_thread::sleep_for(20ms);
        }
    }

    int next = 0;
    auto publish = [&](int i) {
        fg::pipeline::FaceItem item;
        item.stream_id = "cam" + std::to_string(i % 8);
        item.track_id = static_cast<std::uint64_t>(i);
        item.frame_index = i;
        item.item_id = item.stream_id + "/0/" + std::to_string(i) + "/" + std::to_string(i);
        item.aligned = crops[static_cast<std::size_t>(i) % crops.size()];
        auto env = fg::bus::FaceItemEnvelope(item, "bench", item.stream_id, 0);
        return env.ok() && fg::bus::PublishEnvelope(**bus, *env).ok();
    };
    auto wait_count = [&](int n, std::chrono::seconds limit) {
        std::unique_lock lock(col.mu);
        return col.cv.wait_for(lock, limit, [&] { return col.count >= n; });
    };

    // Warm-up: every worker's first inference and connections.
    for (int i = 0; i < 4 * workers; ++i) publish(next++);
    if (!wait_count(next, 60s)) {
        std::cerr << "warm-up results did not come\n";
        stop_workers();
        return 1;
    }

    // Throughput: N items published as fast as one publisher can, until the N-th result.
    const int base = next;
    const auto t0 = Clock::now();
    for (int i = 0; i < items; ++i) publish(next++);
    const auto published_at = Clock::now();
    if (!wait_count(next, 300s)) {
        std::cerr << "throughput results did not all come\n";
        stop_workers();
        return 1;
    }
    Clock::time_point t1;
    {
        std::lock_guard lock(col.mu);
        t1 = col.last_at;
    }
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    (void)base;

    // Round trip of one item at a time: publish, wait for its result.
    std::vector<double> rtt;
    for (int k = 0; k < latency_items; ++k) {
        const int id = next++;
        const auto s = Clock::now();
        publish(id);
        if (!wait_count(next, 30s)) break;
        rtt.push_back(Ms(Clock::now() - s));
    }
    // The same item's work in process: the stub embedding and the decision, no bus.
    auto stub = fg::cluster::MakeStubEmbedder();
    std::vector<double> local;
    for (int k = 0; k < latency_items; ++k) {
        fg::pipeline::FaceItem item;
        item.item_id = "x";
        item.aligned = crops[static_cast<std::size_t>(k) % crops.size()];
        const auto s = Clock::now();
        std::vector<fg::Embedding> e;
        (void)stub->Embed({item.aligned}, e);
        fg::pipeline::IdentityVerdict v;
        const auto r = fg::cluster::Decide(item, &v, "local");
        local.push_back(Ms(Clock::now() - s));
        (void)r;
    }
    stop_workers();
    rc.Stop();

    const nlohmann::json out = {
        {"workers", workers},
        {"embedder", embedder},
        {"items", items},
        {"items_per_s", static_cast<double>(items) / seconds},
        {"publish_items_per_s", static_cast<double>(items) / std::chrono::duration<double>(published_at - t0).count()},
        {"round_trip_ms", {{"p50", Percentile(rtt, 0.5)}, {"p99", Percentile(rtt, 0.99)}, {"n", rtt.size()}}},
        {"in_process_ms", {{"p50", Percentile(local, 0.5)}, {"p99", Percentile(local, 0.99)}}},
        {"bus_overhead_p50_ms", Percentile(rtt, 0.5) - Percentile(local, 0.5)},
        {"crops", crops.size()},
    };
    std::printf("%s\n", out.dump().c_str());
    return 0;
}
