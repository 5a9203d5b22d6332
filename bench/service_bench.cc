// SPDX-License-Identifier: Apache-2.0
// Data and the in-process side of the service figures (bench/service.sh, BENCHMARKS.md "Service"):
//
//   fg_service_bench make DIR [SIZE [MODEL]]    # DIR/gallery.db (+ gallery.key): SIZE face-shaped
//                                               # 512-d templates of MODEL (default "bench"; serve
//                                               # wants its engine's); DIR/probes.json; identify.lua
//   fg_service_bench identify DIR THREADS SECONDS   # Gallery::Identify over the same probes in
//                                               # THREADS threads: JSON {rate, p50_ms, p99_ms}
//   fg_service_bench image GALLERY_DB JPEG THREADS SECONDS  # what POST /v1/identify does with an
//                                               # image, in process: decode, detect, align, embed
//                                               # (default pack, 1 inference thread per worker, as
//                                               # serve's engine.threads 1), search every face
//
// The templates follow the "face" model of `facegate bench gallery` (cmd_bench_gallery.cc:
// people's centres with eigenvalues ~exp(-i/45), photos scattered ~exp(-i/65) around them,
// genuine cosine ~0.7), without its random rotation (the scan index fits its own components, so
// the axes give it nothing). A probe is a new photo of an enrolled person: what an access
// door sends. wrk and this program read the same probes, so both sides do the same searches.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"
#include "fg/vision/engine.h"

