// SPDX-License-Identifier: Apache-2.0
#include "fg/image/align.h"

#include <cmath>
#include <limits>
#include <numbers>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace fg {
namespace {

cv::Mat Noise(int w, int h, int seed) {
    cv::Mat img(h, w, CV_8UC3);
    cv::RNG rng(seed);
    rng.fill(img, cv::RNG::UNIFORM, 0, 256);
    return img;
}

// A smooth 112x112 "face" pattern: interpolation error after warping stays small.
cv::Mat SmoothPattern() {
    cv::Mat img(112, 112, CV_8UC3);
    for (int y = 0; y < 112; ++y) {
        for (int x = 0; x < 112; ++x) {
            img.at<cv::Vec3b>(y, x) = {
                static_cast<std::uint8_t>(128 + 100 * std::sin(x * 0.11)),
                static_cast<std::uint8_t>(128 + 100 * std::cos(y * 0.09)),
                static_cast<std::uint8_t>(x + y)};
        }
    }
    return img;
}

TEST(AlignFaceTest, TemplateValues) {
    const Landmarks5& t = ArcFaceTemplate112();
    EXPECT_FLOAT_EQ(t[0].x, 38.2946f);
    EXPECT_FLOAT_EQ(t[0].y, 51.6963f);
    EXPECT_FLOAT_EQ(t[2].x, 56.0252f);
    EXPECT_FLOAT_EQ(t[4].y, 92.2041f);
}

TEST(AlignFaceTest, TemplateLandmarksGiveIdentity) {
    const cv::Mat img = Noise(160, 140, 1);
    auto r = AlignFace(img, ArcFaceTemplate112());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const std::array<double, 6> id = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(r->transform.m[i], id[i], 1e-6) << i;
    ASSERT_EQ(r->image.size(), cv::Size(112, 112));
    ASSERT_EQ(r->image.type(), CV_8UC3);
    EXPECT_LE(cv::norm(r->image, img(cv::Rect(0, 0, 112, 112)), cv::NORM_INF), 1.0);
    for (int i = 0; i < 5; ++i) {
        EXPECT_NEAR(r->landmarks[i].x, ArcFaceTemplate112()[i].x, 1e-4);
        EXPECT_NEAR(r->landmarks[i].y, ArcFaceTemplate112()[i].y, 1e-4);
    }
}

TEST(AlignFaceTest, RotatedScaledFaceMapsOntoTemplate) {
    // Place the pattern into a larger image by a known similarity (template -> source):
    // rotate 30 degrees, scale 1.7, shift (60, 40); the landmarks follow the same map.
    const double th = 30.0 * std::numbers::pi / 180.0, s = 1.7;
    const cv::Matx23d fwd(s * std::cos(th), -s * std::sin(th), 60, s * std::sin(th),
                          s * std::cos(th), 40);
    const cv::Mat pattern = SmoothPattern();
    cv::Mat src;
    cv::warpAffine(pattern, src, fwd, cv::Size(260, 280), cv::INTER_LINEAR);
    Landmarks5 lm;
    for (int i = 0; i < 5; ++i) {
        const Point2f t = ArcFaceTemplate112()[i];
        lm[i] = {static_cast<float>(fwd(0, 0) * t.x + fwd(0, 1) * t.y + fwd(0, 2)),
                 static_cast<float>(fwd(1, 0) * t.x + fwd(1, 1) * t.y + fwd(1, 2))};
    }

    auto r = AlignFace(src, lm);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (int i = 0; i < 5; ++i) {
        EXPECT_NEAR(r->landmarks[i].x, ArcFaceTemplate112()[i].x, 0.01) << i;
        EXPECT_NEAR(r->landmarks[i].y, ArcFaceTemplate112()[i].y, 0.01) << i;
    }
    EXPECT_NEAR(r->transform.Scale(), 1.0 / s, 1e-5);
    // The warp undoes the placement: the interior of the crop matches the pattern.
    const cv::Rect inner(8, 8, 96, 96);
    cv::Mat diff;
    cv::absdiff(r->image(inner), pattern(inner), diff);
    EXPECT_LT(cv::mean(diff)[0] + cv::mean(diff)[1] + cv::mean(diff)[2], 3 * 2.0);
}

TEST(AlignFaceTest, OtherSizesScaleTheTemplate) {
    const cv::Mat img = Noise(300, 300, 2);
    auto r = AlignFace(img, ArcFaceTemplate112(), 224);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->image.size(), cv::Size(224, 224));
    EXPECT_NEAR(r->transform.Scale(), 2.0, 1e-6);
    for (int i = 0; i < 5; ++i) {
        EXPECT_NEAR(r->landmarks[i].x, 2 * ArcFaceTemplate112()[i].x, 0.01);
        EXPECT_NEAR(r->landmarks[i].y, 2 * ArcFaceTemplate112()[i].y, 0.01);
    }
}

TEST(AlignFaceTest, OutsidePixelsAreBlack) {
    // The face sits at the top-left corner: the top-left of the crop comes from outside.
    cv::Mat img(200, 200, CV_8UC3, cv::Scalar(255, 255, 255));
    Landmarks5 lm = ArcFaceTemplate112();
    for (Point2f& p : lm) p = {p.x - 40, p.y - 40};
    auto r = AlignFace(img, lm);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->image.at<cv::Vec3b>(5, 5), cv::Vec3b(0, 0, 0));
    EXPECT_EQ(r->image.at<cv::Vec3b>(100, 100), cv::Vec3b(255, 255, 255));
}

TEST(AlignFaceTest, GrayInputGivesBgr) {
    cv::Mat gray(150, 150, CV_8UC1, cv::Scalar(77));
    auto r = AlignFace(gray, ArcFaceTemplate112());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->image.type(), CV_8UC3);
    EXPECT_EQ(r->image.at<cv::Vec3b>(56, 56), cv::Vec3b(77, 77, 77));
}

TEST(AlignFaceTest, InvalidInput) {
    const cv::Mat img = Noise(150, 150, 3);
    EXPECT_EQ(AlignFace(cv::Mat(), ArcFaceTemplate112()).status().code(),
              StatusCode::kInvalidArgument);

    for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity()}) {
        Landmarks5 lm = ArcFaceTemplate112();
        lm[2].x = bad;
        auto r = AlignFace(img, lm);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }

    Landmarks5 same;
    same.fill({50, 50});
    EXPECT_EQ(AlignFace(img, same).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(AlignFace(img, ArcFaceTemplate112(), 0).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(AlignFace(img, ArcFaceTemplate112(), -112).status().code(),
              StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fg
