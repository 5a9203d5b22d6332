// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for fg::audit::ParseTime: the `since`/`until` of GET /v1/audit and of
// `facegate audit` (RFC 3339, unix seconds, spans like 15m), untrusted since the API takes them.
// A parsed time is formatted back (FormatTime). Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fg/audit/audit_log.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto t = fg::audit::ParseTime(text, 1796442289000);
    if (t.ok()) (void)fg::audit::FormatTime(*t);
    return 0;
}
