// SPDX-License-Identifier: Apache-2.0
// Model loading and input validation shared by every backend (private).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/infer/backend.h"

namespace fg::infer::detail {

/// "[1,3,?,?]": a shape for error messages (negative dims print as "?").
std::string ShapeString(const std::vector<std::int64_t>& shape);

/// An ONNX file read, hash-checked, validated and (when the spec asks) with its input fixed:
/// the common first half of every backend's Load.
struct VerifiedOnnx {
    std::string bytes;    ///< the graph to load (rewritten when spec.input_shape is set)
    std::string sha256;   ///< hash of the file as read
};
/// Errors: NotFound (no file), DataLoss (hash mismatch), InvalidArgument (not a valid graph).
Result<VerifiedOnnx> ReadVerifiedOnnx(const ModelSpec& spec);

/// Checks the inputs of one Run against the model: count, non-null data, positive dims, the
/// declared rank and non-batch dims, and the batch limit. Errors name the model and input.
Status CheckInputs(const ModelInfo& info, std::span<const TensorView> inputs);

}  // namespace fg::infer::detail
