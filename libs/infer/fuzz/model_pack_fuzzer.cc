// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for model pack manifests (a user's --pack FILE is untrusted JSON): nlohmann's
// parser, then fg::infer::ParsePack. Files are never opened or hashed here (VerifyPack reads the
// named paths). Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fg/infer/model_pack.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false,
                                                   /*ignore_comments=*/true);
    if (j.is_discarded()) return 0;
    auto pack = fg::infer::ParsePack(j, "/fuzz/pack.json");
    if (!pack.ok()) return 0;
    // What parses is usable: every model has an id, a resolved absolute path and a role lookup.
    for (const auto& m : pack->models) {
        if (m.id.empty() || !m.path.is_absolute()) __builtin_trap();
        if (pack->FindById(m.id) == nullptr || pack->Find(m.role) == nullptr) __builtin_trap();
        (void)m.ToSpec();
        (void)fg::infer::ModelRoleName(m.role);
    }
    return 0;
}
