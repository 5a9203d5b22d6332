// SPDX-License-Identifier: Apache-2.0
#include "fg/vision/quality.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <numbers>
#include <ostream>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "fg/image/align.h"
#include "fg/image/image_io.h"
#include "fg/testing/testing.h"
#include "fg/vision/detector.h"

namespace fg::vision {

void PrintTo(const QualityReport& r, std::ostream* os) {
    *os << "{size " << r.face_size_px << " sharp " << r.sharpness << " bright " << r.brightness
        << " contrast " << r.contrast << " yaw " << r.pose.yaw << " pitch " << r.pose.pitch
        << " roll " << r.pose.roll << " | f_size " << r.size_factor << " f_sharp "
        << r.sharpness_factor << " f_exp " << r.exposure_factor << " f_pose " << r.pose_factor
        << " score " << r.score << "}";
}

namespace {

std::string Str(const QualityReport& r) { return ::testing::PrintToString(r); }

float EyeDistance(const Landmarks5& lm) { return std::hypot(lm[1].x - lm[0].x, lm[1].y - lm[0].y); }

// Rotates points about `c` by `deg` in image coordinates (y down): positive is clockwise on screen.
Landmarks5 Rotate(Landmarks5 lm, double deg, Point2f c) {
    const double a = deg * std::numbers::pi / 180.0;
    for (Point2f& p : lm) {
        const double x = p.x - c.x, y = p.y - c.y;
        p = {static_cast<float>(c.x + std::cos(a) * x - std::sin(a) * y),
             static_cast<float>(c.y + std::sin(a) * x + std::cos(a) * y)};
    }
    return lm;
}

// ---- EstimatePoseFromLandmarks -----------------------------------------------------------

TEST(PoseTest, TemplateIsFrontal) {
    const HeadPose p = EstimatePoseFromLandmarks(ArcFaceTemplate112());
    EXPECT_NEAR(p.yaw, 0, 0.5);
    EXPECT_NEAR(p.pitch, 0, 0.5);
    EXPECT_NEAR(p.roll, 0, 0.5);  // the template's eyes are 0.3 degrees off horizontal
}

TEST(PoseTest, ClockwiseRotationIsPositiveRoll) {
    const HeadPose p = EstimatePoseFromLandmarks(Rotate(ArcFaceTemplate112(), 20, {56, 72}));
    EXPECT_NEAR(p.roll, 20, 0.5);
    EXPECT_GT(p.roll, 0);
    EXPECT_NEAR(p.yaw, 0, 0.5);
    EXPECT_NEAR(p.pitch, 0, 0.5);
    EXPECT_NEAR(EstimatePoseFromLandmarks(Rotate(ArcFaceTemplate112(), -20, {56, 72})).roll, -20,
                0.5);
}

TEST(PoseTest, NoseTowardsImageRightIsPositiveYaw) {
    Landmarks5 lm = ArcFaceTemplate112();
    lm[2].x += 0.4f * EyeDistance(lm);
    const HeadPose right = EstimatePoseFromLandmarks(lm);
    EXPECT_NEAR(right.yaw, 35, 1.5);
    EXPECT_NEAR(right.pitch, 0, 0.5);

    lm = ArcFaceTemplate112();
    lm[2].x -= 0.4f * EyeDistance(lm);
    EXPECT_NEAR(EstimatePoseFromLandmarks(lm).yaw, -35, 1.5);
}

TEST(PoseTest, YawGrowsMonotonically) {
    float prev = -90;
    for (float k = -1.5f; k <= 1.5f; k += 0.1f) {
        Landmarks5 lm = ArcFaceTemplate112();
        lm[2].x += k * EyeDistance(lm);
        const float yaw = EstimatePoseFromLandmarks(lm).yaw;
        EXPECT_GT(yaw, prev) << k;
        EXPECT_LT(std::abs(yaw), 90.f);
        prev = yaw;
    }
}

TEST(PoseTest, NoseTowardsMouthIsPositivePitch) {
    const Landmarks5& t = ArcFaceTemplate112();
    const float eye_to_mouth = (t[3].y + t[4].y - t[0].y - t[1].y) / 2;
    Landmarks5 down = t, up = t;
    down[2].y += 0.15f * eye_to_mouth;
    up[2].y -= 0.15f * eye_to_mouth;
    const HeadPose pd = EstimatePoseFromLandmarks(down), pu = EstimatePoseFromLandmarks(up);
    EXPECT_GT(pd.pitch, 10);
    EXPECT_LT(pu.pitch, -10);
    EXPECT_NEAR(pd.pitch, -pu.pitch, 0.5);
    EXPECT_NEAR(pd.yaw, 0, 0.5);
}

TEST(PoseTest, InvariantToScaleTranslationAndRoll) {
    Landmarks5 lm = ArcFaceTemplate112();
    lm[2].x += 8;
    lm[2].y += 5;
    const HeadPose base = EstimatePoseFromLandmarks(lm);
    Landmarks5 moved = Rotate(lm, 30, {56, 72});
    for (Point2f& p : moved) p = {3 * p.x + 400, 3 * p.y - 50};
    const HeadPose other = EstimatePoseFromLandmarks(moved);
    EXPECT_NEAR(other.yaw, base.yaw, 0.05);
    EXPECT_NEAR(other.pitch, base.pitch, 0.05);
    EXPECT_NEAR(other.roll, base.roll + 30, 0.05);
}

TEST(PoseTest, DegenerateLandmarksGiveNan) {
    Landmarks5 lm = ArcFaceTemplate112();
    lm[3].y = std::numeric_limits<float>::quiet_NaN();
    HeadPose p = EstimatePoseFromLandmarks(lm);
    EXPECT_TRUE(std::isnan(p.yaw) && std::isnan(p.pitch) && std::isnan(p.roll));

    lm = ArcFaceTemplate112();
    lm[1] = lm[0];  // coincident eyes
    p = EstimatePoseFromLandmarks(lm);
    EXPECT_TRUE(std::isnan(p.yaw) && std::isnan(p.pitch) && std::isnan(p.roll));

    lm = ArcFaceTemplate112();
    lm[3].y = lm[4].y = lm[0].y;  // mouth on the eye line: roll only
    p = EstimatePoseFromLandmarks(lm);
    EXPECT_TRUE(std::isnan(p.yaw) && std::isnan(p.pitch));
    EXPECT_NEAR(p.roll, 0, 0.5);
}

// ---- AssessQuality: factor arithmetic on synthetic crops ---------------------------------

FaceDetection FrontalDetection(float side, float score = 1.f) {
    FaceDetection d;
    d.box = {0, 0, side, side};
    d.score = score;
    d.landmarks = ArcFaceTemplate112();
    return d;
}

TEST(AssessQualityTest, UniformCropMeasuresFlat) {
    const cv::Mat crop(112, 112, CV_8UC3, cv::Scalar(128, 128, 128));
    const QualityReport r = AssessQuality(FrontalDetection(100), crop);
    EXPECT_FLOAT_EQ(r.face_size_px, 100);
    EXPECT_NEAR(r.sharpness, 0, 1e-6);
    EXPECT_NEAR(r.brightness, 128, 1e-3);
    EXPECT_NEAR(r.contrast, 0, 1e-3);
    EXPECT_FLOAT_EQ(r.size_factor, 1);
    EXPECT_FLOAT_EQ(r.sharpness_factor, 0);
    EXPECT_FLOAT_EQ(r.exposure_factor, 1);
    EXPECT_NEAR(r.pose_factor, 1, 0.02);
    // (0.25 + 0 + 0.15 + 0.25 * pose + 0.10) / 1.0
    EXPECT_NEAR(r.score, 0.25 + 0.15 + 0.25 * r.pose_factor + 0.10, 1e-5);
}

TEST(AssessQualityTest, SizeAndExposureRamps) {
    const QualityConfig c;  // size 20..80, brightness 40 | 85..175 | 220
    const cv::Mat mid(112, 112, CV_8UC3, cv::Scalar::all(128));
    EXPECT_NEAR(AssessQuality(FrontalDetection(50), mid).size_factor, 0.5, 1e-6);
    EXPECT_FLOAT_EQ(AssessQuality(FrontalDetection(10), mid).size_factor, 0);
    FaceDetection wide = FrontalDetection(200);
    wide.box.height = 35;  // min side counts
    EXPECT_NEAR(AssessQuality(wide, mid).size_factor, 0.25, 1e-6);

    const auto exposure = [](double level) {
        const cv::Mat crop(112, 112, CV_8UC3, cv::Scalar::all(level));
        return AssessQuality(FrontalDetection(100), crop).exposure_factor;
    };
    EXPECT_FLOAT_EQ(exposure(30), 0);
    EXPECT_FLOAT_EQ(exposure(40), 0);
    EXPECT_NEAR(exposure(58), 0.4, 1e-4);  // (58 - 40) / 45
    EXPECT_FLOAT_EQ(exposure(85), 1);
    EXPECT_FLOAT_EQ(exposure(175), 1);
    EXPECT_NEAR(exposure(202), 0.4, 1e-4);
    EXPECT_FLOAT_EQ(exposure(230), 0);
}

TEST(AssessQualityTest, BorderIsIgnoredAndSharpnessSaturates) {
    // A black frame (as left by warping a face near the image edge) adds no sharpness.
    cv::Mat framed(112, 112, CV_8UC3, cv::Scalar::all(128));
    cv::rectangle(framed, {0, 0, 112, 112}, cv::Scalar::all(0), 8);
    EXPECT_NEAR(AssessQuality(FrontalDetection(100), framed).sharpness, 0, 1e-6);

    cv::Mat checker(112, 112, CV_8UC3);
    for (int y = 0; y < 112; ++y) {
        for (int x = 0; x < 112; ++x) {
            checker.at<cv::Vec3b>(y, x) = cv::Vec3b::all((x + y) % 2 ? 200 : 50);
        }
    }
    const QualityReport r = AssessQuality(FrontalDetection(100), checker);
    EXPECT_GT(r.sharpness, 1000);
    EXPECT_FLOAT_EQ(r.sharpness_factor, 1);
}

TEST(AssessQualityTest, WeightsAreNormalised) {
    QualityConfig c;
    c.w_size = 2;
    c.w_sharpness = 0;
    c.w_exposure = 0;
    c.w_pose = 0;
    c.w_score = 2;
    const cv::Mat crop(112, 112, CV_8UC3, cv::Scalar::all(128));
    const QualityReport r = AssessQuality(FrontalDetection(50, 0.8f), crop, c);
    EXPECT_NEAR(r.score, (0.5 + 0.8) / 2, 1e-6);

    c.w_size = c.w_score = 0;
    EXPECT_FLOAT_EQ(AssessQuality(FrontalDetection(50), crop, c).score, 0);
}

TEST(AssessQualityTest, BadInputsScoreLowWithoutCrashing) {
    FaceDetection d = FrontalDetection(100);
    d.landmarks[0].x = std::numeric_limits<float>::infinity();
    const cv::Mat crop(112, 112, CV_8UC3, cv::Scalar::all(128));
    EXPECT_FLOAT_EQ(AssessQuality(d, crop).pose_factor, 0);

    const QualityReport empty = AssessQuality(FrontalDetection(100), cv::Mat());
    EXPECT_FLOAT_EQ(empty.sharpness_factor, 0);
    EXPECT_FLOAT_EQ(empty.exposure_factor, 0);

    // Other sizes and formats are converted, not rejected.
    const QualityReport big =
        AssessQuality(FrontalDetection(100), cv::Mat(224, 224, CV_8UC1, cv::Scalar(128)));
    EXPECT_NEAR(big.brightness, 128, 1e-3);
    const QualityReport f32 =
        AssessQuality(FrontalDetection(100), cv::Mat(112, 112, CV_32FC3, cv::Scalar::all(0.5)));
    EXPECT_NEAR(f32.brightness, 128, 1.0);
}

// ---- AssessQuality on a real face ----------------------------------------------------------

// dlib's 150x150 face chip of John Salley; landmarks placed by eye on the 4x enlarged image.
std::filesystem::path FacePath() {
    return fg::testing::DlibExamplesDir() / "johns/John_Salley/000179_02159509.jpg";
}

FaceDetection FaceDet() {
    FaceDetection d;
    d.box = {15, 8, 120, 130};
    d.score = 0.95f;
    d.landmarks = {{{44, 47}, {102, 48}, {74, 77}, {48, 101}, {102, 100}}};
    return d;
}

QualityReport Assess(const cv::Mat& img, const FaceDetection& det) {
    auto aligned = AlignFace(img, det.landmarks);
    EXPECT_TRUE(aligned.ok()) << aligned.status().ToString();
    if (!aligned.ok()) return {};
    return AssessQuality(det, aligned->image);
}

class RealFaceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        FG_REQUIRE_PATH(FacePath());
        auto img = LoadImage(FacePath());
        ASSERT_TRUE(img.ok()) << img.status().ToString();
        image_ = *img;
        det_ = FaceDet();
        original_ = Assess(image_, det_);
    }

