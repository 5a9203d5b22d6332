// SPDX-License-Identifier: Apache-2.0
// Strangers and search by face (issue 15), on synthetic face-shaped 512-d data (people with
// several sightings each: genuine pairs score ~0.6, impostor pairs ~0):
//  - BM_SightingSearch/<codec>/<n>: one search-by-face query (k = 50, min_score 0.3) over n
//    stored sightings, codec 0 = int8, 1 = float16, 2 = float32; counters: resident bytes of
//    the index (mem_MB, bytes_per_sighting) and recall@10 of the codec against exact float.
//  - BM_StrangerAssign/<strangers>: assigning one sighting with that many strangers of 8
//    exemplars each (the sighting is removed again with the timer paused).
//
//   build/dev/bench/fg_strangers_bench --benchmark_min_time=1
// FG_STRANGERS_BENCH_MAX (default 1000000) caps n.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "fg/history/sighting_index.h"
#include "fg/history/strangers.h"

namespace {

using fg::history::SightingCodec;
using fg::history::SightingIndex;

constexpr int kDim = 512;
constexpr int kEach = 5;  // sightings per synthetic person

// A fast normal-ish generator: 1M x 512 std::normal_distribution draws take ~10 s.
struct Gen {
    std::mt19937_64 rng;
    explicit Gen(std::uint64_t seed) : rng(seed) {}
    float Next() {  // sum of 4 uniforms, centred: close enough to Gaussian for direction sampling
        float s = 0;
        for (int i = 0; i < 4; ++i) s += float(rng() >> 40) * (1.0f / float(1 << 24));
        return s - 2.0f;
    }
    void Unit(float* v) {
        double n = 0;
        for (int i = 0; i < kDim; ++i) {
            v[i] = Next();
            n += double(v[i]) * v[i];
        }
        const float inv = float(1.0 / std::sqrt(n));
        for (int i = 0; i < kDim; ++i) v[i] *= inv;
    }
    // A sighting of `center`: cosine ~0.77 to it, ~0.6 to another sighting of it.
    void Sighting(const float* center, float* v) {
        Unit(v);
        double n = 0;
        for (int i = 0; i < kDim; ++i) {
            v[i] = 0.775f * center[i] + 0.632f * v[i];
            n += double(v[i]) * v[i];
        }
        const float inv = float(1.0 / std::sqrt(n));
        for (int i = 0; i < kDim; ++i) v[i] *= inv;
    }
};

std::int64_t MaxN() {
    const char* e = std::getenv("FG_STRANGERS_BENCH_MAX");
    return e ? std::atoll(e) : 1000000;
}

// n sightings, row-major; regenerated per (n) only once per process.
const std::vector<float>& Data(std::int64_t n) {
    static std::map<std::int64_t, std::vector<float>> cache;
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
    cache.clear();  // keep one data set resident (1M x 512 floats is 2 GB)
    std::vector<float> data(std::size_t(n) * kDim);
    Gen g(42);
    std::vector<float> center(kDim);
    for (std::int64_t i = 0; i < n; ++i) {
        if (i % kEach == 0) g.Unit(center.data());
        g.Sighting(center.data(), &data[std::size_t(i) * kDim]);
    }
    return cache.emplace(n, std::move(data)).first->second;
}

std::vector<std::pair<std::int64_t, float>> Exact(const std::vector<float>& data, std::int64_t n,
                                                  const float* q, int k) {
    std::vector<std::pair<std::int64_t, float>> all(std::size_t(n), {0, 0.0f});
    for (std::int64_t i = 0; i < n; ++i) {
        float s = 0;
        for (int j = 0; j < kDim; ++j) s += q[j] * data[std::size_t(i) * kDim + std::size_t(j)];
        all[std::size_t(i)] = {i, s};
    }
    std::partial_sort(all.begin(), all.begin() + k, all.end(),
                      [](auto& a, auto& b) { return a.second > b.second; });
    all.resize(std::size_t(k));
    return all;
}

void BM_SightingSearch(benchmark::State& state) {
    const auto codec = SightingCodec(state.range(0));
    const std::int64_t n = state.range(1);
    if (n > MaxN()) {
        state.SkipWithError("above FG_STRANGERS_BENCH_MAX");
        return;
    }
    const auto& data = Data(n);
    SightingIndex index(kDim, codec);
    index.Reserve(std::size_t(n));
    for (std::int64_t i = 0; i < n; ++i)
        if (!index.Add(i, std::span<const float>(&data[std::size_t(i) * kDim], kDim)).ok()) {
            state.SkipWithError("add failed");
            return;
        }
    // Probes: new sightings of stored people (what search by face sees).
    Gen g(7);
    constexpr int kProbes = 16;
    std::vector<float> probes(std::size_t(kProbes) * kDim), center(kDim);
    for (int p = 0; p < kProbes; ++p) {
        // Recover a stored person's direction from its first sighting (close enough to probe).
        const std::int64_t person = (std::int64_t(p) * 7919 % (n / kEach)) * kEach;
        std::copy_n(&data[std::size_t(person) * kDim], kDim, center.data());
        g.Sighting(center.data(), &probes[std::size_t(p) * kDim]);
    }
    int p = 0;
    for (auto _ : state) {
        auto r = index.Search(std::span<const float>(&probes[std::size_t(p) * kDim], kDim), 50, 0.3f);
        benchmark::DoNotOptimize(r);
        p = (p + 1) % kProbes;
    }
    // recall@10 against the exact float scores (4 probes; ties at the 10th place are rare).
    int hit = 0, want = 0;
    for (int q = 0; q < 4; ++q) {
        const float* probe = &probes[std::size_t(q) * kDim];
        const auto exact = Exact(data, n, probe, 10);
        const auto got = index.Search(std::span<const float>(probe, kDim), 10, -1.0f);
        for (const auto& e : exact) {
            ++want;
            hit += std::any_of(got.begin(), got.end(), [&](auto& x) { return x.first == e.first; });
        }
    }
    state.counters["mem_MB"] = double(index.MemoryBytes()) / 1e6;
    state.counters["bytes_per_sighting"] = double(index.MemoryBytes()) / double(n);
    state.counters["recall@10"] = double(hit) / want;
}
BENCHMARK(BM_SightingSearch)
    ->ArgsProduct({{0, 1, 2}, {100000, 1000000}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_StrangerAssign(benchmark::State& state) {
    const int strangers = int(state.range(0));
    fg::history::StrangerClusterer c({.threshold = 0.40f, .max_exemplars = 8});
    Gen g(9);
    std::vector<float> centers(std::size_t(strangers) * kDim), v(kDim);
    std::int64_t sid = 1;
    for (int s = 0; s < strangers; ++s) {
        float* center = &centers[std::size_t(s) * kDim];
        g.Unit(center);
        for (int e = 0; e < 8; ++e) {
            g.Sighting(center, v.data());
            c.Restore(s + 1, sid++, v, 1.0f);
        }
    }
    int s = 0;
    for (auto _ : state) {
        g.Sighting(&centers[std::size_t(s) * kDim], v.data());
        auto m = c.Assign(sid, v, 0.5f, strangers + 1);
        benchmark::DoNotOptimize(m);
        state.PauseTiming();
        c.RemoveSighting(sid++);
        s = (s + 1) % strangers;
        state.ResumeTiming();
    }
    state.counters["strangers"] = double(c.size());
}
BENCHMARK(BM_StrangerAssign)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
