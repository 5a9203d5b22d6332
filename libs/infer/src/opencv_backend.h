// SPDX-License-Identifier: Apache-2.0
// The OpenCV 4.6 DNN backend; created through MakeBackend({.name = "opencv"}).
#pragma once

#include <memory>

#include "fg/infer/backend.h"

namespace fg::infer::detail {

/// config.threads > 0 calls cv::setNumThreads(threads): OpenCV's pool is process-wide, so the
/// last backend created wins.
std::shared_ptr<Backend> MakeOpenCvBackend(const BackendConfig& config);

}   // namespace fg::infer::detail
