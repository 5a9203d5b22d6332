// SPDX-License-Identifier: Apache-2.0
// The two FaceEmbedders of a worker: the real model through the pipeline's EmbedBatcher (faces of
// every recognition thread share forward passes) and a stub for measuring the plumbing alone.
#pragma once

#include <memory>

#include "fg/base/status.h"
#include "fg/cluster/worker.h"
#include "fg/pipeline/models.h"

namespace fg::cluster {

/// The provider's embedder behind an EmbedBatcher of up to `max_batch` faces.
Result<std::shared_ptr<FaceEmbedder>> MakeModelEmbedder(const pipeline::ModelProvider& models,
                                                        int max_batch = 8);

/// No model: a deterministic unit vector of `dim` from a few pixels of the crop (model id
/// "stub"). For the plumbing benchmark and tests; never for decisions.
std::shared_ptr<FaceEmbedder> MakeStubEmbedder(int dim = 512);

}  // namespace fg::cluster
