// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace fg::infer {

/// A non-owning view of a dense float32 tensor in row-major (NCHW for images) layout.
struct TensorView {
    std::string name;               ///< graph input/output name (may be empty for inputs: by position)
    std::vector<std::int64_t> shape;
    const float* data = nullptr;

    std::int64_t numel() const {
        return std::accumulate(shape.begin(), shape.end(), std::int64_t{1},
                               [](std::int64_t a, std::int64_t b) { return a * b; });
    }
};

/// An owning float32 tensor.
struct Tensor {
    std::vector<std::int64_t> shape;
    std::vector<float> data;

    TensorView View(std::string name = {}) const { return {std::move(name), shape, data.data()}; }
};

}  // namespace fg::infer
