// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

namespace fg::eval {
namespace {

TEST(Calibration, ThresholdsMeetTargetFarAndTarIsMeasured) {
    std::mt19937 rng(7);
    std::printf("seed 7\n");
    std::normal_distribution<float> imp(0.f, 0.1f), gen(0.6f, 0.1f);
    std::vector<float> g(2000), i(50000);
    for (float& x : g) x = gen(rng);
    for (float& x : i) x = imp(rng);
    auto rep = Calibrate(g, i);
    ASSERT_TRUE(rep.ok());
    ASSERT_EQ(rep->points.size(), 4u);
    float last = -1;
    for (const OperatingPoint& p : rep->points) {
        if (p.resolvable) {
            EXPECT_LE(p.far, p.target_far) << p.target_far;
        }
        EXPECT_GT(p.threshold, last);  // stricter FAR => higher threshold
        last = p.threshold;
    }
    EXPECT_TRUE(rep->points[0].resolvable);
    EXPECT_FALSE(rep->points[3].resolvable);  // 5e4 pairs cannot measure 1e-5
    // 1e-2 of N(0, 0.1) is ~0.233; TAR of N(0.6, 0.1) above it ~1.
    EXPECT_NEAR(rep->points[0].threshold, 0.233f, 0.01f);
    EXPECT_GT(rep->points[0].tar, 0.99);
    // Open-set risk grows with gallery size and saturates at 1.
    const auto& growth = rep->growth[1];
    for (size_t k = 1; k < growth.size(); ++k)
        EXPECT_GE(growth[k].open_set_far, growth[k - 1].open_set_far);
    EXPECT_NEAR(growth[0].open_set_far, 1 - std::pow(1 - rep->points[1].far, 10.0), 1e-9);
    EXPECT_FALSE(Calibrate({}, i).ok());
}

TEST(Calibration, FindPointMatchesTheTarget) {
    auto rep = Calibrate({0.9f, 0.8f}, {0.1f, 0.2f, 0.3f});
    ASSERT_TRUE(rep.ok());
    const OperatingPoint* p = FindPoint(*rep, 1e-3);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->target_far, 1e-3);
    EXPECT_EQ(FindPoint(*rep, 5e-3), nullptr);
    // Three impostor pairs cannot resolve 1e-3: the threshold sits just above the highest one.
    EXPECT_FALSE(p->resolvable);
    EXPECT_EQ(p->threshold, std::nextafter(0.3f, 2.f));
    EXPECT_EQ(p->tar, 1.0);
}

TEST(ScoreAllPairs, SplitsPairsByLabel) {
    // Unit vectors: e0, e0, e1 and (e0+e1)/sqrt(2).
    const float h = std::sqrt(0.5f);
    std::vector<std::vector<float>> v{{1, 0}, {1, 0}, {0, 1}, {h, h}};
    std::vector<int> labels{7, 7, 3, 3};
    auto s = ScoreAllPairs(v, labels);
    ASSERT_TRUE(s.ok());
    // Genuine: (0,1) = 1 and (2,3) = h; impostor: (0,2) = 0, (0,3) = h, (1,2) = 0, (1,3) = h.
    EXPECT_EQ(s->genuine, (std::vector<float>{1.f, h}));
    ASSERT_EQ(s->impostor.size(), 4u);
    EXPECT_FLOAT_EQ(s->impostor[0], 0.f);
    EXPECT_FLOAT_EQ(s->impostor[1], h);
    EXPECT_FALSE(ScoreAllPairs(v, std::vector<int>{1, 2}).ok());
    std::vector<std::vector<float>> ragged{{1, 0}, {1}};
    EXPECT_FALSE(ScoreAllPairs(ragged, std::vector<int>{1, 2}).ok());
    // Calibration on a tiny labelled set goes end to end.
    auto rep = Calibrate(s->genuine, s->impostor);
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->genuine_pairs, 2);
    EXPECT_EQ(rep->impostor_pairs, 4);
}

}  // namespace
}  // namespace fg::eval
