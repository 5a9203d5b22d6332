// SPDX-License-Identifier: Apache-2.0
#include "vec_kernels.h"

#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define FG_HISTORY_X86 1
#endif

namespace fg::history::kernels {
namespace {

float DotF32Portable(const float* a, const float* b, std::size_t d) {
    // Four partial sums let the compiler pipeline without -ffast-math.
    float s[4] = {0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int j = 0; j < 4; ++j) s[j] += a[i + j] * b[i + j];
    float r = s[0] + s[1] + s[2] + s[3];
    for (; i < d; ++i) r += a[i] * b[i];
    return r;
}

float DotI8Portable(const float* q, const std::int8_t* c, std::size_t d) {
    float s[4] = {0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int j = 0; j < 4; ++j) s[j] += q[i + j] * float(c[i + j]);
    float r = s[0] + s[1] + s[2] + s[3];
    for (; i < d; ++i) r += q[i] * float(c[i]);
    return r;
}

float DotF16Portable(const float* q, const std::uint16_t* c, std::size_t d) {
    float r = 0;
    for (std::size_t i = 0; i < d; ++i) r += q[i] * HalfToFloat(c[i]);
    return r;
}

#ifdef FG_HISTORY_X86
__attribute__((target("avx2,fma"))) inline float HSum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) float DotF32Avx2(const float* a, const float* b,
                                                      std::size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float r = HSum(_mm256_add_ps(s0, s1));
    for (; i < d; ++i) r += a[i] * b[i];
    return r;
}

__attribute__((target("avx2,fma"))) float DotI8Avx2(const float* q, const std::int8_t* c,
                                                     std::size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lo, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), hi, s1);
    }
    float r = HSum(_mm256_add_ps(s0, s1));
    for (; i < d; ++i) r += q[i] * float(c[i]);
    return r;
}

__attribute__((target("avx2,fma,f16c"))) float DotF16Avx2(const float* q, const std::uint16_t* c,
                                                          std::size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i)));
        __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i + 8)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lo, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), hi, s1);
    }
    float r = HSum(_mm256_add_ps(s0, s1));
    for (; i < d; ++i) r += q[i] * HalfToFloat(c[i]);
    return r;
}

bool HasAvx2() {
    // clang-14 rejects __builtin_cpu_supports("f16c"): F16C comes from CPUID leaf 1 instead.
    static const bool has = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    }();
    return has;
}
#else
bool HasAvx2() { return false; }
#endif

}  // namespace

const char* Level() { return HasAvx2() ? "avx2" : "portable"; }

float DotF32(const float* a, const float* b, std::size_t d) {
#ifdef FG_HISTORY_X86
    if (HasAvx2()) return DotF32Avx2(a, b, d);
#endif
    return DotF32Portable(a, b, d);
}

float DotI8(const float* q, const std::int8_t* c, std::size_t d) {
#ifdef FG_HISTORY_X86
    if (HasAvx2()) return DotI8Avx2(q, c, d);
#endif
    return DotI8Portable(q, c, d);
}

float DotF16(const float* q, const std::uint16_t* c, std::size_t d) {
#ifdef FG_HISTORY_X86
    if (HasAvx2()) return DotF16Avx2(q, c, d);
#endif
    return DotF16Portable(q, c, d);
}

std::uint16_t FloatToHalf(float f) {
    std::uint32_t x;
    std::memcpy(&x, &f, 4);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    std::uint32_t mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u) return std::uint16_t(sign | (mag > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (mag >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // overflows to infinity
    if (mag < 0x38800000u) {                                        // subnormal or zero
        if (mag < 0x33000000u) return std::uint16_t(sign);
        const std::uint32_t e = mag >> 23, m = (mag & 0x7fffffu) | 0x800000u;
        const std::uint32_t shift = 126 - e;  // 14..24
        std::uint32_t h = m >> shift;
        const std::uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) ++h;
        return std::uint16_t(sign | h);
    }
    std::uint32_t h = ((mag - 0x38000000u) >> 13);
    const std::uint32_t rem = mag & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
    return std::uint16_t(sign | h);
}

float HalfToFloat(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    std::uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) {
            x = sign;
        } else {  // subnormal: normalise
            e = 113;
            while (!(m & 0x400u)) { m <<= 1; --e; }
            x = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

}  // namespace fg::history::kernels
