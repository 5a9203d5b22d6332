// SPDX-License-Identifier: Apache-2.0
// The identify-by-embedding body {"embedding": [numbers], "model_id": "..."} read without a JSON
// document: through nlohmann's DOM (or its SAX interface, which still converts with strtod) the
// 512 numbers were ~15 % of serve's CPU at 100k templates (BENCHMARKS.md "Service, session 3").
// nlohmann stays the parser of record: this reads a strict subset of JSON (no escapes, ASCII
// strings, the two keys once each, at most 4096 numbers, integers of at most 15 digits) and
// returns false for anything else, which then takes the general parser. Numbers go through
// std::from_chars (correctly rounded, as strtod). fg_fuzz_probe_body checks it differentially
// against nlohmann: whatever it accepts, nlohmann reads as the same object and the same floats.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fg::api {

struct FastProbe {
    std::vector<float> values;
    std::optional<std::string> model_id;
};

/// True and `out` filled when `body` is in the subset above (values non-empty); false otherwise
/// (`out` is then unspecified). Pure; thread-safe.
bool ParseProbeBodyFast(std::string_view body, FastProbe& out);

}  // namespace fg::api
