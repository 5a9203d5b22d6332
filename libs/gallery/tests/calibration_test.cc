// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/calibration.h"

#include <gtest/gtest.h>

#include <random>

namespace fg::gallery {
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

}  // namespace
}  // namespace fg::gallery
