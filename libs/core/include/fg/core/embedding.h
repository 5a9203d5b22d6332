// SPDX-License-Identifier: Apache-2.0
// Face embeddings and their arithmetic: the one place that normalises and compares them.
// Dependency-free, so the gallery, the pipeline and a message-bus worker share it without
// compiling OpenCV or the inference headers.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace fg {

/// An embedding as an embedder produced it: L2-normalised, tagged with the model that made it
/// (scores of two models are not comparable).
struct Embedding {
    std::string model_id;
    std::vector<float> values;
};

/// Scales `v` to unit length in place and returns its former length (0 leaves it unchanged).
/// Sums in double: 512 float squares lose ~1e-5 of relative precision otherwise.
double L2Normalize(std::span<float> v);

/// True when every value is finite (no NaN, no infinity).
bool AllFinite(std::span<const float> v);

/// Dot product, summed in double; for unit vectors, their cosine similarity.
float Dot(std::span<const float> a, std::span<const float> b);

/// Cosine similarity of two unit embeddings (their dot product). NaN when the model ids or
/// lengths differ, or either is empty.
float CosineSimilarity(const Embedding& a, const Embedding& b);

}  // namespace fg
