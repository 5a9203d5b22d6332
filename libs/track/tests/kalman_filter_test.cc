// SPDX-License-Identifier: Apache-2.0
#include "fg/track/kalman_filter.h"

#include <gtest/gtest.h>

namespace fg::track {
namespace {

Rect2f At(float cx, float cy, float w, float h) {
    return Rect2f::FromCorners(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2);
}

TEST(BoxKalmanFilterTest, InitiateReturnsTheMeasurement) {
    BoxKalmanFilter kf(1.0f / 20, 1.0f / 160);
    kf.Initiate(At(100, 50, 40, 60));
    const Rect2f b = kf.box();
    EXPECT_FLOAT_EQ(b.x, 80);
    EXPECT_FLOAT_EQ(b.y, 20);
    EXPECT_FLOAT_EQ(b.right(), 120);
    EXPECT_FLOAT_EQ(b.bottom(), 80);
    EXPECT_FLOAT_EQ(kf.state()[4], 0);
}

TEST(BoxKalmanFilterTest, LearnsConstantVelocityAndExtrapolates) {
    BoxKalmanFilter kf(1.0f / 20, 1.0f / 160);
    kf.Initiate(At(100, 200, 50, 60));
    for (int t = 1; t <= 30; ++t) {
        kf.Predict();
        kf.Update(At(100 + 4.0f * t, 200 - 2.0f * t, 50, 60));
    }
    EXPECT_NEAR(kf.state()[4], 4.0, 0.1);
    EXPECT_NEAR(kf.state()[5], -2.0, 0.1);
    EXPECT_NEAR(kf.state()[6], 0.0, 0.05);
    // Ten frames without measurements follow the line.
    for (int t = 31; t <= 40; ++t) {
        kf.Predict();
    }
    const Rect2f b = kf.box();
    EXPECT_NEAR(b.center().x, 100 + 4.0 * 40, 2.0);
    EXPECT_NEAR(b.center().y, 200 - 2.0 * 40, 2.0);
    EXPECT_NEAR(b.width, 50, 1.0);
}

TEST(BoxKalmanFilterTest, FreezeSizeStopsShrinking) {
    BoxKalmanFilter kf(1.0f / 20, 1.0f / 160);
    kf.Initiate(At(100, 100, 60, 60));
    for (int t = 1; t <= 20; ++t) {
        kf.Predict();
        kf.Update(At(100, 100, 60.0f - 2.0f * t, 60.0f - 2.0f * t));
    }
    kf.FreezeSize();
    const float w = kf.box().width;
    for (int t = 0; t < 100; ++t) {
        kf.Predict();
    }
    EXPECT_FLOAT_EQ(kf.box().width, w);
}

TEST(BoxKalmanFilterTest, SizeNeverBelowOnePixel) {
    BoxKalmanFilter kf(1.0f / 20, 1.0f / 160);
    kf.Initiate(At(100, 100, 20, 20));
    for (int t = 1; t <= 9; ++t) {
        kf.Predict();
        kf.Update(At(100, 100, 20.0f - 2.0f * t, 20.0f - 2.0f * t));
    }
    for (int t = 0; t < 200; ++t) {
        kf.Predict();
    }
    EXPECT_GE(kf.box().width, 1.0f);
    EXPECT_GE(kf.box().height, 1.0f);
}

}  // namespace
}  // namespace fg::track
