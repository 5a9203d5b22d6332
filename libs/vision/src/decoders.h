// SPDX-License-Identifier: Apache-2.0
// Detector output decoding and post-processing (private). The decoders are pure functions on
// float arrays, so they are unit-tested on hand-made tensors without any model.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/image/geometry.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/infer/tensor.h"
#include "fg/vision/detector.h"
#include "preprocess.h"

namespace fg::vision::detail {

// ---- Decoders: model outputs -> candidates in model-input pixels ----

/// UltraFace: `scores` N x 2 (softmax background/face), `boxes` N x 4 (x1, y1, x2, y2
/// normalised to the input, already decoded against the priors). Appends the candidates with
/// a face score >= score_threshold; they have no landmarks.
void DecodeUltraFace(const float* scores, const float* boxes, int num_anchors, int input_width,
                     int input_height, float score_threshold, std::vector<FaceDetection>& out);

/// One stride level of YuNet: one anchor per cell, cells row-major.
struct YuNetLevel {
    int stride = 0;
    const float* cls = nullptr;    ///< cells x 1
    const float* obj = nullptr;    ///< cells x 1
    const float* bbox = nullptr;   ///< cells x 4: dx, dy, log w, log h (stride units)
    const float* kps = nullptr;    ///< cells x 10: (kx, ky) x 5 (stride units)
};

/// YuNet: score = sqrt(clamp01(cls) * clamp01(obj)); centre = (col + dx, row + dy) * stride,
/// size = exp(dw, dh) * stride, landmark = (col + kx, row + ky) * stride.
void DecodeYuNet(std::span<const YuNetLevel> levels, int input_width, int input_height,
                 float score_threshold, std::vector<FaceDetection>& out);

/// One stride level of SCRFD: `anchors` anchors per cell, cells row-major, anchors innermost.
struct ScrfdLevel {
    int stride = 0;
    const float* scores = nullptr;   ///< cells*anchors x 1, sigmoid already applied
    const float* boxes = nullptr;    ///< cells*anchors x 4: left, top, right, bottom (stride units)
    const float* kps = nullptr;      ///< cells*anchors x 10 (stride units), may be null
};

/// SCRFD: anchor centre = (col, row) * stride; box = centre -/+ distances * stride;
/// landmark = centre + offset * stride.
void DecodeScrfd(std::span<const ScrfdLevel> levels, int anchors_per_cell, int input_width,
                 int input_height, float score_threshold, std::vector<FaceDetection>& out);

/// Sorts multi-level outputs of YuNet or SCRFD by their shape: for each stride, the outputs
/// with (input_height / stride) * (input_width / stride) * anchors rows and last dimension 1,
/// 4 or 10. Works with or without a batch dimension and in any output order. For the two
/// score outputs of YuNet (cls, obj) names starting with "cls"/"obj" decide, else file order
/// (the score is symmetric in them anyway).
struct LevelOutputs {
    int stride = 0;
    std::vector<const infer::TensorView*> scores;   ///< last dim 1 (SCRFD: 1, YuNet: 2)
    const infer::TensorView* boxes = nullptr;       ///< last dim 4
    const infer::TensorView* kps = nullptr;         ///< last dim 10 (optional)
};
Result<std::vector<LevelOutputs>> GroupOutputsByStride(std::span<const infer::TensorView> outputs,
                                                       std::span<const int> strides,
                                                       int anchors_per_cell, int input_width,
                                                       int input_height, int scores_per_level);

/// 68-point (iBUG / dlib order) to the 5 ArcFace landmarks: eyes = mean of the four lid
/// points of each eye ring (37, 38, 40, 41 and 43, 44, 46, 47; the corners are left out),
/// nose tip = 30, mouth corners = means of the outer and inner corners (48, 60) and (54, 64).
Landmarks5 Landmarks68To5(std::span<const Point2f> points68);

/// Maps a detection from model-input pixels back to image pixels (undoes the letterbox).
void UnLetterbox(const LetterboxInfo& lb, FaceDetection& det);

/// Translates a detection by (dx, dy), e.g. from a padded frame back to the original.
void Translate(float dx, float dy, FaceDetection& det);

/// Clamps `box` to [0, width] x [0, height]; an outside box becomes empty.
Rect2f ClampBox(const Rect2f& box, int width, int height);

/// A box with at least this fraction of its area inside a stronger box is dropped.
constexpr float kNestedFraction = 0.8f;
/// Two detections whose 5 landmarks are on average closer than this fraction of the eye
/// distance are the same face.
constexpr float kDuplicateLandmarkDistance = 0.25f;

/// min_face_size, then NMS (fg::Nms at config.nms_iou and score_threshold), then drops boxes
/// nested in a stronger box, then max_faces. Highest score first; boxes are not clamped.
std::vector<FaceDetection> SelectDetections(std::vector<FaceDetection> candidates,
                                            const DetectorConfig& config);

/// Drops detections (in score order) whose landmarks repeat those of a stronger detection:
/// an off-centre second box on the same face can escape IoU suppression.
void DropDuplicateFaces(std::vector<FaceDetection>& faces);

/// The square crop given to the 68-point landmarker: side = max(w, h) * `expand`, centred on
/// the box's centre moved down by `shift_down` * height. Not clamped: see CropWithBorder.
cv::Rect LandmarkCrop(const Rect2f& box, float expand, float shift_down);

/// `rect` of `image`, black where it lies outside the image (a crop at the frame edge keeps
/// its shape instead of being squeezed). A view into `image` when fully inside.
cv::Mat CropWithBorder(const cv::Mat& image, const cv::Rect& rect);

// ---- Detector driver (the session skeleton on top of it: detector_skeleton.h) ----

/// Common driver: checks the image, runs one pass, optionally retries on a padded frame,
/// maps back, clamps boxes. Subclasses implement a single pass.
class DetectorBase : public Detector {
  public:
    DetectorBase(const DetectorConfig& config, const DetectorInfo& info)
        : config_(config), info_(info) {}

