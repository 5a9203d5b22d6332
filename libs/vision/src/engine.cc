// SPDX-License-Identifier: Apache-2.0
#include "fg/vision/engine.h"

#include <algorithm>
#include <numeric>

#include <spdlog/spdlog.h>

#include "preprocess.h"

namespace fg::vision {
namespace {

// Crop side when the engine has no embedder: the ArcFace template's native size.
constexpr int kDefaultAlignedSize = 112;

// The one align + assess step (Engine::AlignAndAssess and Worker::Analyze).
Result<AssessedFace> AlignAndAssessImpl(const cv::Mat& bgr, const FaceDetection& d, int size,
                                        const QualityConfig& quality) {
    AssessedFace out;
    FG_ASSIGN_OR_RETURN(out.aligned, AlignFace(bgr, d.landmarks, size));
    out.quality = AssessQuality(d, out.aligned.image, quality);
    return out;
}

Status NoDetector() { return FailedPrecondition("worker was created without a detector"); }
Status NoEmbedder() { return FailedPrecondition("engine or worker was created without an embedder"); }

class EngineWorker final : public Worker {
  public:
    EngineWorker(const QualityConfig& quality, int aligned_size, std::unique_ptr<Detector> detector,
                 std::unique_ptr<Embedder> embedder)
        : quality_(quality),
          aligned_size_(aligned_size),
          detector_(std::move(detector)),
          embedder_(std::move(embedder)) {}

    Result<std::vector<FaceDetection>> Detect(const cv::Mat& bgr) override {
        if (!detector_) return NoDetector();
        return detector_->Detect(bgr);
    }

    Result<std::vector<Face>> Analyze(const cv::Mat& bgr, const AnalyzeOptions& options) override {
        if (!detector_) return NoDetector();
        FG_ASSIGN_OR_RETURN(std::vector<FaceDetection> dets, detector_->Detect(bgr));
        // Largest faces first: they are the ones a caller limiting max_faces wants.
        std::stable_sort(dets.begin(), dets.end(), [](const FaceDetection& a, const FaceDetection& b) {
            return a.box.area() > b.box.area();
        });
        if (options.max_faces > 0 && dets.size() > static_cast<size_t>(options.max_faces)) {
            dets.resize(options.max_faces);
        }
        std::vector<Face> faces;
        faces.reserve(dets.size());
        crops_.clear();
        for (FaceDetection& d : dets) {
            Face face;
            FG_ASSIGN_OR_RETURN(AssessedFace assessed, AlignAndAssessImpl(bgr, d, aligned_size_, quality_));
            face.aligned = std::move(assessed.aligned);
            face.quality = std::move(assessed.quality);
            face.detection = std::move(d);
            crops_.push_back(face.aligned.image);
            faces.push_back(std::move(face));
        }
        if (options.embed && !faces.empty()) {
            if (!embedder_) return NoEmbedder();
            FG_RETURN_IF_ERROR(embedder_->Embed(crops_, embeddings_));
            for (size_t i = 0; i < faces.size(); ++i) faces[i].embedding = std::move(embeddings_[i]);
        }
        if (!options.keep_aligned) {
            for (Face& f : faces) f.aligned.image.release();
        }
        crops_.clear();
        return faces;
    }

    Status Embed(const cv::Mat& bgr, std::span<const FaceDetection> dets, std::vector<Embedding>& out) override {
        if (!embedder_) return NoEmbedder();
        FG_RETURN_IF_ERROR(detail::CheckBgr8(bgr));
        crops_.clear();
        for (const FaceDetection& d : dets) {
            FG_ASSIGN_OR_RETURN(AlignedFace a, AlignFace(bgr, d.landmarks, embedder_->info().input_size));
            crops_.push_back(std::move(a.image));
        }
        Status s = embedder_->Embed(crops_, out);
        crops_.clear();
        return s;
    }

    Status EmbedAligned(std::span<const cv::Mat> aligned, std::vector<Embedding>& out) override {
        if (!embedder_) return NoEmbedder();
        return embedder_->Embed(aligned, out);
    }

