// SPDX-License-Identifier: Apache-2.0
// What the pipeline needs from the outside world, as two small interfaces: the models
// (ModelProvider) and the gallery (Identifier). vision::Engine and gallery::Gallery provide
// them through the adapters below; tests pass fakes and run the whole decision logic in
// milliseconds with no model file.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/core/embedding.h"
#include "fg/pipeline/track_recognition.h"
#include "fg/vision/detector.h"
#include "fg/vision/embedder.h"
#include "fg/vision/liveness.h"
#include "fg/vision/quality.h"

namespace fg::vision {
class Engine;
}
namespace fg::gallery {
class Gallery;
}

namespace fg::pipeline {

/// A face cut out for recognition: the aligned crop (the embedder's input) and its quality.
struct AssessedCrop {
    cv::Mat aligned;  ///< BGR8, embedder input size
    vision::QualityReport quality;
};

/// The models of one pipeline. Thread-safe: Create* are called from the stream threads and the
/// embedding thread; each returned object belongs to the thread that created it.
class ModelProvider {
  public:
    virtual ~ModelProvider() = default;
    /// A detector for one stream thread, returning detections down to `score_threshold`
    /// (the pipeline lowers it to feed the tracker's second stage).
    virtual Result<std::unique_ptr<vision::Detector>> CreateDetector(float score_threshold) const = 0;
    /// The engine's own detector threshold: what counts as a face.
    virtual float detector_threshold() const = 0;
    /// An embedder for the embedding thread.
    virtual Result<std::unique_ptr<vision::Embedder>> CreateEmbedder() const = 0;
    /// The id of the model CreateEmbedder embeds with (galleries must match it).
    virtual std::string embedder_model_id() const = 0;
    /// A liveness checker for one stream thread ("" = the default preset).
    virtual Result<std::unique_ptr<vision::LivenessChecker>> CreateLivenessChecker(
        std::string_view preset, float threshold) const = 0;
    /// Aligns one detected face of `bgr` and assesses its quality (no inference session).
    virtual Result<AssessedCrop> AlignAndAssess(const cv::Mat& bgr,
                                                const vision::FaceDetection& face) const = 0;
};

/// The gallery as the pipeline sees it: a fused embedding in, a verdict out.
/// Thread-safe: called from every stream thread at once.
class Identifier {
  public:
    virtual ~Identifier() = default;
    /// The open-set decision for a unit embedding of the provider's model.
    virtual Result<IdentityVerdict> Identify(const Embedding& probe) const = 0;
};

/// The models of `engine` (which must have an embedder). Liveness models are loaded (once,
/// by the engine) when a checker is first asked for.
Result<std::shared_ptr<ModelProvider>> MakeEngineModels(std::shared_ptr<vision::Engine> engine);

/// Identification against `gallery`; FailedPrecondition when its templates come from another
/// model than `model_id` (scores of two models are not comparable).
Result<std::shared_ptr<Identifier>> MakeGalleryIdentifier(std::shared_ptr<gallery::Gallery> gallery,
                                                         const std::string& model_id);

}  // namespace fg::pipeline