    Result<std::vector<FaceDetection>> Detect(const cv::Mat& bgr) final;
    const DetectorInfo& info() const final { return info_; }

  protected:
    /// Appends the candidates above config_.score_threshold in the pixels of `frame` (not
    /// clamped, before NMS).
    virtual Status DetectCandidates(const cv::Mat& frame, std::vector<FaceDetection>& out) = 0;
    /// Runs on the faces kept after NMS, in the pixels of the caller's image `bgr` (UltraFace
    /// adds landmarks there, at full resolution).
    virtual Status Refine(const cv::Mat& /*bgr*/, std::vector<FaceDetection>& /*faces*/) {
        return Status::Ok();
    }

    /// Largest letterbox scale for the detector input (see DetectorConfig::upscale).
    double MaxInputScale() const { return config_.upscale ? 1e9 : 1.0; }

    const DetectorConfig config_;

  private:
    /// One pass on `frame` = `bgr` scaled by (scale_x, scale_y) and shifted by (dx, dy).
    Result<std::vector<FaceDetection>> DetectOnce(const cv::Mat& bgr, const cv::Mat& frame,
                                                  float dx, float dy, float scale_x,
                                                  float scale_y);

    const DetectorInfo info_;
};

/// Runs one input tensor through `session`, converting cv::Exception and shape errors.
Status RunSingleInput(infer::Session& session, const infer::Tensor& input,
                      std::vector<infer::TensorView>& outputs);

/// Loads `pm` with the backend (fixing dynamic inputs to the pack's input size).
Result<std::shared_ptr<const infer::Model>> LoadPackModel(const infer::PackModel& pm,
                                                          const infer::Backend& backend);

/// params[key] of a pack model as positive integers; `fallback` when absent.
Result<std::vector<int>> IntListParam(const infer::PackModel& pm, const std::string& key,
                                      std::vector<int> fallback);
Result<int> IntParam(const infer::PackModel& pm, const std::string& key, int fallback);

}  // namespace fg::vision::detail
