// SPDX-License-Identifier: Apache-2.0
// Verification metrics: k-fold accuracy, TAR at FAR, ROC.
#pragma once

#include <span>
#include <vector>

#include "fg/base/status.h"

namespace fg::eval {

/// One scored pair: similarity (higher = more alike), ground truth and fold.
struct ScoredPair {
    float score = 0;
    bool same = false;
    int fold = 0;
};

struct RocPoint {
    double threshold = 0;
    double far = 0;          ///< false accept rate: impostor pairs with score >= threshold
    double tar = 0;          ///< true accept rate: genuine pairs with score >= threshold
};

struct TarAtFar {
    double far_target = 0;
    double tar = 0;
    double threshold = 0;
    double far_actual = 0;
};

struct VerificationReport {
    double accuracy = 0;             ///< mean over folds; threshold picked on the other folds
    double accuracy_std = 0;         ///< standard deviation over folds
    std::vector<double> fold_accuracy;
    double best_threshold = 0;       ///< threshold maximising accuracy on all pairs
    std::vector<TarAtFar> tar_at_far;   ///< for each requested FAR
    double auc = 0;
    int pairs = 0;
    int genuine = 0;
    int impostor = 0;
};

/// Threshold maximising accuracy on `pairs` (midpoint between adjacent distinct scores).
double BestThreshold(std::span<const ScoredPair> pairs);

/// Full ROC (one point per distinct score), sorted by decreasing threshold.
std::vector<RocPoint> ComputeRoc(std::span<const ScoredPair> pairs);

/// Highest TAR with FAR <= far_target (on all pairs).
TarAtFar ComputeTarAtFar(std::span<const ScoredPair> pairs, double far_target);

/// k-fold accuracy (folds taken from ScoredPair::fold), TAR@FAR for each of `far_targets`,
/// AUC. Errors: InvalidArgument when a fold or a class is empty.
Result<VerificationReport> EvaluateVerification(std::span<const ScoredPair> pairs,
                                               std::span<const double> far_targets);

}  // namespace fg::eval
