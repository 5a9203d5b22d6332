// SPDX-License-Identifier: Apache-2.0
// Differential harness for the identify body's fast reader (probe_body.h): never a crash, and
// whatever it accepts nlohmann reads as the same document: an object with exactly "embedding"
// (and "model_id" when given), the same number of values, and the same floats as the general
// path's get<float>().
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "probe_body.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    fg::api::FastProbe fast;
    if (!fg::api::ParseProbeBodyFast(body, fast)) return 0;
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) std::abort();
    if (j.size() != (fast.model_id ? 2u : 1u)) std::abort();
    const auto e = j.find("embedding");
    if (e == j.end() || !e->is_array() || e->size() != fast.values.size()) std::abort();
    for (std::size_t i = 0; i < fast.values.size(); ++i) {
        const nlohmann::json& v = (*e)[i];
        if (!v.is_number()) std::abort();
        const float want = v.get<float>();
        // Both sides are finite or the same infinity; -0 and 0 compare equal, as they search.
        if (!(want == fast.values[i])) std::abort();
    }
    if (fast.model_id) {
        const auto m = j.find("model_id");
        if (m == j.end() || !m->is_string() || m->get<std::string>() != *fast.model_id) std::abort();
    }
    return 0;
}
