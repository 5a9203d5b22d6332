// SPDX-License-Identifier: Apache-2.0
// Liveness/attribute helpers without models: context crops, track fusion, pose override.
#include "../src/face_crop.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "fg/vision/liveness.h"
#include "fg/vision/quality.h"

namespace fg::vision {
namespace {

using detail::ContextCrop;
using detail::CropBorder;
using detail::CropResize;

TEST(ContextCropTest, ShiftKeepsTheCropInsideAndShrinksTheScaleToFit) {
    // 100x100 box near the right edge of a 640x480 image, 2.7x: 270 px fits, moved inside.
    const cv::Rect r = ContextCrop({500, 200, 100, 100}, 2.7f, {640, 480}, CropBorder::kShift);
    EXPECT_EQ(r.width, 270);
    EXPECT_EQ(r.height, 270);
    EXPECT_EQ(r.x + r.width, 640);
    // 4.0x of a 150 px tall box exceeds the 480 px height: the scale shrinks to 480/150.
    const cv::Rect big = ContextCrop({100, 100, 150, 150}, 4.0f, {640, 480}, CropBorder::kShift);
    EXPECT_EQ(big.height, 480);
    EXPECT_EQ(big.y, 0);
    EXPECT_TRUE((big & cv::Rect(0, 0, 640, 480)) == big);
}

TEST(ContextCropTest, PadKeepsScaleAndCentre) {
    const cv::Rect r = ContextCrop({-20, -20, 40, 40}, 2.f, {100, 100}, CropBorder::kPad);
    EXPECT_EQ(r, cv::Rect(-40, -40, 80, 80));
}

TEST(ContextCropTest, DegenerateBoxesGiveAtLeastOnePixel) {
    for (CropBorder b : {CropBorder::kShift, CropBorder::kPad}) {
        const cv::Rect r = ContextCrop({5, 5, 0, 0}, 2.7f, {10, 10}, b);
        EXPECT_GE(r.width, 1);
        EXPECT_GE(r.height, 1);
        // A box larger than the image cannot fit: it stays centred and gets padded.
        const cv::Rect big = ContextCrop({0, 0, 50, 50}, 2.7f, {10, 10}, b);
        EXPECT_GE(big.width, 50);
    }
}

TEST(CropResizeTest, OutsidePartsAreBlackAndTheSizeIsExact) {
    cv::Mat img(20, 20, CV_8UC3, cv::Scalar(200, 100, 50));
    const cv::Mat half = CropResize(img, {10, 0, 20, 20}, {40, 40});
    ASSERT_EQ(half.size(), cv::Size(40, 40));
    EXPECT_EQ(half.at<cv::Vec3b>(20, 5), cv::Vec3b(200, 100, 50));
    EXPECT_EQ(half.at<cv::Vec3b>(20, 35), cv::Vec3b(0, 0, 0));
    const cv::Mat none = CropResize(img, {100, 100, 5, 5}, {8, 8});
    EXPECT_EQ(cv::countNonZero(none.reshape(1)), 0);
    const cv::Mat huge = CropResize(img, {-100000, -100000, 200000, 200000}, {16, 16});
    EXPECT_EQ(huge.size(), cv::Size(16, 16));
}

TEST(FaceCropTest, BoxChecksAndSoftmax) {
    EXPECT_FALSE(detail::CheckBox({std::numeric_limits<float>::quiet_NaN(), 0, 1, 1}).ok());
    EXPECT_FALSE(detail::CheckBox({0, 0, 1e9f, 1}).ok());
    EXPECT_TRUE(detail::CheckBox({-5, -5, 10, 10}).ok());
    const float logits[3] = {1000.f, 0.f, -1000.f};   // no overflow
    EXPECT_NEAR(detail::SoftmaxAt(logits, 3, 0), 1.f, 1e-6);
    EXPECT_TRUE(detail::AsBgr8(cv::Mat(4, 4, CV_8UC1, cv::Scalar(7))).ok());
    EXPECT_FALSE(detail::AsBgr8(cv::Mat(4, 4, CV_32FC3)).ok());
    EXPECT_FALSE(detail::AsBgr8(cv::Mat()).ok());
}

TEST(LivenessTrackFusionTest, MeanOfTheLastFramesDecidesAfterMinFrames) {
    LivenessTrackFusion f(0.5f, 3, 2);
    EXPECT_TRUE(std::isnan(f.score()));
    EXPECT_FALSE(f.decided());
    f.Add(0.9f);
    EXPECT_FALSE(f.live());
    EXPECT_FALSE(f.spoof());
    f.Add(std::numeric_limits<float>::quiet_NaN());   // ignored
    EXPECT_EQ(f.frames(), 1);
    f.Add(0.7f);
    EXPECT_TRUE(f.live());
    f.Add(0.1f);
    f.Add(0.1f);   // window 3: 0.7, 0.1, 0.1
    EXPECT_NEAR(f.score(), 0.3f, 1e-6);
    EXPECT_TRUE(f.spoof());
}

TEST(LivenessConfigTest, Validates) {
    EXPECT_TRUE(LivenessConfig{}.Validate().ok());
    EXPECT_FALSE((LivenessConfig{.threshold = 1.5f}).Validate().ok());
    EXPECT_FALSE((LivenessConfig{.threshold = 0.5f, .max_batch = 0}).Validate().ok());
}

TEST(OverrideQualityPoseTest, RecomputesPoseFactorAndScore) {
    QualityReport r;
    r.size_factor = r.sharpness_factor = r.exposure_factor = 1.f;
    r.detector_score = 1.f;
    OverrideQualityPose(r, {0, 0, 0});
    EXPECT_FLOAT_EQ(r.pose_factor, 1.f);
    EXPECT_FLOAT_EQ(r.score, 1.f);
    OverrideQualityPose(r, {60, 0, 10});   // yaw_max 60: pose factor 0, weight 0.25
    EXPECT_FLOAT_EQ(r.pose.yaw, 60.f);
    EXPECT_FLOAT_EQ(r.pose_factor, 0.f);
    EXPECT_NEAR(r.score, 0.75f, 1e-6);
    OverrideQualityPose(r, {std::numeric_limits<float>::quiet_NaN(), 0, 0});
    EXPECT_FLOAT_EQ(r.pose_factor, 0.f);
}

}  // namespace
}  // namespace fg::vision
