// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness of the multipart/form-data parser (untrusted upload bodies). Input: the
// first line is the Content-Type header value, the rest the body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fg/api/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::size_t nl = in.find('\n');
    const std::string_view content_type = in.substr(0, nl);
    const std::string_view body = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    fg::Result<std::string> boundary = fg::api::MultipartBoundary(content_type);
    if (!boundary.ok()) return 0;
    fg::Result<std::vector<fg::api::MultipartPart>> parts = fg::api::ParseMultipart(body, *boundary);
    if (parts.ok()) {
        std::size_t total = 0;
        for (const auto& p : *parts) total += p.body.size();
        if (total > body.size()) __builtin_trap();  // parts are slices of the body
    }
    return 0;
}
