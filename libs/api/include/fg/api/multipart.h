// SPDX-License-Identifier: Apache-2.0
// A small, strict multipart/form-data parser (RFC 7578) for uploads. It parses untrusted bytes:
// bounded (parts, header size), never reads past the body, and reports a truncated or malformed
// body as InvalidArgument. Fuzzed (fuzz/multipart_fuzz.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "fg/base/status.h"

namespace fg::api {

struct MultipartPart {
    std::string name;          ///< Content-Disposition name
    std::string filename;      ///< "" when absent
    std::string content_type;  ///< "" when absent
    std::string body;
};

struct MultipartLimits {
    std::size_t max_parts = 32;
    std::size_t max_part_header_bytes = 4096;
};

/// The boundary parameter of a "multipart/form-data; boundary=..." Content-Type (quoted or
/// not; 1..70 characters as RFC 2046 allows). InvalidArgument when missing or malformed.
Result<std::string> MultipartBoundary(std::string_view content_type);

/// Splits `body` into its parts. Errors: no opening delimiter, a part without headers or
/// without a form-data name, a missing closing delimiter (truncated), too many parts.
Result<std::vector<MultipartPart>> ParseMultipart(std::string_view body, std::string_view boundary,
                                                  const MultipartLimits& limits = {});

}  // namespace fg::api
