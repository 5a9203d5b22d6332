// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/openset.h"

namespace fg::eval {

OpenSetRates EvaluateOpenSet(std::span<const OpenSetProbe> probes, float threshold, float margin) {
    OpenSetRates r;
    r.threshold = threshold;
    r.margin = margin;
    for (const OpenSetProbe& p : probes) {
        const bool known = p.has_face && p.s1 >= threshold && p.s1 - p.s2 >= margin;
        if (p.truth >= 0) {
            ++r.genuine_probes;
            if (known && p.top1 == p.truth) ++r.true_accepts;
            if (known && p.top1 != p.truth) ++r.wrong_identities;
        } else {
            ++r.impostor_probes;
            r.impostors_with_face += p.has_face;
            r.false_accepts += known;
        }
    }
    auto rate = [](std::int64_t a, std::int64_t b) { return b ? double(a) / double(b) : 0.0; };
    r.tar = rate(r.true_accepts, r.genuine_probes);
    r.wrong_identity_rate = rate(r.wrong_identities, r.genuine_probes);
    r.far = rate(r.false_accepts, r.impostors_with_face);
    return r;
}

}  // namespace fg::eval
