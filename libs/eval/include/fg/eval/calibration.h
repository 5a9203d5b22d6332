// SPDX-License-Identifier: Apache-2.0
// Threshold calibration from labelled scores: which threshold gives a target false-accept
// rate, the true-accept rate expected there, and how false accepts grow with gallery size.
// Pure score math (no images, models or gallery): `facegate gallery calibrate` and
// `facegate eval openset` feed it the scores of every pair of a labelled set.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "fg/base/status.h"

namespace fg::eval {

struct OperatingPoint {
    double target_far = 0;
    float threshold = 0;  ///< smallest threshold whose measured FAR <= target
    double far = 0;       ///< measured 1:1 false-accept rate at the threshold
    double tar = 0;       ///< measured 1:1 true-accept rate at the threshold
    /// False when there are too few impostor pairs to measure this FAR (fewer than 1/target):
    /// the threshold is then only an upper-bound guess (the highest impostor score).
    bool resolvable = false;
};

struct GallerySizeRisk {
    std::int64_t gallery_size = 0;
    /// Probability that a stranger is accepted as *someone* in a gallery of this many
    /// subjects, 1 - (1 - FAR)^N (assumes independent impostor scores).
    double open_set_far = 0;
};

struct CalibrationReport {
    std::int64_t genuine_pairs = 0;
    std::int64_t impostor_pairs = 0;
    std::vector<OperatingPoint> points;
    /// For each point, the growth of the open-set false-accept rate with gallery size.
    std::vector<std::vector<GallerySizeRisk>> growth;
};

/// `genuine`: scores of same-person pairs; `impostor`: different-person pairs. Accepting means
/// score >= threshold, as the gallery decides. Errors: InvalidArgument when a class is empty
/// or a score is not finite.
Result<CalibrationReport> Calibrate(std::vector<float> genuine, std::vector<float> impostor,
                                    const std::vector<double>& target_fars = {1e-2, 1e-3, 1e-4,
                                                                              1e-5},
                                    const std::vector<std::int64_t>& gallery_sizes = {
                                        10, 100, 1000, 10000, 100000, 1000000});

/// The point calibrated for `target_far` (matched to 1e-6 relative), or nullptr.
const OperatingPoint* FindPoint(const CalibrationReport& report, double target_far);

/// Scores of every unordered pair of a labelled set, split by label.
struct PairScores {
    std::vector<float> genuine;   ///< pairs with equal labels
    std::vector<float> impostor;  ///< pairs with different labels
};
/// Scores every pair i < j of `vectors` by their dot product (the cosine of unit embeddings,
/// fg::Dot), genuine when labels[i] == labels[j]. `labels` has one entry per vector; vectors of
/// different lengths are an InvalidArgument. O(n^2 d): 3 000 photos are 4.5 M pairs.
Result<PairScores> ScoreAllPairs(std::span<const std::vector<float>> vectors,
                                 std::span<const int> labels);

}  // namespace fg::eval
