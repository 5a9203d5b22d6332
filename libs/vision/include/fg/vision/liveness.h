// SPDX-License-Identifier: Apache-2.0
// Passive liveness (presentation-attack detection) on single frames, and its fusion over the
// frames of a track. See docs/liveness.md for the models, crops, scores and their limits.
//
//   auto model = engine->Liveness("fr_liveness");    // vision::Engine: loaded once, shared, immutable
//   auto check = (*model)->CreateChecker({.threshold = 0.5f});      // one per thread
//   auto r     = (*check)->Check(bgr, face);                        // r->score, r->live
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/vision/detector.h"

namespace fg::vision {

/// One model's opinion of one face.
struct LivenessModelScore {
    std::string model_id;           ///< pack model id, e.g. "fr_liveness"
    float live = 0;                 ///< this model's live probability (softmax), 0..1
};

struct LivenessResult {
    float score = 0;                ///< live probability, 0..1: weighted mean of the models' scores
    bool live = false;              ///< score >= threshold
    std::vector<LivenessModelScore> models;   ///< per model, in LivenessInfo::model_ids order
};

struct LivenessConfig {
    float threshold = 0.5f;         ///< live when score >= threshold; in [0, 1]
    int max_batch = 8;              ///< faces per forward pass (capped by what each model accepts)

    Status Validate() const;
};

struct LivenessInfo {
    std::string name;               ///< preset or pack name, e.g. "fused"
    std::vector<std::string> model_ids;
    std::vector<float> weights;     ///< fusion weight per model (normalised, sum 1)
};

/// Runs the liveness models on faces of a frame. NOT thread-safe (owns inference sessions):
/// one per worker thread.
class LivenessChecker {
  public:
    virtual ~LivenessChecker() = default;
    /// Scores one detected face of a BGR8 image (any size). Crops that leave the image are
    /// padded with black; a face of any size (even 1 px) is accepted. Errors: InvalidArgument
    /// for an empty or non-BGR8 image or a non-finite box; Internal on inference failure.
    virtual Result<LivenessResult> Check(const cv::Mat& bgr, const FaceDetection& face) = 0;
    /// Scores several faces of one image, batched; `out` gets one result per face, in order.
    virtual Status CheckBatch(const cv::Mat& bgr, std::span<const FaceDetection> faces,
                              std::vector<LivenessResult>& out) = 0;
    virtual const LivenessInfo& info() const = 0;
    virtual float threshold() const = 0;
};

/// Loaded liveness models; immutable, shared between threads.
class LivenessModel {
  public:
    virtual ~LivenessModel() = default;
    /// Errors: InvalidArgument for a bad config.
    virtual Result<std::unique_ptr<LivenessChecker>> CreateChecker(const LivenessConfig& config = {}) const = 0;
    virtual const LivenessInfo& info() const = 0;
};

/// Loads pack entries of role "liveness" (decoder "minifasnet"; params: crop_scale, live_index,
/// fusion_weight) as one checker whose score is the weighted mean of theirs. `name` is reported
/// in LivenessInfo. Errors: InvalidArgument (no entries, wrong role/decoder, bad params),
/// NotFound (file missing), DataLoss (hash mismatch).
Result<std::shared_ptr<const LivenessModel>> LoadLivenessModel(std::span<const infer::PackModel> entries,
                                                              const infer::Backend& backend,
                                                              std::string name = "");

/// The liveness preset used when none is named: the one that separates the reference samples
/// (docs/liveness.md).
std::string_view DefaultLivenessPreset();

/// Liveness by preset name (Engine::Liveness calls this once per preset on the engine's backend):
///   "fr_liveness"  the liveness models of `pack`, or of the built-in "default" pack when `pack`
///                  has none;
///   "minifasnet"   the two Silent-Face MiniFASNets of the built-in "silentface" pack;
///   "fused"        both of the above;
///   ""             DefaultLivenessPreset();
///   anything else  a pack name or manifest path: all of its liveness models.
Result<std::shared_ptr<const LivenessModel>> LoadLiveness(std::string_view preset, const infer::ModelPack& pack,
                                                         const infer::Backend& backend);

/// Fuses per-frame liveness of one tracked face: the mean score of the last `window` frames
/// (a mean of probabilities, so one frame of a blinking detector cannot dominate). Value type,
/// not synchronised: one per track.
class LivenessTrackFusion {
  public:
    /// `min_frames`: frames needed before decided() is true. Values are clamped to >= 1.
    explicit LivenessTrackFusion(float threshold = 0.5f, int window = 15, int min_frames = 3);
    void Add(const LivenessResult& frame);
    void Add(float frame_score);
    int frames() const { return frames_; }             ///< frames added in total
    float score() const;                               ///< fused live probability; NaN before any frame
    bool decided() const { return frames_ >= min_frames_; }
    bool live() const { return decided() && score() >= threshold_; }
    bool spoof() const { return decided() && score() < threshold_; }

  private:
    float threshold_;
    int window_;
    int min_frames_;
    int frames_ = 0;
    std::vector<float> recent_;   // ring buffer of the last `window_` scores
};

}  // namespace fg::vision
