// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for `facegate serve` config files (JSON with comments): nlohmann's parser,
// then fg::api::ParseServeConfig (which also parses the embedded run config) with an empty
// environment, and the summary `config check --print` shows. Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fg/api/serve_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false,
                                             /*ignore_comments=*/true);
    if (j.is_discarded()) return 0;
    auto config = fg::api::ParseServeConfig(std::move(j), "/fuzz",
                                            [](const char*) -> const char* { return nullptr; });
    if (config.ok()) (void)fg::api::ServeConfigSummary(*config).dump();
    return 0;
}