  private:
    QualityConfig quality_;  // a copy: a Worker may outlive its Engine
    int aligned_size_;
    std::unique_ptr<Detector> detector_;
    std::unique_ptr<Embedder> embedder_;
    std::vector<cv::Mat> crops_;
    std::vector<Embedding> embeddings_;
};

Result<infer::ModelPack> PackWithOverrides(const EngineConfig& config) {
    FG_ASSIGN_OR_RETURN(infer::ModelPack pack, infer::ResolvePack(config.pack));
    auto take_role = [&pack](const std::string& other, std::initializer_list<infer::ModelRole> roles) -> Status {
        if (other.empty()) return Status::Ok();
        FG_ASSIGN_OR_RETURN(infer::ModelPack src, infer::ResolvePack(other));
        // Drop the roles being replaced, then take them (with their helpers) from `src`.
        std::erase_if(pack.models, [&](const infer::PackModel& m) {
            return std::find(roles.begin(), roles.end(), m.role) != roles.end();
        });
        bool found = false;
        for (const infer::PackModel& m : src.models) {
            if (std::find(roles.begin(), roles.end(), m.role) != roles.end()) {
                pack.models.push_back(m);
                found = true;
            }
        }
        if (!found) return NotFound("pack '" + other + "' has no model for the requested role");
        pack.name += "+" + src.name;
        return Status::Ok();
    };
    FG_RETURN_IF_ERROR(take_role(config.detector_pack, {infer::ModelRole::kDetector, infer::ModelRole::kLandmarker}));
    FG_RETURN_IF_ERROR(take_role(config.embedder_pack, {infer::ModelRole::kEmbedder}));
    return pack;
}

}  // namespace

Result<std::shared_ptr<Engine>> Engine::Create(const EngineConfig& config) {
    FG_RETURN_IF_ERROR(config.detector.Validate());
    std::shared_ptr<Engine> engine(new Engine());
    engine->config_ = config;
    FG_ASSIGN_OR_RETURN(engine->pack_, PackWithOverrides(config));
    FG_ASSIGN_OR_RETURN(engine->backend_, infer::MakeBackend(config.backend));
    FG_ASSIGN_OR_RETURN(engine->detector_, LoadDetectorModel(engine->pack_, *engine->backend_));
    if (config.load_embedder) {
        FG_ASSIGN_OR_RETURN(engine->embedder_, LoadEmbedderModel(engine->pack_, *engine->backend_));
    }
    spdlog::debug("engine: pack {} detector {} embedder {}", engine->pack_.name, engine->detector_->info().id,
                  engine->embedder_ ? engine->embedder_->info().model_id : "none");
    return engine;
}

Result<std::unique_ptr<Worker>> Engine::CreateWorker(const WorkerOptions& options) const {
    std::unique_ptr<Detector> det;
    if (options.detector) {
        DetectorConfig dc = config_.detector;
        if (options.detector_score_threshold) dc.score_threshold = *options.detector_score_threshold;
        FG_RETURN_IF_ERROR(dc.Validate());
        FG_ASSIGN_OR_RETURN(det, detector_->CreateDetector(dc));
    }
    std::unique_ptr<Embedder> emb;
    if (embedder_ && options.embedder) {
        FG_ASSIGN_OR_RETURN(emb, embedder_->CreateEmbedder(config_.embedder));
    }
    return std::unique_ptr<Worker>(
        std::make_unique<EngineWorker>(config_.quality, aligned_size(), std::move(det), std::move(emb)));
}

int Engine::aligned_size() const { return embedder_ ? embedder_->info().input_size : kDefaultAlignedSize; }

Result<AssessedFace> Engine::AlignAndAssess(const cv::Mat& bgr, const FaceDetection& d) const {
    return AlignAndAssessImpl(bgr, d, aligned_size(), config_.quality);
}

Result<std::shared_ptr<const LivenessModel>> Engine::Liveness(std::string_view preset) const {
    if (preset.empty()) preset = DefaultLivenessPreset();
    std::lock_guard lock(lazy_mu_);
    if (auto it = liveness_.find(preset); it != liveness_.end()) return it->second;
    FG_ASSIGN_OR_RETURN(std::shared_ptr<const LivenessModel> model, LoadLiveness(preset, pack_, *backend_));
    liveness_.emplace(std::string(preset), model);
    return model;
}

Result<std::shared_ptr<const AttributeModel>> Engine::Attributes(const AttributeRequest& request) const {
    const unsigned key = (request.age ? 1u : 0u) | (request.gender ? 2u : 0u) | (request.eyes ? 4u : 0u) |
                         (request.pose ? 8u : 0u);
    std::lock_guard lock(lazy_mu_);
    if (auto it = attributes_.find(key); it != attributes_.end()) return it->second;
    FG_ASSIGN_OR_RETURN(std::shared_ptr<const AttributeModel> model, LoadAttributeModel(pack_, *backend_, request));
    attributes_.emplace(key, model);
    return model;
}

}  // namespace fg::vision
