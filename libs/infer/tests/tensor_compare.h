// SPDX-License-Identifier: Apache-2.0
// The differential tests' measure of agreement between two backends' outputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fg/infer/backend.h"

namespace fg::infer {

/// max |a - b| / max |b|, the figure issue 6 fixes at 1e-4.
inline double RelativeError(const TensorView& a, const TensorView& b) {
    double diff = 0, scale = 0;
    for (std::int64_t i = 0; i < b.numel(); ++i) {
        diff = std::max(diff, std::abs(double(a.data[i]) - double(b.data[i])));
        scale = std::max(scale, std::abs(double(b.data[i])));
    }
    return diff / std::max(scale, 1e-12);
}

}  // namespace fg::infer
