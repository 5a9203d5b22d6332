// SPDX-License-Identifier: Apache-2.0
// The naive baseline as its own processor: detect every frame, embed and identify every face,
// no tracking, no events. `bench stream --mode naive` measures what the staged pipeline saves.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/pipeline/embed_batcher.h"
#include "fg/pipeline/models.h"

namespace fg::pipeline {

struct NaiveFrame {
    std::vector<vision::FaceDetection> faces;
    std::vector<std::string> labels;      ///< per face: display name, or "" when not recognised
    std::vector<std::string> identities;  ///< subjects recognised in this frame
    std::uint64_t embedded = 0;
};

/// Thread-safety: none; one per stream.
class NaiveProcessor {
  public:
    /// `score_threshold`: what counts as a face (no tracker uses weaker detections).
    static Result<std::unique_ptr<NaiveProcessor>> Create(const ModelProvider& models,
                                                          float score_threshold,
                                                          EmbedBatcher& embedder,
                                                          std::string model_id,
                                                          const Identifier* identifier);
    Result<NaiveFrame> Process(const cv::Mat& image);

  private:
    NaiveProcessor(const ModelProvider& models, std::unique_ptr<vision::Detector> detector,
                   EmbedBatcher& embedder, std::string model_id, const Identifier* identifier)
        : models_(models), detector_(std::move(detector)), embedder_(embedder),
          model_id_(std::move(model_id)), identifier_(identifier) {}
    const ModelProvider& models_;
    std::unique_ptr<vision::Detector> detector_;
    EmbedBatcher& embedder_;
    std::string model_id_;
    const Identifier* identifier_;
};

}  // namespace fg::pipeline
