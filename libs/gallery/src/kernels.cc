// SPDX-License-Identifier: Apache-2.0
#include "kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace fg::gallery::kernels {

namespace {

enum class Isa { kPortable, kAvx2, kAvx512Vnni };

Isa Detect() {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        return Isa::kAvx512Vnni;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
    return Isa::kPortable;
}

const Isa kIsa = Detect();

float DotPortable(const float* a, const float* b, size_t d) {
    // Four partial sums: the compiler vectorises this at -O2 -ftree-vectorize and the result
    // does not hang on one add chain.
    float s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int j = 0; j < 4; ++j) s[j] += a[i + j] * b[i + j];
    for (; i < d; ++i) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= d; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < d; ++i) r += a[i] * b[i];
    return r;
}

__attribute__((target("avx512f"))) float DotAvx512(const float* a, const float* b, size_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= d; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    // By halves through memory: GCC 12's 512-bit reduce and extract intrinsics read an
    // uninitialised register (-Wuninitialized).
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, _mm512_add_ps(s0, s1));
    const __m256 h8 = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < d; ++i) r += a[i] * b[i];
    return r;
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void ScoreBlockVnni(
    const std::uint8_t* block, int groups, const std::int8_t* q, std::int32_t* out) {
    const __m512i nib = _mm512_set1_epi8(0x0F);
    __m512i acc = _mm512_setzero_si512();
    for (int g = 0; g < groups; ++g) {
        const __m512i x = _mm512_loadu_si512(block + g * kGroupBytes);
        std::int32_t lo4, hi4;
        std::memcpy(&lo4, q + 8 * g, 4);
        std::memcpy(&hi4, q + 8 * g + 4, 4);
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(x, nib), _mm512_set1_epi32(lo4));
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, 4), nib),
                                  _mm512_set1_epi32(hi4));
    }
    _mm512_storeu_si512(out, acc);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void ScanVnni(
    const std::uint8_t* blocks, std::int64_t nblocks, int groups, const std::int8_t* q,
    std::int64_t first_row, std::int64_t limit, TopInts& top) {
    const __m512i nib = _mm512_set1_epi8(0x0F);
    // Query weights as broadcast registers, hoisted out of the block loop (groups <= 64).
    __m512i wl[64], wh[64];
    for (int g = 0; g < groups; ++g) {
        std::int32_t lo4, hi4;
        std::memcpy(&lo4, q + 8 * g, 4);
        std::memcpy(&hi4, q + 8 * g + 4, 4);
        wl[g] = _mm512_set1_epi32(lo4);
        wh[g] = _mm512_set1_epi32(hi4);
    }
    alignas(64) std::int32_t s[kBlock];
    __m512i floor = _mm512_set1_epi32(top.Floor());
    for (std::int64_t b = 0; b < nblocks; ++b) {
        const std::uint8_t* p = blocks + b * std::int64_t(groups) * kGroupBytes;
        if (b + 4 < nblocks)
            _mm_prefetch(reinterpret_cast<const char*>(p + 4 * groups * kGroupBytes), _MM_HINT_T0);
        __m512i acc = _mm512_setzero_si512();
        for (int g = 0; g < groups; ++g) {
            const __m512i x = _mm512_loadu_si512(p + g * kGroupBytes);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(x, nib), wl[g]);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, 4), nib), wh[g]);
        }
        __mmask16 m = _mm512_cmpgt_epi32_mask(acc, floor);
        if (!m) continue;
        _mm512_store_si512(s, acc);
        const std::int64_t row0 = first_row + b * kBlock;
        while (m) {
            const int lane = __builtin_ctz(m);
            m &= m - 1;
            if (row0 + lane < limit && s[lane] > top.Floor()) top.Push(s[lane], row0 + lane);
        }
        floor = _mm512_set1_epi32(top.Floor());
    }
}

// Eight templates per 32-byte half of a run: u8 x s8 pairs into int16 (at most
// 2 * 15 * 127, no saturation), then pairs of int16 into int32.
__attribute__((target("avx2,fma"))) inline __m256i HalfAvx2(const std::uint8_t* p, int groups,
                                                            const std::int8_t* q) {
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < groups; ++g) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + g * kGroupBytes));
        std::int32_t lo4, hi4;
        std::memcpy(&lo4, q + 8 * g, 4);
        std::memcpy(&hi4, q + 8 * g + 4, 4);
        const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(x, nib), _mm256_set1_epi32(lo4));
        const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, 4), nib),
                                                _mm256_set1_epi32(hi4));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_add_epi16(lo, hi), ones));
    }
    return acc;
}

