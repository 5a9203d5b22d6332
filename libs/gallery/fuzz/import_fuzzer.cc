// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for gallery import parsing (fg/gallery/export_format.h): every line of the
// input through the JSON Lines record parser, and the whole input as a version-1 document. No
// database: the parsers are pure. Invariant checked beyond "no crash": a record that parses
// formats to a line that parses again. Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fg/gallery/export_format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    for (size_t at = 0; at <= bytes.size();) {
        size_t end = bytes.find('\n', at);
        if (end == std::string_view::npos) end = bytes.size();
        auto record = fg::gallery::ParseExportLine(bytes.substr(at, end - at));
        at = end + 1;
        if (!record.ok()) continue;
        auto line = fg::gallery::FormatExportLine(*record);
        if (!line.ok()) continue;
        if (line->empty() || line->back() != '\n') __builtin_trap();  // one line, newline-ended
        line->pop_back();
        if (!fg::gallery::ParseExportLine(*line).ok()) __builtin_trap();
    }
    const nlohmann::json doc = nlohmann::json::parse(bytes, nullptr, false);
    if (!doc.is_discarded()) (void)fg::gallery::ParseExportDocument(doc);
    return 0;
}
