// SPDX-License-Identifier: Apache-2.0
// fg_cluster_latency_bench: latency from an edge's best shot to its result at the consumer
// (issue 17), p50/p99, through a real nats-server on loopback. One process holds the roles'
// real code: EdgePublisher (Submit = the moment the best shot is chosen), K RecognitionWorkers
// (stub or model embedder, no gallery) and a ResultConsumer whose callback is the receive time;
// one clock, so no skew. Three loads: items paced at --rate (a site's steady flow), saturation
// (--edges threads submitting --sat-items back to back: throughput, and the latency of a burst,
// which grows with the backlog), and paced at --near (0.8) of that throughput. Prints one JSON object.
//   fg_cluster_latency_bench --embedder stub --rate 20 --items 300 --sat-items 1000 --runs 3
// Everything shares this box's cores (nats-server included), as it would not in a deployment.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "bus_test_util.h"
#include "fg/base/paths.h"
#include "fg/bus/disk_buffer.h"
#include "fg/bus/edge_publisher.h"
#include "fg/bus/nats.h"
#include "fg/cluster/embedders.h"
#include "fg/cluster/result_consumer.h"
#include "fg/cluster/worker.h"
#include "fg/image/image_io.h"
#include "fg/vision/engine.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SysClock = std::chrono::system_clock;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kEpoch = 1;
constexpr int kCameras = 8;

double Percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

/// Face-like crops (dlib's example photos resized to 112x112), else a smooth synthetic one.
std::vector<cv::Mat> Crops() {
    std::vector<cv::Mat> out;
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(fg::DlibExamplesDir() / "johns", ec)) {
        for (const auto& f : fs::directory_iterator(d.path())) {
            auto img = fg::LoadImage(f.path());
            if (!img.ok()) continue;
            cv::Mat c;
            cv::resize(*img, c, {112, 112});
            out.push_back(c);
            if (out.size() % 4 == 0) break;
        }
    }
    if (out.empty()) {
        cv::Mat c(112, 112, CV_8UC3);
        cv::randu(c, 60, 200);
        cv::GaussianBlur(c, c, {0, 0}, 4);
        out.push_back(c);
    }
    return out;
}

/// Submit times by published id, and the latencies of the results that came back.
class Clocker {
  public:
    void Sent(const std::string& id, SysClock::time_point at) {
        std::lock_guard lock(mu_);
        sent_[id] = at;
    }
    void Received(const fg::bus::RecognitionResult& r) {
        const auto now = SysClock::now();
        std::lock_guard lock(mu_);
        auto it = sent_.find(r.item_id);
        if (it == sent_.end()) return;
        latencies_.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
        last_ = now;
        sent_.erase(it);
        cv_.notify_all();
    }
    /// Waits until `n` results came since the last Take, at most `limit`.
    bool Wait(std::size_t n, std::chrono::seconds limit) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, limit, [&] { return latencies_.size() >= n; });
    }
    std::vector<double> Take(SysClock::time_point* last = nullptr) {
        std::lock_guard lock(mu_);
        if (last) *last = last_;
        return std::exchange(latencies_, {});
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::unordered_map<std::string, SysClock::time_point> sent_;
    std::vector<double> latencies_;
    SysClock::time_point last_;
};

}  // namespace

