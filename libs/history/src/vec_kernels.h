// SPDX-License-Identifier: Apache-2.0
// Dot-product kernels of the strangers clusterer and the sighting index: float, int8 and half
// rows against a float query, dispatched once at run time to AVX2+FMA(+F16C) or portable C++.
// (libs/gallery's kernels are private to it and score 4-bit codes; these score full rows.)
// Thread-safety: stateless functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fg::history::kernels {

/// "avx2" or "portable".
const char* Level();

float DotF32(const float* a, const float* b, std::size_t d);
/// sum q[i] * code[i] (the caller applies the row's scale).
float DotI8(const float* q, const std::int8_t* code, std::size_t d);
float DotF16(const float* q, const std::uint16_t* code, std::size_t d);

/// IEEE half conversions (round to nearest even; no F16C needed).
std::uint16_t FloatToHalf(float f);
float HalfToFloat(std::uint16_t h);

}  // namespace fg::history::kernels
