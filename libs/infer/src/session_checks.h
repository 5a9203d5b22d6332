// SPDX-License-Identifier: Apache-2.0
// Input validation shared by every backend's Session::Run (private).
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

/// Checks the inputs of one Run against the model: count, non-null data, positive dims, the
/// declared rank and non-batch dims, and the batch limit. Errors name the model and input.
Status CheckInputs(const ModelInfo& info, std::span<const TensorView> inputs);

}  // namespace fg::infer::detail
