// SPDX-License-Identifier: Apache-2.0
// The recognition engine: detect -> align -> quality -> embed, from one model pack. The Engine is
// the one owner of the pack's models: detector (+landmarker) and embedder at Create, liveness and
// attribute models on first use, all on the engine's one backend.
//
//   auto engine = fg::vision::Engine::Create({.pack = "default"});   // loads models once
//   auto worker = (*engine)->CreateWorker();                         // one per thread
//   auto faces  = (*worker)->Analyze(image);                         // detections + embeddings
//   auto live   = (*engine)->Liveness();                             // loaded once, shared
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/image/align.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/vision/attributes.h"
#include "fg/vision/detector.h"
#include "fg/vision/embedder.h"
#include "fg/vision/liveness.h"
#include "fg/vision/quality.h"

namespace fg::vision {

struct EngineConfig {
    std::string pack = "default";           ///< built-in pack name or manifest path
    std::string detector_pack;              ///< take the detector from this pack instead (optional)
    std::string embedder_pack;              ///< take the embedder from this pack instead (optional)
    infer::BackendConfig backend;
    DetectorConfig detector;
    EmbedderConfig embedder;
    QualityConfig quality;
    bool load_embedder = true;              ///< false: detection only (faster start)
};

struct Face {
    FaceDetection detection;
    QualityReport quality;
    std::optional<Embedding> embedding;
    AlignedFace aligned;                    ///< the Engine::aligned_size() crop (empty unless kept)
};

struct AnalyzeOptions {
    bool embed = true;
    bool keep_aligned = false;
    int max_faces = 0;                      ///< embed only the N largest faces; 0 = all
};

/// A face aligned for the embedder and its quality: the step between detection and recognition,
/// the same for images (Worker::Analyze) and streams.
struct AssessedFace {
    AlignedFace aligned;                    ///< crop at the embedder input size (112 without one)
    QualityReport quality;                  ///< EngineConfig::quality applied to that crop
};

/// Which sessions a worker creates: a stream worker that only detects needs no embedder session.
struct WorkerOptions {
    bool detector = true;
    bool embedder = true;                   ///< ignored when the engine has no embedder
    /// The detector's score threshold instead of EngineConfig::detector's (the stream
    /// pipeline runs it lower to feed its tracker's second stage).
    std::optional<float> detector_score_threshold;
};

/// NOT thread-safe: one per worker thread (owns inference sessions). Calls needing a session the
/// worker was created without (WorkerOptions) fail with FailedPrecondition.
class Worker {
  public:
    virtual ~Worker() = default;
    virtual Result<std::vector<FaceDetection>> Detect(const cv::Mat& bgr) = 0;
    /// Detects, aligns, assesses quality and (optionally) embeds every face, in one batch.
    virtual Result<std::vector<Face>> Analyze(const cv::Mat& bgr, const AnalyzeOptions& options = {}) = 0;
    /// Embeds the given detections of `bgr` (aligned from their landmarks), batched.
    virtual Status Embed(const cv::Mat& bgr, std::span<const FaceDetection> faces, std::vector<Embedding>& out) = 0;
    /// Embeds pre-aligned crops.
    virtual Status EmbedAligned(std::span<const cv::Mat> aligned, std::vector<Embedding>& out) = 0;
};

/// Holds the loaded models. Thread-safe: share one Engine, create one Worker per thread.
class Engine {
  public:
    static Result<std::shared_ptr<Engine>> Create(const EngineConfig& config);

    /// A worker with the sessions `options` asks for (default: detector and embedder).
    Result<std::unique_ptr<Worker>> CreateWorker(const WorkerOptions& options = {}) const;

    /// Aligns `d` from its landmarks to aligned_size() and assesses its quality with
    /// EngineConfig::quality: exactly what Worker::Analyze does per face. Needs no session.
    /// Errors: InvalidArgument for an empty or non-BGR8 image or unusable landmarks.
    Result<AssessedFace> AlignAndAssess(const cv::Mat& bgr, const FaceDetection& d) const;
    /// Side of the aligned crops: the embedder input size, 112 when there is no embedder.
    int aligned_size() const;

    /// The liveness models of `preset` (see LoadLiveness; "" = DefaultLivenessPreset()), loaded
    /// with the engine's backend on first use and shared afterwards. A failed load is returned
    /// and retried on the next call. Loads hold a lock: the first call of each preset may wait
    /// for another thread's load.
    Result<std::shared_ptr<const LivenessModel>> Liveness(std::string_view preset = "") const;
    /// The attribute models for `request` (see LoadAttributeModel), loaded once per distinct
    /// request like Liveness.
    Result<std::shared_ptr<const AttributeModel>> Attributes(const AttributeRequest& request) const;

    const EngineConfig& config() const { return config_; }
    const infer::ModelPack& pack() const { return pack_; }
    const DetectorInfo& detector_info() const { return detector_->info(); }
    /// Null when the engine was created without an embedder.
    const EmbedderInfo* embedder_info() const { return embedder_ ? &embedder_->info() : nullptr; }

  private:
    Engine() = default;
    EngineConfig config_;
    infer::ModelPack pack_;
    std::shared_ptr<infer::Backend> backend_;
    std::shared_ptr<const DetectorModel> detector_;
    std::shared_ptr<const EmbedderModel> embedder_;

    // Models loaded on first use; the mutex also serialises their loads on backend_.
    mutable std::mutex lazy_mu_;
    mutable std::map<std::string, std::shared_ptr<const LivenessModel>, std::less<>> liveness_;
    mutable std::map<unsigned, std::shared_ptr<const AttributeModel>> attributes_;  // key: request bits
};

}  // namespace fg::vision
