// SPDX-License-Identifier: Apache-2.0
#include "fg/core/embedding.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "fg/core/geometry.h"

namespace fg {
namespace {

TEST(Embedding, L2NormalizeGivesUnitLengthAndReturnsTheNorm) {
    std::vector<float> v{3, 4};
    EXPECT_DOUBLE_EQ(L2Normalize(v), 5.0);
    EXPECT_FLOAT_EQ(v[0], 0.6f);
    EXPECT_FLOAT_EQ(v[1], 0.8f);
}

TEST(Embedding, L2NormalizeLeavesZeroAndEmptyAlone) {
    std::vector<float> zero{0, 0, 0};
    EXPECT_EQ(L2Normalize(zero), 0.0);
    EXPECT_EQ(zero, (std::vector<float>{0, 0, 0}));
    std::vector<float> empty;
    EXPECT_EQ(L2Normalize(empty), 0.0);
}

TEST(Embedding, AllFiniteCatchesNanAndInf) {
    EXPECT_TRUE(AllFinite(std::vector<float>{1, -2, 0}));
    EXPECT_FALSE(AllFinite(std::vector<float>{1, std::numeric_limits<float>::quiet_NaN()}));
    EXPECT_FALSE(AllFinite(std::vector<float>{std::numeric_limits<float>::infinity()}));
}

TEST(Embedding, CosineNeedsTheSameModelAndLength) {
    Embedding a{"m", {0.6f, 0.8f}};
    Embedding b{"m", {0.8f, 0.6f}};
    EXPECT_NEAR(CosineSimilarity(a, b), 0.96f, 1e-6);
    EXPECT_TRUE(std::isnan(CosineSimilarity(a, Embedding{"other", {0.8f, 0.6f}})));
    EXPECT_TRUE(std::isnan(CosineSimilarity(a, Embedding{"m", {1.f}})));
    EXPECT_TRUE(std::isnan(CosineSimilarity(Embedding{"m", {}}, Embedding{"m", {}})));
}

TEST(Geometry, RectFromCorners) {
    const Rect2f r = Rect2f::FromCorners(10, 20, 40, 60);
    EXPECT_FLOAT_EQ(r.width, 30);
    EXPECT_FLOAT_EQ(r.height, 40);
    EXPECT_FLOAT_EQ(r.right(), 40);
    EXPECT_FLOAT_EQ(r.bottom(), 60);
    EXPECT_FLOAT_EQ(r.area(), 1200);
}

}  // namespace
}  // namespace fg
