// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for `facegate run` config files (JSON): nlohmann's parser, then
// fg::pipeline::ParseRunConfig with and without the streams requirement. Nothing is opened:
// relative paths resolve against a folder that does not exist. Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fg/pipeline/run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false,
                                                   /*ignore_comments=*/true);
    if (j.is_discarded()) return 0;
    auto with = fg::pipeline::ParseRunConfig(j, "/fuzz", /*require_streams=*/true);
    auto without = fg::pipeline::ParseRunConfig(j, "/fuzz", /*require_streams=*/false);
    // Requiring streams can only refuse more.
    if (with.ok() && !without.ok()) __builtin_trap();
    if (with.ok() && with->pipeline.streams.empty()) __builtin_trap();
    return 0;
}
