// SPDX-License-Identifier: Apache-2.0
// The oneDNN backend; created through MakeBackend({.name = "onednn"}).
#pragma once

#include <memory>

#include "fg/infer/backend.h"

namespace fg::infer::onednn {

/// config.threads > 0 caps the OpenMP threads each Run uses (set on the calling thread, so
/// workers with different backends do not interfere).
std::shared_ptr<Backend> MakeOneDnnBackend(const BackendConfig& config);

/// "auto": loads with oneDNN when the whole graph lowers, else logs one line and falls back to
/// `fallback` (the OpenCV backend) for that model.
std::shared_ptr<Backend> MakeAutoBackend(const BackendConfig& config,
                                         std::shared_ptr<Backend> fallback);

}   // namespace fg::infer::onednn
