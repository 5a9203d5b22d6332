// SPDX-License-Identifier: Apache-2.0
// Face quality: cheap, model-free measurements combined into one score (docs/quality.md).
#include "fg/vision/quality.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "fg/image/align.h"
#include "fg/image/image_io.h"
#include "fg/vision/detector.h"

namespace fg::vision {
namespace {

constexpr double kRadToDeg = 180.0 / std::numbers::pi;

// Depth of the nose tip in front of the eye/mouth plane, in inter-ocular distances. It turns the
// nose's sideways offset into an angle: offset = depth * sin(yaw) while the projected eye
// distance shrinks by cos(yaw), so yaw = atan(offset / (depth * eye_distance)). 0.57 makes a
// nose offset of 40% of the eye distance read as 35 degrees; anthropometric values are ~0.5-0.6.
constexpr double kNoseDepth = 0.57;

// Side length the sharpness reference (QualityConfig::sharpness_good) is defined at.
constexpr int kCropSize = 112;
// Only the inner 80% of the crop is measured: black warp borders would read as strong edges.
constexpr double kBorderFraction = 0.1;

struct FaceFrame {
    double eye_dist = 0;   // inter-ocular distance, px
    double roll = 0;       // radians
    double nose_u = 0;     // nose position in the eye-aligned frame (origin: eye midpoint,
    double nose_v = 0;     // u along the eye line, v perpendicular, pointing towards the mouth)
    double mouth_u = 0;    // mouth-corner midpoint in the same frame
    double mouth_v = 0;
};

// Expresses the landmarks in a frame attached to the eye line, which removes roll, translation
// and (after normalising by eye_dist) scale. False when the landmarks cannot describe a face.
bool MakeFrame(const Landmarks5& lm, FaceFrame& f) {
    for (const Point2f& p : lm) {
        if (!std::isfinite(p.x) || !std::isfinite(p.y)) return false;
    }
    const double dx = lm[1].x - lm[0].x;
    const double dy = lm[1].y - lm[0].y;
    f.eye_dist = std::hypot(dx, dy);
    if (!(f.eye_dist > 1e-6)) return false;
    f.roll = std::atan2(dy, dx);
    const double c = dx / f.eye_dist, s = dy / f.eye_dist;
    const double ex = (lm[0].x + lm[1].x) / 2.0, ey = (lm[0].y + lm[1].y) / 2.0;
    const auto u = [&](Point2f p) { return (p.x - ex) * c + (p.y - ey) * s; };
    const auto v = [&](Point2f p) { return -(p.x - ex) * s + (p.y - ey) * c; };
    f.nose_u = u(lm[2]);
    f.nose_v = v(lm[2]);
    f.mouth_u = (u(lm[3]) + u(lm[4])) / 2.0;
    f.mouth_v = (v(lm[3]) + v(lm[4])) / 2.0;
    return true;
}

// Eye-to-mouth distance below which yaw and pitch are meaningless (mouth on the eye line).
bool HasMouthBelowEyes(const FaceFrame& f) { return f.mouth_v > 0.1 * f.eye_dist; }

// Nose height between the eye line (0) and the mouth line (1).
double NoseRatio(const FaceFrame& f) { return f.nose_v / f.mouth_v; }

struct TemplateGeometry {
    double nose_ratio = 0;       // ~0.495 for the ArcFace template
    double depth_per_height = 0; // nose depth in eye-to-mouth distances
};

const TemplateGeometry& Template() {
    static const TemplateGeometry kGeometry = [] {
        FaceFrame f;
        MakeFrame(ArcFaceTemplate112(), f);
        return TemplateGeometry{NoseRatio(f), kNoseDepth * f.eye_dist / f.mouth_v};
    }();
    return kGeometry;
}

float Clamp01(double v) {
    if (!(v > 0)) return 0.f;  // also maps NaN to 0
    return v >= 1 ? 1.f : static_cast<float>(v);
}

// Grey level statistics and Laplacian variance of the central region of the crop.
void MeasureCrop(const cv::Mat& aligned, QualityReport& r) {
    if (aligned.empty()) return;
    try {
        cv::Mat bgr = aligned;
        if (aligned.depth() != CV_8U || (aligned.channels() != 1 && aligned.channels() != 3)) {
            Result<cv::Mat> converted = ToBgr8(aligned);
            if (!converted.ok()) return;
            bgr = *converted;
        }
        cv::Mat grey;
        if (bgr.channels() == 3) {
            cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
        } else {
            grey = bgr;
        }
        // The Laplacian variance depends on scale: measure at the size the reference is for.
        if (grey.size() != cv::Size(kCropSize, kCropSize)) {
            const bool shrink = grey.cols > kCropSize || grey.rows > kCropSize;
            cv::resize(grey, grey, cv::Size(kCropSize, kCropSize), 0, 0,
                       shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
        }
        const int border = static_cast<int>(std::lround(kCropSize * kBorderFraction));
        const cv::Rect inner(border, border, kCropSize - 2 * border, kCropSize - 2 * border);

        cv::Mat lap;
        cv::Laplacian(grey, lap, CV_64F);  // on the whole crop, so the inner edge is exact
        cv::Scalar mean, stddev;
        cv::meanStdDev(lap(inner), mean, stddev);
        r.sharpness = static_cast<float>(stddev[0] * stddev[0]);
        cv::meanStdDev(grey(inner), mean, stddev);
        r.brightness = static_cast<float>(mean[0]);
        r.contrast = static_cast<float>(stddev[0]);
    } catch (const cv::Exception&) {
        // An unusable crop measures as zero: every image factor becomes 0.
        r.sharpness = r.brightness = r.contrast = 0;
    }
}

float SizeFactor(float size, const QualityConfig& c) {
    if (c.size_good_px <= c.size_min_px) return size >= c.size_good_px ? 1.f : 0.f;
    return Clamp01((size - c.size_min_px) / (c.size_good_px - c.size_min_px));
}

float SharpnessFactor(float sharpness, const QualityConfig& c) {
    if (!(c.sharpness_good > 0)) return 1.f;
    return Clamp01(sharpness / c.sharpness_good);
}

// Trapezoid: 0 at or beyond brightness_low/high, 1 on the middle half of that range, linear
// ramps of a quarter of the range in between (defaults: 0 at 40, 1 on 85..175, 0 at 220).
float ExposureFactor(float brightness, const QualityConfig& c) {
    const double range = static_cast<double>(c.brightness_high) - c.brightness_low;
    if (!(range > 0)) return 0.f;
    const double ramp = range / 4;
    return Clamp01(std::min(brightness - c.brightness_low, c.brightness_high - brightness) / ramp);
}

float PoseFactor(const HeadPose& pose, const QualityConfig& c) {
    const auto term = [](float angle, float max) {
        if (!(max > 0)) return 1.f;
        return Clamp01(1.0 - std::abs(angle) / max);  // NaN angle -> 0
    };
    return term(pose.yaw, c.yaw_max) * term(pose.pitch, c.pitch_max);
}

// Weighted mean of the factors (the detector factor is the clamped detector score).
float CombinedScore(const QualityReport& r, const QualityConfig& config) {
    const auto weight = [](float w) { return w > 0 ? static_cast<double>(w) : 0.0; };
    const double ws = weight(config.w_size), wh = weight(config.w_sharpness),
                 we = weight(config.w_exposure), wp = weight(config.w_pose),
                 wd = weight(config.w_score);
    const double total = ws + wh + we + wp + wd;
    if (!(total > 0)) return 0.f;
    return Clamp01((ws * r.size_factor + wh * r.sharpness_factor + we * r.exposure_factor +
                    wp * r.pose_factor + wd * Clamp01(r.detector_score)) /
                   total);
}

}  // namespace

HeadPose EstimatePoseFromLandmarks(const Landmarks5& lm) {
    constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
    HeadPose pose{kNan, kNan, kNan};
    FaceFrame f;
    if (!MakeFrame(lm, f)) return pose;
    // Image y points down, so a positive angle from the eye line is clockwise on screen.
    pose.roll = static_cast<float>(f.roll * kRadToDeg);
    if (!HasMouthBelowEyes(f)) return pose;

    // Yaw: the nose's sideways offset from the face midline (the line through the eye and mouth
    // midpoints, taken at the nose's height). Positive offset = nose towards image right.
    const double midline_u = f.mouth_u * (f.nose_v / f.mouth_v);
    const double offset = f.nose_u - midline_u;
    pose.yaw = static_cast<float>(std::atan2(offset, kNoseDepth * f.eye_dist) * kRadToDeg);

    // Pitch: looking down moves the protruding nose tip towards the mouth line, raising its
    // height ratio above the frontal one by depth/height * tan(pitch).
    const TemplateGeometry& t = Template();
    const double excess = NoseRatio(f) - t.nose_ratio;
    pose.pitch = static_cast<float>(std::atan2(excess, t.depth_per_height) * kRadToDeg);
    return pose;
}

QualityReport AssessQuality(const FaceDetection& det, const cv::Mat& aligned_bgr,
                            const QualityConfig& config) {
    QualityReport r;
    const float side = std::min(det.box.width, det.box.height);
    r.face_size_px = side > 0 ? side : 0.f;  // NaN -> 0
    r.detector_score = det.score;
    r.pose = EstimatePoseFromLandmarks(det.landmarks);
    MeasureCrop(aligned_bgr, r);

    r.size_factor = SizeFactor(r.face_size_px, config);
    r.sharpness_factor = SharpnessFactor(r.sharpness, config);
    r.exposure_factor = ExposureFactor(r.brightness, config);
    r.pose_factor = PoseFactor(r.pose, config);
    r.score = CombinedScore(r, config);
    return r;
}

void OverrideQualityPose(QualityReport& report, const HeadPose& pose, const QualityConfig& config) {
    report.pose = pose;
    report.pose_factor = PoseFactor(pose, config);
    report.score = CombinedScore(report, config);
}

}  // namespace fg::vision
