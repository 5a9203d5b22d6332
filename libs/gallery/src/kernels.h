// SPDX-License-Identifier: Apache-2.0
// Search kernels of the gallery index, chosen once at run time for the CPU (AVX-512 VNNI,
// AVX2+FMA, or portable C++). Debian's FAISS is built for baseline x86-64 and computes inner
// products one float at a time (about 0.45 us per 512-d template), so the hot loops of the
// exact and the compressed scan live here.
//
// Thread-safety: stateless functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace fg::gallery::kernels {

/// "avx512vnni", "avx2" or "portable": the path the dispatching functions take.
std::string_view Level();

float Dot(const float* a, const float* b, size_t d);

/// Scores of templates [0, n) of a row-major n x d matrix against q, best k kept (score, row),
/// sorted best first.
std::vector<std::pair<float, std::int64_t>> ExactTopK(const float* rows, std::int64_t n, size_t d,
                                                      const float* q, int k);

// 4-bit codes in blocks of 16 templates. A block is `groups` runs of 64 bytes; run g holds
// dims 8g..8g+7 of the block's 16 templates: byte 4*t + j has dim 8g+j of template t in its
// low nibble and dim 8g+4+j in its high nibble. Scores are sum_k q[k] * code[k] (int32).
constexpr int kBlock = 16;
constexpr int kGroupBytes = 64;

/// Writes the codes of one template (`8 * groups` values in 0..15) into slot `lane` of a block.
void PutCodes(std::uint8_t* block, int groups, int lane, const std::uint8_t* codes);
/// Reads them back.
void GetCodes(const std::uint8_t* block, int groups, int lane, std::uint8_t* codes);

/// A bounded min-heap of the best `capacity` (score, row) pairs seen so far.
struct TopInts {
    explicit TopInts(int capacity) : capacity(capacity) { heap.reserve(size_t(capacity)); }
    int capacity;
    std::vector<std::pair<std::int32_t, std::int64_t>> heap;  // min-heap on score
    /// Scores must beat this to enter (INT32_MIN until full).
    std::int32_t Floor() const;
    void Push(std::int32_t score, std::int64_t row);
};

/// Scans `nblocks` blocks whose first template has row `first_row`, keeping the best scores of
/// rows below `limit` in `top`. `q` holds 8 * groups int8 weights.
void ScanInt4(const std::uint8_t* blocks, std::int64_t nblocks, int groups, const std::int8_t* q,
              std::int64_t first_row, std::int64_t limit, TopInts& top);

/// The portable path of ScanInt4's scoring, for tests of the SIMD paths: the 16 scores of one
/// block.
void ScoreBlockPortable(const std::uint8_t* block, int groups, const std::int8_t* q,
                        std::int32_t* out);
/// The dispatched path's 16 scores of one block.
void ScoreBlock(const std::uint8_t* block, int groups, const std::int8_t* q, std::int32_t* out);

}  // namespace fg::gallery::kernels