int main(int argc, char** argv) {
    std::string embedder_kind = "stub";
    int workers = 2, items = 300, sat_items = 1000, edges = 4, runs = 3, model_threads = 2;
    double rate = 20, near = 0.8;
    int fetch_wait_ms = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--embedder") embedder_kind = v;
        else if (k == "--workers") workers = std::stoi(v);
        else if (k == "--rate") rate = std::stod(v);
        else if (k == "--items") items = std::stoi(v);
        else if (k == "--sat-items") sat_items = std::stoi(v);
        else if (k == "--edges") edges = std::stoi(v);
        else if (k == "--runs") runs = std::stoi(v);
        else if (k == "--model-threads") model_threads = std::stoi(v);
        else if (k == "--near") near = std::stod(v);
        else if (k == "--fetch-wait-ms") fetch_wait_ms = std::stoi(v);
        else {
            std::cerr << "usage: fg_cluster_latency_bench [--embedder stub|model] [--workers K] [--rate R] "
                         "[--items N] [--sat-items M] [--edges E] [--runs X] [--model-threads T] "
                         "[--near F] [--fetch-wait-ms W]\n";
            return 2;
        }
    }
    std::shared_ptr<fg::cluster::FaceEmbedder> embedder;
    if (embedder_kind == "stub") {
        embedder = fg::cluster::MakeStubEmbedder();
    } else if (embedder_kind == "model") {
        if (!fs::exists(fg::ModelsDir() / "fr_feature.onnx")) {
            std::cerr << "no default model pack in " << fg::ModelsDir() << "\n";
            return 1;
        }
        auto engine = fg::vision::Engine::Create({.pack = "default", .backend = {.threads = model_threads}});
        if (!engine.ok()) {
            std::cerr << engine.status().ToString() << "\n";
            return 1;
        }
        auto models = fg::pipeline::MakeEngineModels(*engine);
        fg::Result<std::shared_ptr<fg::cluster::FaceEmbedder>> e =
            models.ok() ? fg::cluster::MakeModelEmbedder(**models)
                        : fg::Result<std::shared_ptr<fg::cluster::FaceEmbedder>>(models.status());
        if (!e.ok()) {
            std::cerr << e.status().ToString() << "\n";
            return 1;
        }
        embedder = *e;
    } else {
        std::cerr << "--embedder: stub or model\n";
        return 2;
    }

    fg::testing::TmpDir tmp;
    fg::bus::testing::NatsServer server(tmp.path());
    if (!server.Start()) {
        std::cerr << "nats-server did not start\n";
        return 1;
    }
    // One connection per role, as separate processes would have.
    auto connect = [&](const std::string& name) -> std::shared_ptr<fg::bus::Bus> {
        fg::bus::NatsConfig nc;
        nc.url = server.url();
        nc.name = name;
        auto bus = fg::bus::CreateNatsBus(nc);
        if (!bus.ok()) {
            std::cerr << bus.status().ToString() << "\n";
            return nullptr;
        }
        return std::shared_ptr<fg::bus::Bus>(std::move(*bus));
    };
    std::shared_ptr<fg::bus::Bus> edge_bus = connect("edge"), rc_bus = connect("results");
    if (!edge_bus || !rc_bus) return 1;
    const std::vector<cv::Mat> crops = Crops();

    Clocker clock;
    fg::cluster::ResultConsumer rc({.region = "lat", .group = "bench", .fetch_wait = std::chrono::milliseconds(fetch_wait_ms)},
                                   *rc_bus, [&](const fg::bus::RecognitionResult& r, const fg::bus::Envelope&) {
                                       clock.Received(r);
                                   });
    if (!rc.Start().ok()) return 1;
    std::vector<std::shared_ptr<fg::bus::Bus>> worker_buses;
    std::vector<std::unique_ptr<fg::cluster::RecognitionWorker>> ws;
    for (int w = 0; w < workers; ++w) {
        worker_buses.push_back(connect("w" + std::to_string(w)));
        if (!worker_buses.back()) return 1;
        ws.push_back(std::make_unique<fg::cluster::RecognitionWorker>(
            fg::cluster::WorkerConfig{.worker_id = "w" + std::to_string(w), .region = "lat", .threads = 1,
                                      .fetch_batch = 8, .fetch_wait = std::chrono::milliseconds(fetch_wait_ms)},
            *worker_buses.back(), embedder, nullptr));
        if (!ws.back()->Start().ok()) return 1;
    }
    auto buffer = fg::bus::DiskBuffer::Open({.dir = tmp / "edge"});
    if (!buffer.ok()) {
        std::cerr << buffer.status().ToString() << "\n";
        return 1;
    }
    fg::bus::EdgePublisher edge(edge_bus, std::move(*buffer), {.region = "lat", .epoch = kEpoch});
    if (!edge.Start().ok()) return 1;

    std::atomic<int> next{0};
    auto submit = [&] {
        const int i = next.fetch_add(1);
        fg::pipeline::FaceItem item;
        item.stream_id = "cam" + std::to_string(i % kCameras);
        item.track_id = static_cast<std::uint64_t>(i);
        item.frame_index = i;
        item.item_id = item.stream_id + "/0/" + std::to_string(i) + "/" + std::to_string(i);
        item.quality = 0.8f;
        item.aligned = crops[static_cast<std::size_t>(i) % crops.size()];
        const auto now = SysClock::now();
        item.capture_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
        clock.Sent(fg::bus::EdgeItemId(item, kEpoch), now);
        if (!edge.Submit(item).ok()) std::cerr << "submit failed\n";
    };

    // Warm-up: connections, consumers, the model's first passes.
    for (int i = 0; i < 8 * workers; ++i) submit();
    if (!clock.Wait(static_cast<std::size_t>(8 * workers), 120s)) {
        std::cerr << "warm-up results did not come\n";
        return 1;
    }
    clock.Take();

    nlohmann::json paced_runs = nlohmann::json::array(), sat_runs = nlohmann::json::array();
    nlohmann::json near_runs = nlohmann::json::array();
    std::vector<double> paced_p50, paced_p99, sat_p50, sat_p99, sat_rate, near_p50, near_p99;
    for (int run = 0; run < runs; ++run) {
        // Paced: one item every 1/rate s (round-robin over the cameras), as a site's edges send.
        const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
        auto due = Clock::now();
        for (int i = 0; i < items; ++i) {
            std::this_thread::sleep_until(due);
            submit();
            due += period;
        }
        if (!clock.Wait(static_cast<std::size_t>(items), 120s)) {
            std::cerr << "paced results did not all come\n";
            return 1;
        }
        std::vector<double> lat = clock.Take();
        paced_p50.push_back(Percentile(lat, 0.5));
        paced_p99.push_back(Percentile(lat, 0.99));
        paced_runs.push_back({{"p50_ms", paced_p50.back()}, {"p99_ms", paced_p99.back()}, {"n", lat.size()}});

        // Saturation: `edges` threads submit back to back (each Submit waits for the bus's ack).
        const auto t0 = SysClock::now();
        std::atomic<int> left{sat_items};
        std::vector<std::thread> threads;
        for (int e = 0; e < edges; ++e) {
            threads.emplace_back([&] {
                while (left.fetch_sub(1) > 0) submit();
            });
        }
        for (auto& t : threads) t.join();
        if (!clock.Wait(static_cast<std::size_t>(sat_items), 600s)) {
            std::cerr << "saturation results did not all come\n";
            return 1;
        }
        SysClock::time_point last;
        lat = clock.Take(&last);
        const double per_s = static_cast<double>(sat_items) / std::chrono::duration<double>(last - t0).count();
        sat_p50.push_back(Percentile(lat, 0.5));
        sat_p99.push_back(Percentile(lat, 0.99));
        sat_rate.push_back(per_s);
        sat_runs.push_back({{"p50_ms", sat_p50.back()}, {"p99_ms", sat_p99.back()}, {"items_per_s", per_s},
                            {"n", lat.size()}});

        // Near saturation: paced at --near of that throughput over `edges` threads (the backlog
        // a burst builds above says little of steady latency; this is the busy site's figure).
        const double near_rate = near * per_s;
        const int near_items = std::max(items, static_cast<int>(near_rate * 10));  // ~10 s
        std::atomic<int> near_left{near_items};
        threads.clear();
        const auto start = Clock::now();
        const auto near_period =
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(edges / near_rate));
        for (int e = 0; e < edges; ++e) {
            threads.emplace_back([&, e] {
                auto due_e = start + near_period * e / edges;
                while (near_left.fetch_sub(1) > 0) {
                    std::this_thread::sleep_until(due_e);
                    submit();
                    due_e += near_period;
                }
            });
        }
        for (auto& t : threads) t.join();
        if (!clock.Wait(static_cast<std::size_t>(near_items), 600s)) {
            std::cerr << "near-saturation results did not all come\n";
            return 1;
        }
        lat = clock.Take();
        near_p50.push_back(Percentile(lat, 0.5));
        near_p99.push_back(Percentile(lat, 0.99));
        near_runs.push_back({{"rate_per_s", near_rate}, {"p50_ms", near_p50.back()}, {"p99_ms", near_p99.back()},
                             {"n", lat.size()}});
    }
    edge.Stop();
    for (auto& w : ws) w->Stop();
    rc.Stop();

    const nlohmann::json out = {
        {"embedder", embedder_kind},
        {"workers", workers},
        {"fetch_wait_ms", fetch_wait_ms},
        {"paced", {{"rate_per_s", rate}, {"items", items}, {"p50_ms_median", Median(paced_p50)},
                   {"p99_ms_median", Median(paced_p99)}, {"runs", paced_runs}}},
        {"saturation", {{"edges", edges}, {"items", sat_items}, {"p50_ms_median", Median(sat_p50)},
                        {"p99_ms_median", Median(sat_p99)}, {"items_per_s_median", Median(sat_rate)},
                        {"runs", sat_runs}}},
        {"near_saturation", {{"fraction", near}, {"p50_ms_median", Median(near_p50)},
                             {"p99_ms_median", Median(near_p99)}, {"runs", near_runs}}},
        {"crops", crops.size()},
    };
    std::printf("%s\n", out.dump().c_str());
    return 0;
}
