// SPDX-License-Identifier: Apache-2.0
// Small, safe rewrites of ONNX graphs done with the ONNX protobuf before a backend reads them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fg/base/status.h"

namespace fg::infer {

struct OnnxGraphSummary {
    std::vector<std::string> input_names;              ///< real inputs (initialisers excluded)
    std::vector<std::vector<std::int64_t>> input_shapes;   ///< -1 for a dynamic dim
    std::vector<std::string> output_names;
    std::vector<std::string> op_types;                 ///< distinct op types, sorted
};

/// Parses a serialized ModelProto. Errors: InvalidArgument for bytes that are not an ONNX model.
Result<OnnxGraphSummary> SummarizeOnnx(const std::string& bytes);

/// Returns a copy of the model with graph input `index` fixed to `shape` (all dims) and the
/// value_info/output dims cleared so shapes get re-inferred by the backend.
Result<std::string> FixOnnxInputShape(const std::string& bytes, const std::vector<std::int64_t>& shape,
                                      int index = 0);

/// Returns a copy of the model whose batch dimension is free: input dim 0 becomes symbolic and
/// constant Reshape targets whose first element is 1 become -1. Errors: Unimplemented when the
/// graph has batch-1 assumptions this rewrite cannot remove.
Result<std::string> MakeOnnxBatchDynamic(const std::string& bytes);

/// Reads a whole file. Errors: NotFound, InvalidArgument (empty file or a directory).
Result<std::string> ReadFileBytes(const std::filesystem::path& path);

/// Lower-case hex SHA-256 of a file (OpenSSL), streamed. Errors: NotFound.
Result<std::string> Sha256File(const std::filesystem::path& path);

}  // namespace fg::infer
