// SPDX-License-Identifier: Apache-2.0
#include "fg/infer/backend.h"

#include "onednn/backend.h"
#include "opencv_backend.h"

namespace fg::infer {

std::vector<std::string> AvailableBackends() { return {"opencv", "onednn", "auto"}; }

Result<std::shared_ptr<Backend>> MakeBackend(const BackendConfig& config) {
    if (config.name == "opencv") return detail::MakeOpenCvBackend(config);
    if (config.name == "onednn") return onednn::MakeOneDnnBackend(config);
    // "auto": oneDNN for every graph it can lower, OpenCV DNN for the rest (logged per model).
    if (config.name == "auto") {
        return onednn::MakeAutoBackend(config, detail::MakeOpenCvBackend(config));
    }
    std::string names;
    for (const auto& n : AvailableBackends()) names += (names.empty() ? "" : ", ") + n;
    return NotFound("unknown inference backend '" + config.name + "' (available: " + names + ")");
}

}   // namespace fg::infer
