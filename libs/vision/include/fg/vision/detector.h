// SPDX-License-Identifier: Apache-2.0
// Face detection with 5 landmarks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/image/geometry.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"

namespace fg::vision {

struct FaceDetection {
    Rect2f box;                     ///< pixels of the input image
    float score = 0;                ///< detector confidence, 0..1
    Landmarks5 landmarks{};         ///< ArcFace order (see fg/image/geometry.h)
    std::vector<Point2f> dense_landmarks;   ///< e.g. 68 points when a landmarker produced them
};

/// Faces filling the whole frame (tight crops) are missed by detectors trained on scenes;
/// padding the frame gives them context.
enum class PadPolicy {
    kNever,
    kIfNoneFound,   ///< retry on a padded frame only when nothing was found (default)
    kAlways,
};

struct DetectorConfig {
    float score_threshold = 0.5f;   ///< minimum detector score
    float nms_iou = 0.4f;           ///< IoU above which the weaker box is suppressed
    /// Minimum of box width/height in pixels. Below ~20 px a face carries too little detail to be
    /// recognised, and detectors fire on logos and patterns of that size; 0 = any.
    float min_face_size = 20.f;
    int max_faces = 0;              ///< keep the N highest-scoring faces; 0 = all
    PadPolicy pad = PadPolicy::kIfNoneFound;
    float pad_ratio = 0.5f;         ///< border added on each side, as a fraction of the frame side
    /// Enlarge images smaller than the detector input. Off by default: upscaling adds no
    /// detail, and faces of a small, face-filling photo then exceed the detector's largest
    /// anchors (measured on CFP: see BENCHMARKS.md).
    bool upscale = false;

    Status Validate() const;
};

struct DetectorInfo {
    std::string id;                 ///< model id(s), e.g. "fr_detect+fr_landmark"
    std::string decoder;
    int input_width = 0;
    int input_height = 0;
};

/// A face detector. NOT thread-safe (owns inference sessions): create one per worker thread
/// from the shared models.
class Detector {
  public:
    virtual ~Detector() = default;
    /// Detects faces in a BGR8 image of any size. An image with no face gives an empty vector.
    /// Errors: InvalidArgument for an empty or non-BGR8 image; Internal on inference failure.
    virtual Result<std::vector<FaceDetection>> Detect(const cv::Mat& bgr) = 0;
    virtual const DetectorInfo& info() const = 0;
};

/// Loaded detector models; immutable, shared between threads.
class DetectorModel {
  public:
    virtual ~DetectorModel() = default;
    virtual Result<std::unique_ptr<Detector>> CreateDetector(const DetectorConfig& config) const = 0;
    virtual const DetectorInfo& info() const = 0;
};

/// Builds the detector of `pack` (its detector and, for detectors without 5 landmarks, its
/// landmarker) on `backend`. Errors: NotFound (pack has no detector, file missing),
/// InvalidArgument (unknown decoder), DataLoss (hash mismatch).
Result<std::shared_ptr<const DetectorModel>> LoadDetectorModel(const infer::ModelPack& pack,
                                                              const infer::Backend& backend);

}  // namespace fg::vision
