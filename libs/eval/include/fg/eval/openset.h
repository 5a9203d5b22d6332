// SPDX-License-Identifier: Apache-2.0
// Open-set identification rates (ISO/IEC 19795-1 terms: DIR, FPIR) from the top two answers of
// a gallery search per probe. Pure score math: the caller enrolls, searches and maps subjects to
// integer identities; `facegate eval openset` does that on CFP.
#pragma once

#include <cstdint>
#include <span>

namespace fg::eval {

/// One probe and the gallery's two best candidates for it.
struct OpenSetProbe {
    int truth = -1;          ///< enrolled identity of a genuine (mated) probe; -1 for a stranger
    bool has_face = false;   ///< false: no face was found, so nothing was searched (a miss)
    int top1 = -1;           ///< identity of the best candidate; -1 when there is none
    float s1 = -2;           ///< best candidate's score (-2: none)
    float s2 = -2;           ///< runner-up's score (-2: none)
};

/// Rates at one operating point.
struct OpenSetRates {
    float threshold = 0;
    float margin = 0;
    std::int64_t genuine_probes = 0;
    std::int64_t true_accepts = 0;        ///< genuine probes accepted as the right identity
    std::int64_t wrong_identities = 0;    ///< genuine probes accepted as someone else
    std::int64_t impostor_probes = 0;
    std::int64_t impostors_with_face = 0;
    std::int64_t false_accepts = 0;       ///< strangers (with a face) accepted as anyone
    double tar = 0;                  ///< DIR: true_accepts / genuine_probes (no face = miss)
    double wrong_identity_rate = 0;  ///< wrong_identities / genuine_probes
    double far = 0;                  ///< FPIR: false_accepts / impostors_with_face
};

/// The gallery's decision rule: a probe is known when s1 >= threshold and s1 - s2 >= margin
/// (a probe without a face never is). Rates are 0 when their denominator is 0.
OpenSetRates EvaluateOpenSet(std::span<const OpenSetProbe> probes, float threshold, float margin);

}  // namespace fg::eval
