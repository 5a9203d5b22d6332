// SPDX-License-Identifier: Apache-2.0
// Face attributes on request: apparent age, gender, eyes open/closed and head pose from the
// default pack's models. Meanings, ranges and how sure we are of them: docs/liveness.md.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/vision/detector.h"
#include "fg/vision/quality.h"

namespace fg::vision {

/// Which attributes to compute (each needs its own model).
struct AttributeRequest {
    bool age = false;       ///< fr_age
    bool gender = false;    ///< fr_gender
    bool eyes = false;      ///< fr_eye (twice per face)
    bool pose = false;      ///< fr_pose

    static AttributeRequest All() { return {true, true, true, true}; }
    bool any() const { return age || gender || eyes || pose; }
};

struct EyesState {
    float left_open = 0;    ///< probability the image-left eye is open, 0..1
    float right_open = 0;   ///< probability the image-right eye is open, 0..1
    bool open(float threshold = 0.5f) const { return left_open >= threshold && right_open >= threshold; }
};

/// Only the requested fields are set.
struct FaceAttributes {
    std::optional<float> age;           ///< apparent age in years, 0..100 (SSR-Net regression)
    std::optional<float> male;          ///< 0..1: 1 = male, 0 = female (SSR-Net gender output)
    std::optional<EyesState> eyes;
    std::optional<HeadPose> pose;       ///< degrees, same conventions as EstimatePoseFromLandmarks
};

/// NOT thread-safe (owns inference sessions): one per worker thread.
class AttributeEstimator {
  public:
    virtual ~AttributeEstimator() = default;
    /// Computes the requested attributes of one detected face of a BGR8 image. Requesting an
    /// attribute the model set was loaded without is FailedPrecondition. Crops leaving the
    /// image are padded with black. Errors: InvalidArgument (empty/non-BGR8 image, non-finite
    /// box), Internal (inference).
    virtual Result<FaceAttributes> Estimate(const cv::Mat& bgr, const FaceDetection& face,
                                            const AttributeRequest& request) = 0;
    /// Several faces of one image; `out` gets one entry per face, in order.
    virtual Status EstimateBatch(const cv::Mat& bgr, std::span<const FaceDetection> faces,
                                 const AttributeRequest& request, std::vector<FaceAttributes>& out) = 0;
    /// What this estimator can compute.
    virtual AttributeRequest available() const = 0;
};

/// Loaded attribute models; immutable, shared between threads.
class AttributeModel {
  public:
    virtual ~AttributeModel() = default;
    virtual Result<std::unique_ptr<AttributeEstimator>> CreateEstimator() const = 0;
    virtual AttributeRequest available() const = 0;
};

/// Loads the pack's attribute models (role "attribute"; decoders "hopenet", "ssrnet_age",
/// "ssrnet_gender", "eye_state") needed for `which`. Errors: NotFound when the pack lacks a
/// requested model or its file, DataLoss on a hash mismatch. Programs use Engine::Attributes,
/// which calls this once per request on the engine's backend.
Result<std::shared_ptr<const AttributeModel>> LoadAttributeModel(const infer::ModelPack& pack,
                                                                const infer::Backend& backend,
                                                                const AttributeRequest& which);

// The model pose can replace the landmark estimate in a QualityReport: OverrideQualityPose
// (fg/vision/quality.h).

}  // namespace fg::vision
