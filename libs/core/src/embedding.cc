// SPDX-License-Identifier: Apache-2.0
#include "fg/core/embedding.h"

#include <cmath>
#include <limits>

namespace fg {

double L2Normalize(std::span<float> v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    const double norm = std::sqrt(s);
    if (!(norm > 0)) return 0.0;
    const double inv = 1.0 / norm;
    for (float& x : v) x = static_cast<float>(x * inv);
    return norm;
}

bool AllFinite(std::span<const float> v) {
    for (float x : v) {
        if (!std::isfinite(x)) return false;
    }
    return true;
}

float Dot(std::span<const float> a, std::span<const float> b) {
    const std::size_t n = a.size() < b.size() ? a.size() : b.size();
    double dot = 0;
    for (std::size_t i = 0; i < n; ++i) dot += double(a[i]) * b[i];
    return static_cast<float>(dot);
}

float CosineSimilarity(const Embedding& a, const Embedding& b) {
    if (a.model_id != b.model_id || a.values.size() != b.values.size() || a.values.empty()) {
        return std::numeric_limits<float>::quiet_NaN();
    }
    return Dot(a.values, b.values);
}

}  // namespace fg
