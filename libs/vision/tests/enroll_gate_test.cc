// SPDX-License-Identifier: Apache-2.0
#include "fg/vision/enroll_gate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace fg::vision {
namespace {

Face GoodFace(float size = 120.f) {
    Face f;
    f.detection.box = {10, 10, size, size};
    f.detection.score = 0.95f;
    f.quality.face_size_px = size;
    f.quality.sharpness = 300.f;
    f.quality.brightness = 120.f;
    f.quality.pose = {5.f, 3.f, 1.f};
    return f;
}

bool Has(const GateDecision& d, const std::string& r) {
    return std::find(d.reasons.begin(), d.reasons.end(), r) != d.reasons.end();
}

TEST(EnrollGate, ReasonCodes) {
    EXPECT_TRUE(CheckEnrollmentFaces({GoodFace()}).accepted);
    EXPECT_TRUE(Has(CheckEnrollmentFaces({}), "no_face"));
    EXPECT_TRUE(Has(CheckEnrollmentFaces({GoodFace(), GoodFace(100.f)}), "multiple_faces"));
    auto bg = CheckEnrollmentFaces({GoodFace(30.f * 4), GoodFace(20.f)});  // tiny face behind
    EXPECT_TRUE(bg.accepted);
    EXPECT_EQ(bg.face, 0);
    EXPECT_TRUE(Has(CheckEnrollmentFaces({GoodFace(20.f)}), "too_small"));
    auto blurry = GoodFace();
    blurry.quality.sharpness = 3.f;
    EXPECT_TRUE(Has(CheckEnrollmentFaces({blurry}), "too_blurry"));
    auto dark = GoodFace();
    dark.quality.brightness = 10.f;
    EXPECT_TRUE(Has(CheckEnrollmentFaces({dark}), "too_dark"));
    auto side = GoodFace();
    side.quality.pose.yaw = 70.f;
    EXPECT_TRUE(Has(CheckEnrollmentFaces({side}), "extreme_pose"));
    auto nan = GoodFace();
    nan.quality.pose.yaw = std::nanf("");
    EXPECT_TRUE(Has(CheckEnrollmentFaces({nan}), "extreme_pose"));
    auto both = GoodFace(10.f);
    both.quality.brightness = 5.f;
    auto d = CheckEnrollmentFaces({both});
    EXPECT_FALSE(d.accepted);
    EXPECT_EQ(d.reasons.size(), 2u);
    EXPECT_FALSE(d.detail.empty());
}

}  // namespace
}  // namespace fg::vision