namespace {

constexpr int kDim = 512;
constexpr int kProbes = 256;
constexpr char kKeyHex[] = "6161616161616161616161616161616161616161616161616161616161616161";

int Usage() {
    std::fprintf(stderr,
                 "usage: fg_service_bench make DIR [SIZE [MODEL_ID]]\n"
                 "       fg_service_bench identify DIR THREADS SECONDS\n"
                 "       fg_service_bench image GALLERY_DB JPEG THREADS SECONDS\n");
    return 2;
}

std::shared_ptr<fg::gallery::KeyRing> Keys() {
    return std::make_shared<fg::gallery::KeyRing>(*fg::gallery::ParseKey(kKeyHex));
}

std::vector<float> Scales(double decay, double share) {
    std::vector<float> s(kDim);
    double total = 0;
    for (int k = 0; k < kDim; ++k) total += std::exp(-k / decay);
    for (int k = 0; k < kDim; ++k) s[k] = float(std::sqrt(share * std::exp(-k / decay) / total));
    return s;
}

int Make(const std::filesystem::path& dir, long size, const std::string& model) {
    std::filesystem::create_directories(dir);
    if (std::filesystem::exists(dir / "gallery.db")) {
        std::fprintf(stderr, "%s exists\n", (dir / "gallery.db").c_str());
        return 1;
    }
    {
        std::ofstream key(dir / "gallery.key");
        key << kKeyHex << "\n";
    }
    std::filesystem::permissions(dir / "gallery.key",
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    fg::gallery::GalleryOptions o{.location = (dir / "gallery.db").string(), .keys = Keys()};
    o.snapshot_min_size = 1;
    auto g = fg::gallery::Gallery::Open(o);
    if (!g.ok()) {
        std::fprintf(stderr, "open: %s\n", g.status().ToString().c_str());
        return 1;
    }
    const std::vector<float> between = Scales(45, 1.0), within = Scales(65, 0.39);
    std::mt19937 rng(12345);
    std::normal_distribution<float> gauss;
    std::uniform_int_distribution<long> pick(0, size - 1);
    std::vector<long> sources(kProbes);
    for (long& s : sources) s = pick(rng);
    std::vector<std::vector<float>> centres(kProbes);
    std::vector<float> c(kDim);
    std::vector<fg::gallery::BulkFace> batch;
    for (long i = 0; i < size; ++i) {
        for (int k = 0; k < kDim; ++k) c[k] = between[k] * gauss(rng);
        for (int p = 0; p < kProbes; ++p) {
            if (sources[p] == i) centres[p] = c;
        }
        std::vector<float> x(kDim);
        for (int k = 0; k < kDim; ++k) x[k] = c[k] + within[k] * gauss(rng);
        fg::L2Normalize(x);
        batch.push_back({"s" + std::to_string(i), fg::gallery::NewFace{std::move(x)}, ""});
        if (batch.size() == 5000 || i + 1 == size) {
            auto r = (*g)->EnrollBulk(batch, {.model_id = model, .force = true});
            if (!r.ok()) {
                std::fprintf(stderr, "enroll: %s\n", r.status().ToString().c_str());
                return 1;
            }
            batch.clear();
        }
    }
    if (auto s = (*g)->Close(); !s.ok()) std::fprintf(stderr, "snapshot: %s\n", s.ToString().c_str());
    nlohmann::json probes = nlohmann::json::array();
    for (int p = 0; p < kProbes; ++p) {
        std::vector<float> x(kDim);
        for (int k = 0; k < kDim; ++k) x[k] = centres[p][k] + within[k] * gauss(rng);
        fg::L2Normalize(x);
        probes.push_back({{"embedding", x}, {"model_id", model}});
    }
    std::ofstream(dir / "probes.json") << probes.dump() << "\n";
    // wrk: each connection cycles through the probes (the bodies are built once, at setup).
    std::ofstream lua(dir / "identify.lua");
    lua << "-- generated by fg_service_bench make: POST /v1/identify with the probes of probes.json\n"
           "local bodies = {\n";
    for (const auto& p : probes) lua << "  [[" << p.dump() << "]],\n";
    lua << "}\n"
           "local i = 0\n"
           "wrk.method = \"POST\"\n"
           "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
           "wrk.headers[\"Authorization\"] = \"Bearer \" .. os.getenv(\"FG_BENCH_KEY\")\n"
           "request = function()\n"
           "  i = i % #bodies + 1\n"
           "  return wrk.format(nil, nil, nil, bodies[i])\n"
           "end\n"
           "done = function(summary, latency, requests)\n"
           "  io.write(string.format(\"WRK_JSON {\\\"requests\\\": %d, \\\"rate\\\": %.1f, \\\"p50_ms\\\": %.3f, "
           "\\\"p99_ms\\\": %.3f, \\\"non2xx\\\": %d, \\\"errors\\\": %d}\\n\",\n"
           "    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,\n"
           "    latency:percentile(99) / 1000, summary.errors.status, summary.errors.connect + "
           "summary.errors.read + summary.errors.write + summary.errors.timeout))\n"
           "end\n";
    std::printf("{\"templates\": %ld, \"probes\": %d, \"dir\": \"%s\"}\n", size, kProbes, dir.c_str());
    return 0;
}

/// Runs `work` in `threads` threads for `seconds`; prints rate and latency as JSON.
int Measure(int threads, double seconds, const std::function<bool(int thread, std::size_t i)>& work) {
    std::atomic<bool> stop{false};
    std::atomic<long> failures{0};
    std::vector<std::vector<double>> ms(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (std::size_t i = static_cast<std::size_t>(t); !stop.load(std::memory_order_relaxed);
                 i += static_cast<std::size_t>(threads)) {
                const auto a = std::chrono::steady_clock::now();
                if (!work(t, i)) ++failures;
                ms[t].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<double> all;
    for (const auto& v : ms) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, std::size_t(p * all.size()))]; };
    std::printf("{\"threads\": %d, \"requests\": %zu, \"rate\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
                "\"failures\": %ld}\n",
                threads, all.size(), double(all.size()) / elapsed, pct(0.50), pct(0.99), failures.load());
    return failures > 0 ? 1 : 0;
}

int Identify(const std::filesystem::path& dir, int threads, double seconds) {
    fg::gallery::GalleryOptions o{.location = (dir / "gallery.db").string(), .keys = Keys()};
    o.create_if_missing = false;
    auto g = fg::gallery::Gallery::Open(o);
    if (!g.ok()) {
        std::fprintf(stderr, "open: %s\n", g.status().ToString().c_str());
        return 1;
    }
    std::ifstream in(dir / "probes.json");
    const auto doc = nlohmann::json::parse(in, nullptr, false);
    if (!doc.is_array() || doc.empty()) {
        std::fprintf(stderr, "%s: not a probe list\n", (dir / "probes.json").c_str());
        return 1;
    }
    std::vector<fg::Embedding> probes;
    for (const auto& p : doc) {
        fg::Embedding e;
        e.model_id = p["model_id"].get<std::string>();
        e.values = p["embedding"].get<std::vector<float>>();
        probes.push_back(std::move(e));
    }
    return Measure(threads, seconds, [&](int, std::size_t i) { return (*g)->Identify(probes[i % probes.size()]).ok(); });
}

int Image(const std::string& db, const std::string& jpeg, int threads, double seconds) {
    fg::gallery::GalleryOptions o{.location = db, .keys = Keys()};
    o.create_if_missing = false;
    auto g = fg::gallery::Gallery::Open(o);
    if (!g.ok()) {
        std::fprintf(stderr, "open: %s\n", g.status().ToString().c_str());
        return 1;
    }
    std::ifstream in(jpeg, std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fg::vision::EngineConfig config;
    config.backend.threads = 1;
    auto engine = fg::vision::Engine::Create(config);
    if (!engine.ok()) {
        std::fprintf(stderr, "engine: %s\n", engine.status().ToString().c_str());
        return 1;
    }
    std::vector<std::unique_ptr<fg::vision::Worker>> workers;
    for (int t = 0; t < threads; ++t) {
        auto w = (*engine)->CreateWorker();
        if (!w.ok()) return 1;
        workers.push_back(std::move(*w));
    }
    return Measure(threads, seconds, [&](int t, std::size_t) {
        auto image = fg::DecodeImage(bytes);
        if (!image.ok()) return false;
        auto faces = workers[static_cast<std::size_t>(t)]->Analyze(*image);
        if (!faces.ok() || faces->empty()) return false;
        for (const auto& f : *faces) {
            if (f.embedding && !(*g)->Identify(*f.embedding).ok()) return false;
        }
        return true;
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return Usage();
    const std::string cmd = argv[1];
    if (cmd == "make") return Make(argv[2], argc > 3 ? std::atol(argv[3]) : 100000, argc > 4 ? argv[4] : "bench");
    if (cmd == "identify" && argc == 5) return Identify(argv[2], std::atoi(argv[3]), std::atof(argv[4]));
    if (cmd == "image" && argc == 6) return Image(argv[2], argv[3], std::atoi(argv[4]), std::atof(argv[5]));
    return Usage();
}
