// SPDX-License-Identifier: Apache-2.0
// Face quality: how useful a detected face is for recognition. Used by the gallery's
// enrollment gate and the tracker's best-shot choice.
#pragma once

#include <opencv2/core/mat.hpp>

#include "fg/image/geometry.h"

namespace fg::vision {

struct FaceDetection;

/// Head pose from 5 landmarks, in degrees. yaw > 0: the face turns towards image right;
/// pitch > 0: looking down; roll > 0: clockwise in the image (right eye lower).
struct HeadPose {
    float yaw = 0;
    float pitch = 0;
    float roll = 0;
};

/// Estimates head pose from 5 landmarks (geometric, no model). Rough beyond |yaw| > 60.
/// Non-finite or degenerate landmarks give NaN angles (roll alone stays valid when only the
/// mouth is unusable, e.g. on the eye line); AssessQuality scores a NaN pose as 0.
HeadPose EstimatePoseFromLandmarks(const Landmarks5& lm);

/// Weights and reference points of the combined score; documented in docs/quality.md.
struct QualityConfig {
    float size_good_px = 80.f;      ///< inter-ocular-equivalent face size (box min side) giving full marks
    float size_min_px = 20.f;       ///< below this the size factor is 0
    float sharpness_good = 800.f;   ///< variance of the Laplacian on the 112x112 crop giving full marks
    float brightness_low = 40.f;    ///< mean grey level below which exposure drops to 0 (linear ramp)
    float brightness_high = 220.f;  ///< mean grey level above which exposure drops to 0
    float yaw_max = 60.f;           ///< |yaw| at which the pose factor reaches 0
    float pitch_max = 45.f;
    float w_size = 0.25f;
    float w_sharpness = 0.25f;
    float w_exposure = 0.15f;
    float w_pose = 0.25f;
    float w_score = 0.10f;
};

struct QualityReport {
    float face_size_px = 0;         ///< min(box width, box height)
    float sharpness = 0;            ///< variance of the Laplacian of the aligned grey crop
    float brightness = 0;           ///< mean grey level of the aligned crop, 0..255
    float contrast = 0;             ///< standard deviation of the grey level
    HeadPose pose;
    float detector_score = 0;
    // Normalised factors in 0..1 and their weighted mean.
    float size_factor = 0;
    float sharpness_factor = 0;
    float exposure_factor = 0;
    float pose_factor = 0;
    float score = 0;                ///< combined quality, 0..1
};

/// Assesses a detected face given its aligned crop (112x112 BGR8). Pure and thread-safe.
QualityReport AssessQuality(const FaceDetection& det, const cv::Mat& aligned_bgr,
                            const QualityConfig& config = {});

/// Replaces the report's pose (e.g. by the pose model's, see fg/vision/attributes.h, which is
/// more accurate than the landmark estimate beyond ~30 degrees of yaw) and recomputes
/// pose_factor and score with `config`. Pure.
void OverrideQualityPose(QualityReport& report, const HeadPose& pose, const QualityConfig& config = {});

}  // namespace fg::vision
