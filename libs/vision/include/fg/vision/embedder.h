// SPDX-License-Identifier: Apache-2.0
// Face embeddings from ArcFace-aligned crops.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/core/embedding.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"

namespace fg::vision {

/// An L2-normalised face template with the id of the model that made it: vectors from
/// different models are not comparable.
// The embedding value type and its arithmetic live in fg/core/embedding.h (no OpenCV), so the
// gallery and bus workers use them without this header.
using Embedding = fg::Embedding;
using fg::CosineSimilarity;

struct EmbedderConfig {
    /// Embed the face and its mirror image, add, normalise: on CFP +0.03 pt (frontal) and
    /// +0.6 pt (frontal-profile) accuracy for 2x the embedding time (BENCHMARKS.md).
    bool flip_fusion = true;
    /// Faces per forward pass (capped by the model's limit). 1 by default: on CPU a batch of 8
    /// costs more per face than 8 single passes with both backends (BENCHMARKS.md).
    int max_batch = 1;
};

struct EmbedderInfo {
    std::string model_id;           ///< recorded next to every vector
    int dim = 0;
    int input_size = 112;
    int max_batch = 1;              ///< what the model accepts in one pass
};

/// NOT thread-safe: one per worker thread.
class Embedder {
  public:
    virtual ~Embedder() = default;
    /// Embeds ArcFace-aligned BGR8 crops (input_size x input_size), batched. `out` receives
    /// one Embedding per face, in order. Errors: InvalidArgument for a crop of the wrong size
    /// or type; Internal on inference failure.
    virtual Status Embed(std::span<const cv::Mat> aligned_faces, std::vector<Embedding>& out) = 0;
    virtual const EmbedderInfo& info() const = 0;
};

/// Immutable, shared between threads.
class EmbedderModel {
  public:
    virtual ~EmbedderModel() = default;
    virtual Result<std::unique_ptr<Embedder>> CreateEmbedder(const EmbedderConfig& config) const = 0;
    virtual const EmbedderInfo& info() const = 0;
};

Result<std::shared_ptr<const EmbedderModel>> LoadEmbedderModel(const infer::ModelPack& pack,
                                                              const infer::Backend& backend);

}  // namespace fg::vision

namespace fg::vision {
/// The 1:1 decision threshold the pack recommends for its embedder (embedder params
/// "verify_threshold"), or 0.4 when the pack names none. See BENCHMARKS.md for how the built-in
/// values were chosen.
float DefaultVerifyThreshold(const infer::ModelPack& pack);
}  // namespace fg::vision
