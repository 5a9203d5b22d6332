// SPDX-License-Identifier: Apache-2.0
// SHA-256 of an in-memory buffer (defined in onnx_graph.cc next to Sha256File).
#pragma once

#include <string>
#include <string_view>

#include "fg/base/status.h"

namespace fg::infer::detail {

/// Lower-case hex SHA-256 of `bytes`. Loading hashes the very bytes it parses, so the reported
/// hash always matches the graph that runs.
Result<std::string> Sha256Bytes(std::string_view bytes);

}  // namespace fg::infer::detail