    cv::Mat image_;
    FaceDetection det_;
    QualityReport original_;
};

TEST_F(RealFaceTest, OriginalIsGood) {
    EXPECT_GT(original_.score, 0.8) << Str(original_);
    EXPECT_FLOAT_EQ(original_.size_factor, 1) << Str(original_);
    EXPECT_LT(std::abs(original_.pose.yaw), 10) << Str(original_);
    EXPECT_LT(std::abs(original_.pose.pitch), 15) << Str(original_);
}

TEST_F(RealFaceTest, BlurredScoresLower) {
    cv::Mat blurred;
    cv::GaussianBlur(image_, blurred, cv::Size(), 3);
    const QualityReport r = Assess(blurred, det_);
    EXPECT_LT(r.sharpness, original_.sharpness / 2) << Str(r);
    EXPECT_LT(r.score, original_.score) << Str(r) << " vs " << Str(original_);
}

TEST_F(RealFaceTest, DarkenedScoresLower) {
    cv::Mat dark;
    image_.convertTo(dark, -1, 0.25);
    const QualityReport r = Assess(dark, det_);
    EXPECT_LT(r.exposure_factor, original_.exposure_factor) << Str(r);
    EXPECT_LT(r.score, original_.score) << Str(r) << " vs " << Str(original_);
}

TEST_F(RealFaceTest, ShrunkScoresLower) {
    cv::Mat small;
    cv::resize(image_, small, cv::Size(), 0.25, 0.25, cv::INTER_AREA);
    FaceDetection d = det_;
    d.box = {d.box.x / 4, d.box.y / 4, d.box.width / 4, d.box.height / 4};
    for (Point2f& p : d.landmarks) p = {p.x / 4, p.y / 4};
    const QualityReport r = Assess(small, d);
    EXPECT_LT(r.size_factor, 0.5) << Str(r);
    EXPECT_LT(r.score, original_.score) << Str(r) << " vs " << Str(original_);
}

TEST_F(RealFaceTest, TurnedScoresLower) {
    FaceDetection d = det_;
    d.landmarks[2].x += 0.4f * EyeDistance(d.landmarks);
    const QualityReport r = Assess(image_, d);
    EXPECT_GT(r.pose.yaw, 25) << Str(r);
    EXPECT_LT(r.pose_factor, original_.pose_factor) << Str(r);
    EXPECT_LT(r.score, original_.score) << Str(r) << " vs " << Str(original_);
}

}  // namespace
}  // namespace fg::vision