__attribute__((target("avx2,fma"))) void ScoreBlockAvx2(const std::uint8_t* block, int groups,
                                                        const std::int8_t* q, std::int32_t* out) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), HalfAvx2(block, groups, q));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), HalfAvx2(block + 32, groups, q));
}
#endif

void ScanPortable(const std::uint8_t* blocks, std::int64_t nblocks, int groups,
                  const std::int8_t* q, std::int64_t first_row, std::int64_t limit, TopInts& top,
                  void (*score)(const std::uint8_t*, int, const std::int8_t*, std::int32_t*)) {
    std::int32_t s[kBlock];
    for (std::int64_t b = 0; b < nblocks; ++b) {
        score(blocks + b * std::int64_t(groups) * kGroupBytes, groups, q, s);
        const std::int64_t row0 = first_row + b * kBlock;
        for (int lane = 0; lane < kBlock; ++lane) {
            if (row0 + lane < limit && s[lane] > top.Floor()) top.Push(s[lane], row0 + lane);
        }
    }
}

}  // namespace

std::string_view Level() {
    switch (kIsa) {
        case Isa::kAvx512Vnni:
            return "avx512vnni";
        case Isa::kAvx2:
            return "avx2";
        case Isa::kPortable:
            break;
    }
    return "portable";
}

float Dot(const float* a, const float* b, size_t d) {
#if defined(__x86_64__)
    if (kIsa == Isa::kAvx512Vnni) return DotAvx512(a, b, d);
    if (kIsa == Isa::kAvx2) return DotAvx2(a, b, d);
#endif
    return DotPortable(a, b, d);
}

std::vector<std::pair<float, std::int64_t>> ExactTopK(const float* rows, std::int64_t n, size_t d,
                                                      const float* q, int k) {
    TopK<float> top(k);
    for (std::int64_t i = 0; i < n; ++i) {
        if (i + 8 < n) __builtin_prefetch(rows + (i + 8) * std::int64_t(d));
        top.Push(Dot(q, rows + i * std::int64_t(d), d), i);
    }
    std::vector<std::pair<float, std::int64_t>>& heap = top.heap;
    std::sort(heap.begin(), heap.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    return std::move(heap);
}

void PutCodes(std::uint8_t* block, int groups, int lane, const std::uint8_t* codes) {
    for (int g = 0; g < groups; ++g) {
        std::uint8_t* run = block + g * kGroupBytes + 4 * lane;
        for (int j = 0; j < 4; ++j)
            run[j] = std::uint8_t((codes[8 * g + j] & 0x0F) | ((codes[8 * g + 4 + j] & 0x0F) << 4));
    }
}

void GetCodes(const std::uint8_t* block, int groups, int lane, std::uint8_t* codes) {
    for (int g = 0; g < groups; ++g) {
        const std::uint8_t* run = block + g * kGroupBytes + 4 * lane;
        for (int j = 0; j < 4; ++j) {
            codes[8 * g + j] = run[j] & 0x0F;
            codes[8 * g + 4 + j] = run[j] >> 4;
        }
    }
}

void ScoreBlockPortable(const std::uint8_t* block, int groups, const std::int8_t* q,
                        std::int32_t* out) {
    std::uint8_t codes[8 * 64];
    for (int lane = 0; lane < kBlock; ++lane) {
        GetCodes(block, groups, lane, codes);
        std::int32_t s = 0;
        for (int k = 0; k < 8 * groups; ++k) s += std::int32_t(codes[k]) * q[k];
        out[lane] = s;
    }
}

void ScoreBlock(const std::uint8_t* block, int groups, const std::int8_t* q, std::int32_t* out) {
#if defined(__x86_64__)
    if (kIsa == Isa::kAvx512Vnni) return ScoreBlockVnni(block, groups, q, out);
    if (kIsa == Isa::kAvx2) return ScoreBlockAvx2(block, groups, q, out);
#endif
    ScoreBlockPortable(block, groups, q, out);
}

void ScanInt4(const std::uint8_t* blocks, std::int64_t nblocks, int groups, const std::int8_t* q,
              std::int64_t first_row, std::int64_t limit, TopInts& top) {
#if defined(__x86_64__)
    if (kIsa == Isa::kAvx512Vnni)
        return ScanVnni(blocks, nblocks, groups, q, first_row, limit, top);
    if (kIsa == Isa::kAvx2)
        return ScanPortable(blocks, nblocks, groups, q, first_row, limit, top, ScoreBlockAvx2);
#endif
    ScanPortable(blocks, nblocks, groups, q, first_row, limit, top, ScoreBlockPortable);
}

}  // namespace fg::gallery::kernels
