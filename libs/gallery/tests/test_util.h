// SPDX-License-Identifier: Apache-2.0
// Deterministic embeddings and gallery helpers for the gallery tests (no models needed).
#pragma once

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fg/core/embedding.h"
#include "fg/gallery/crypto.h"
#include "fg/gallery/gallery.h"

namespace fg::gallery::testing {

constexpr char kTestKeyHex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kModel[] = "test-model@1";

inline std::vector<float> Normalise(std::vector<float> v) {
    fg::L2Normalize(v);
    return v;
}

/// A unit vector determined by `seed`: the "identity" of a synthetic person.
inline std::vector<float> RandomUnit(std::uint32_t seed, int dim = 64) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> v(static_cast<size_t>(dim));
    for (float& x : v) x = g(rng);
    return Normalise(std::move(v));
}

/// Another photo of the person `identity`: cosine to it is about 1 / sqrt(1 + noise^2).
inline std::vector<float> Sample(std::uint32_t identity, std::uint32_t shot, float noise = 0.5f,
                                 int dim = 64) {
    std::vector<float> base = RandomUnit(identity, dim);
    std::vector<float> n = RandomUnit(1000003u * shot + identity + 77, dim);
    for (size_t i = 0; i < base.size(); ++i) base[i] += noise * n[i];
    return Normalise(std::move(base));
}

inline std::shared_ptr<KeyRing> TestKeys(const char* hex = kTestKeyHex) {
    return std::make_shared<KeyRing>(*ParseKey(hex));
}

inline Embedding Probe(std::vector<float> v, const std::string& model = kModel) {
    return Embedding{model, std::move(v)};
}

}  // namespace fg::gallery::testing
