// SPDX-License-Identifier: Apache-2.0
// The production ModelProvider (a vision::Engine) and Identifier (a gallery::Gallery).
#include "fg/pipeline/models.h"

#include "fg/gallery/gallery.h"
#include "fg/vision/engine.h"

namespace fg::pipeline {
namespace {

/// A worker with only a detector session, as a vision::Detector.
class WorkerDetector final : public vision::Detector {
  public:
    WorkerDetector(std::unique_ptr<vision::Worker> worker, vision::DetectorInfo info)
        : worker_(std::move(worker)), info_(std::move(info)) {}
    Result<std::vector<vision::FaceDetection>> Detect(const cv::Mat& bgr) override {
        return worker_->Detect(bgr);
    }
    const vision::DetectorInfo& info() const override { return info_; }

  private:
    std::unique_ptr<vision::Worker> worker_;
    vision::DetectorInfo info_;
};

/// A worker with only an embedder session, as a vision::Embedder.
class WorkerEmbedder final : public vision::Embedder {
  public:
    WorkerEmbedder(std::unique_ptr<vision::Worker> worker, vision::EmbedderInfo info)
        : worker_(std::move(worker)), info_(std::move(info)) {}
    Status Embed(std::span<const cv::Mat> aligned, std::vector<vision::Embedding>& out) override {
        return worker_->EmbedAligned(aligned, out);
    }
    const vision::EmbedderInfo& info() const override { return info_; }

  private:
    std::unique_ptr<vision::Worker> worker_;
    vision::EmbedderInfo info_;
};

class EngineModels final : public ModelProvider {
  public:
    explicit EngineModels(std::shared_ptr<vision::Engine> engine) : engine_(std::move(engine)) {}

    Result<std::unique_ptr<vision::Detector>> CreateDetector(float score_threshold) const override {
        FG_ASSIGN_OR_RETURN(std::unique_ptr<vision::Worker> w,
                            engine_->CreateWorker({.detector = true,
                                                   .embedder = false,
                                                   .detector_score_threshold = score_threshold}));
        return std::unique_ptr<vision::Detector>(
            std::make_unique<WorkerDetector>(std::move(w), engine_->detector_info()));
    }
    float detector_threshold() const override { return engine_->config().detector.score_threshold; }
    Result<std::unique_ptr<vision::Embedder>> CreateEmbedder() const override {
        FG_ASSIGN_OR_RETURN(std::unique_ptr<vision::Worker> w,
                            engine_->CreateWorker({.detector = false, .embedder = true}));
        return std::unique_ptr<vision::Embedder>(
            std::make_unique<WorkerEmbedder>(std::move(w), *engine_->embedder_info()));
    }
    std::string embedder_model_id() const override { return engine_->embedder_info()->model_id; }
    Result<std::unique_ptr<vision::LivenessChecker>> CreateLivenessChecker(
        std::string_view preset, float threshold) const override {
        FG_ASSIGN_OR_RETURN(std::shared_ptr<const vision::LivenessModel> model, engine_->Liveness(preset));
        vision::LivenessConfig lc;
        lc.threshold = threshold;
        return model->CreateChecker(lc);
    }
    Result<AssessedCrop> AlignAndAssess(const cv::Mat& bgr,
                                        const vision::FaceDetection& face) const override {
        FG_ASSIGN_OR_RETURN(vision::AssessedFace a, engine_->AlignAndAssess(bgr, face));
        return AssessedCrop{std::move(a.aligned.image), a.quality};
    }

  private:
    std::shared_ptr<vision::Engine> engine_;
};

class GalleryIdentifier final : public Identifier {
  public:
    explicit GalleryIdentifier(std::shared_ptr<gallery::Gallery> gallery) : gallery_(std::move(gallery)) {}

    Result<IdentityVerdict> Identify(const Embedding& probe) const override {
        // Two candidates: the best and the runner-up give the margin.
        FG_ASSIGN_OR_RETURN(gallery::Identification r, gallery_->Identify(probe, 2));
        IdentityVerdict v;
        if (!r.candidates.empty()) {
            v.score = r.candidates[0].score;
            v.margin = r.candidates.size() > 1 ? r.candidates[0].score - r.candidates[1].score
                                               : r.candidates[0].score;
            v.display_name = r.candidates[0].display_name;
        }
        v.known = r.known;
        if (r.known) v.subject_id = r.subject_id;
        return v;
    }

  private:
    std::shared_ptr<gallery::Gallery> gallery_;
};

}  // namespace

Result<std::shared_ptr<ModelProvider>> MakeEngineModels(std::shared_ptr<vision::Engine> engine) {
    if (!engine) return InvalidArgument("pipeline: no engine");
    if (engine->embedder_info() == nullptr) {
        return FailedPrecondition("pipeline: the engine has no embedder");
    }
    return std::shared_ptr<ModelProvider>(std::make_shared<EngineModels>(std::move(engine)));
}

Result<std::shared_ptr<Identifier>> MakeGalleryIdentifier(std::shared_ptr<gallery::Gallery> gallery,
                                                         const std::string& model_id) {
    if (!gallery) return InvalidArgument("pipeline: no gallery");
    FG_ASSIGN_OR_RETURN(gallery::GalleryStats gs, gallery->Stats());
    if (!gs.model_id.empty() && gs.model_id != model_id) {
        return FailedPrecondition("the gallery's templates come from model '" + gs.model_id +
                                  "' but the engine embeds with '" + model_id +
                                  "': use the gallery's pack or re-embed the gallery");
    }
    return std::shared_ptr<Identifier>(std::make_shared<GalleryIdentifier>(std::move(gallery)));
}

}  // namespace fg::pipeline
