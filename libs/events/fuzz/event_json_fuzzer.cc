// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for event JSON from outside (a consumer parsing events, a bus message):
// nlohmann's parser, then fg::events::FromJson and the schema check. Build and run with
// scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fg/events/event.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    (void)fg::events::ValidateEventJson(j);
    auto e = fg::events::FromJson(j);
    if (e.ok()) {
        // What parses must serialise and parse back to the same event.
        auto again = fg::events::FromJson(fg::events::ToJson(*e));
        if (!again.ok() || again->event_id != e->event_id || again->type() != e->type()) __builtin_trap();
    }
    return 0;
}
