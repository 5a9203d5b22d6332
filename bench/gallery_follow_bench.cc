// SPDX-License-Identifier: Apache-2.0
// The cost of following a gallery's change log (issue 14): Gallery::Refresh applying one change
// made by another Gallery on the same SQLite file, on a gallery of FG_FOLLOW_BENCH_SIZE
// (default 100 000) synthetic 512-d templates. Only the follower's Refresh is timed; the
// writer's enrollment or deletion happens with the timer paused.
//
//   build/dev/bench/fg_gallery_follow_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fg/gallery/gallery.h"

namespace {

using fg::gallery::BulkFace;
using fg::gallery::Gallery;
using fg::gallery::NewFace;

constexpr int kDim = 512;
constexpr char kModel[] = "bench-model@1";

std::vector<float> Unit(std::mt19937& rng) {
    std::normal_distribution<float> g;
    std::vector<float> v(kDim);
    for (float& x : v) x = g(rng);
    fg::L2Normalize(v);
    return v;
}

/// A writer and a follower on one SQLite gallery of `size` templates (built once per process).
struct Pair {
    std::filesystem::path dir;
    std::unique_ptr<Gallery> writer, follower;
    std::mt19937 rng{12345};
    int next = 0;

    explicit Pair(std::int64_t size) {
        dir = std::filesystem::temp_directory_path() /
              ("fg_follow_bench_" + std::to_string(getpid()));
        std::filesystem::create_directories(dir);
        auto keys = std::make_shared<fg::gallery::KeyRing>(*fg::gallery::ParseKey(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
        const fg::gallery::GalleryOptions o{.location = (dir / "g.db").string(), .keys = keys};
        auto w = Gallery::Open(o);
        if (!w.ok()) std::fprintf(stderr, "open: %s\n", w.status().ToString().c_str());
        writer = std::move(*w);
        for (std::int64_t at = 0; at < size; at += 5000) {
            std::vector<BulkFace> batch;
            for (std::int64_t i = at; i < std::min(size, at + 5000); ++i)
                batch.push_back({"s" + std::to_string(i), NewFace{Unit(rng)}, ""});
            auto r = writer->EnrollBulk(batch, {.model_id = kModel, .force = true});
            if (!r.ok()) std::fprintf(stderr, "enroll: %s\n", r.status().ToString().c_str());
        }
        auto f = Gallery::Open(o);
        if (!f.ok()) std::fprintf(stderr, "open: %s\n", f.status().ToString().c_str());
        follower = std::move(*f);
    }
    ~Pair() {
        writer.reset();
        follower.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

Pair& Shared() {
    static std::int64_t size = [] {
        const char* s = std::getenv("FG_FOLLOW_BENCH_SIZE");
        return s ? std::atoll(s) : 100000;
    }();
    static Pair* pair = new Pair(size);  // intentionally leaked: built once, ~minutes at 100k
    return *pair;
}

void BM_RefreshOneEnroll(benchmark::State& state) {
    Pair& p = Shared();
    for (auto _ : state) {
        state.PauseTiming();
        const std::string id = "new" + std::to_string(p.next++);
        auto r = p.writer->Enroll(id, {.model_id = kModel, .force = true},
                                  std::vector<NewFace>{{Unit(p.rng)}});
        if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
        state.ResumeTiming();
        auto n = p.follower->Refresh();
        if (!n.ok() || *n != 1) state.SkipWithError("refresh did not apply one change");
    }
    state.counters["templates"] = double(p.follower->Stats()->templates);
}

void BM_RefreshOneDelete(benchmark::State& state) {
    Pair& p = Shared();
    for (auto _ : state) {
        state.PauseTiming();
        const std::string id = "del" + std::to_string(p.next++);
        auto r = p.writer->Enroll(id, {.model_id = kModel, .force = true},
                                  std::vector<NewFace>{{Unit(p.rng)}});
        if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
        (void)p.follower->Refresh();
        if (!p.writer->DeleteSubject(id).ok()) state.SkipWithError("delete failed");
        state.ResumeTiming();
        auto n = p.follower->Refresh();
        if (!n.ok() || *n != 1) state.SkipWithError("refresh did not apply one change");
    }
}

void BM_RefreshNothingNew(benchmark::State& state) {
    Pair& p = Shared();
    for (auto _ : state) benchmark::DoNotOptimize(p.follower->Refresh());
}

BENCHMARK(BM_RefreshOneEnroll)->Unit(benchmark::kMicrosecond)->Iterations(200);
BENCHMARK(BM_RefreshOneDelete)->Unit(benchmark::kMicrosecond)->Iterations(200);
BENCHMARK(BM_RefreshNothingNew)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
