// SPDX-License-Identifier: Apache-2.0
#include "fg/infer/backend.h"

#include "opencv_backend.h"

namespace fg::infer {

std::vector<std::string> AvailableBackends() { return {"opencv"}; }

Result<std::shared_ptr<Backend>> MakeBackend(const BackendConfig& config) {
    if (config.name == "opencv") return detail::MakeOpenCvBackend(config);
    std::string names;
    for (const auto& n : AvailableBackends()) names += (names.empty() ? "" : ", ") + n;
    return NotFound("unknown inference backend '" + config.name + "' (available: " + names + ")");
}

}   // namespace fg::infer
