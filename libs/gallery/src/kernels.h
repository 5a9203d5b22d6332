// SPDX-License-Identifier: Apache-2.0
// Search kernels of the gallery index, chosen once at run time for the CPU (AVX-512 VNNI,
// AVX2+FMA, or portable C++). Debian's FAISS is built for baseline x86-64 and computes inner
// products one float at a time (about 0.45 us per 512-d template), so the hot loops of the
// exact and the compressed scan live here.
//
// Thread-safety: stateless functions; safe from any thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
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
template <typename Score>
struct TopK {
    explicit TopK(int capacity) : capacity(capacity) { heap.reserve(size_t(std::max(capacity, 0))); }
    int capacity;
    std::vector<std::pair<Score, std::int64_t>> heap;  // min-heap on score
    /// Scores must beat this to enter (the lowest Score until full).
    Score Floor() const {
        return int(heap.size()) < capacity ? std::numeric_limits<Score>::lowest()
                                           : heap.front().first;
    }
    void Push(Score score, std::int64_t row) {
        if (capacity <= 0) return;
        auto worse = [](const auto& a, const auto& b) { return a.first > b.first; };
        if (int(heap.size()) < capacity) {
            heap.emplace_back(score, row);
            std::push_heap(heap.begin(), heap.end(), worse);
        } else if (score > heap.front().first) {
            std::pop_heap(heap.begin(), heap.end(), worse);
            heap.back() = {score, row};
            std::push_heap(heap.begin(), heap.end(), worse);
        }
    }
};
using TopInts = TopK<std::int32_t>;

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
