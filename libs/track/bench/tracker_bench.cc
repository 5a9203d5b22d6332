// SPDX-License-Identifier: Apache-2.0
// Tracker::Update cost with 1, 10 and 50 faces moving on a 1920x1080 frame.
#include <benchmark/benchmark.h>

#include <random>

#include "fg/track/tracker.h"

namespace {

void BM_TrackerUpdate(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    struct Face {
        float x, y, vx, vy;
    };
    std::vector<Face> faces;
    // A grid keeps faces apart, as in a crowd walking toward the camera.
    const int cols = 10;
    for (int i = 0; i < n; ++i) {
        faces.push_back({100.0f + 170.0f * (i % cols), 100.0f + 180.0f * (i / cols),
                         2 * u(rng) - 1, 2 * u(rng) - 1});
    }
    auto tracker = std::move(fg::track::Tracker::Create({.max_lost_frames = 1000000})).value();
    std::vector<fg::track::Detection> dets(n);
    std::size_t matched = 0;
    for (auto _ : state) {
        for (int i = 0; i < n; ++i) {
            Face& f = faces[i];
            f.x += f.vx;
            f.y += f.vy;
            dets[i] = {{f.x - 40, f.y - 48, 80, 96}, 0.9f};
        }
        const auto step = tracker->Update(dets);
        for (const auto& t : step.tracks) {
            matched += t.detection_index >= 0 ? 1 : 0;
        }
        benchmark::DoNotOptimize(step);
    }
    // Sanity: every face stays on one track (a fast but wrong tracker would fail here).
    if (tracker->tracks().size() != static_cast<std::size_t>(n)) {
        state.SkipWithError("track count drifted");
    }
    state.counters["matched_per_update"] =
        benchmark::Counter(static_cast<double>(matched), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_TrackerUpdate)->Arg(1)->Arg(10)->Arg(50)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
