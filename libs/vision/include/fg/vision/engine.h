// SPDX-License-Identifier: Apache-2.0
// The recognition engine: detect -> align -> quality -> embed, from one model pack.
//
//   auto engine = fg::vision::Engine::Create({.pack = "default"});   // loads models once
//   auto worker = (*engine)->CreateWorker();                         // one per thread
//   auto faces  = (*worker)->Analyze(image);                         // detections + embeddings
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/image/align.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/vision/detector.h"
#include "fg/vision/embedder.h"
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
    AlignedFace aligned;                    ///< the 112x112 crop (empty unless kept)
};

struct AnalyzeOptions {
    bool embed = true;
    bool keep_aligned = false;
    int max_faces = 0;                      ///< embed only the N largest faces; 0 = all
};

/// NOT thread-safe: one per worker thread (owns inference sessions).
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

    Result<std::unique_ptr<Worker>> CreateWorker() const;
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
};

}  // namespace fg::vision
