// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace fg::eval {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<ScoredPair> Pairs(const std::vector<float>& genuine, const std::vector<float>& impostor,
                              int fold = 0) {
    std::vector<ScoredPair> pairs;
    for (float s : genuine) pairs.push_back({s, true, fold});
    for (float s : impostor) pairs.push_back({s, false, fold});
    return pairs;
}

void Append(std::vector<ScoredPair>& to, const std::vector<ScoredPair>& from) {
    to.insert(to.end(), from.begin(), from.end());
}

// Brute force references, O(n^2), with the NaN -> -infinity rule spelled out separately.
double Score(const ScoredPair& p) { return std::isnan(p.score) ? -INFINITY : p.score; }

double AccuracyAt(const std::vector<ScoredPair>& pairs, double t) {
    int correct = 0;
    for (const auto& p : pairs) correct += (Score(p) >= t) == p.same;
    return static_cast<double>(correct) / static_cast<double>(pairs.size());
}

double BruteBestAccuracy(const std::vector<ScoredPair>& pairs) {
    double best = AccuracyAt(pairs, INFINITY);
    for (const auto& p : pairs) best = std::max(best, AccuracyAt(pairs, Score(p)));
    return best;
}

std::vector<ScoredPair> RandomPairs(std::mt19937& rng, int n, int folds, int levels) {
    // Quantised scores so that ties, within and across classes, are frequent.
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::vector<ScoredPair> pairs;
    for (int i = 0; i < n; ++i) {
        const bool same = (rng() % 2) == 0;
        const float raw = noise(rng) + (same ? 1.0f : -1.0f);
        pairs.push_back({std::round(raw * levels) / levels, same, i % folds});
    }
    return pairs;
}

// ---- BestThreshold ----

TEST(BestThresholdTest, SeparableTakesMiddleOfGap) {
    auto pairs = Pairs({0.75f, 1.0f}, {0.25f, 0.0f});
    EXPECT_DOUBLE_EQ(BestThreshold(pairs), 0.5);
}

TEST(BestThresholdTest, TiedBestCutsTakeMiddleOfWholeInterval) {
    // Groups 0.875 (G), 0.5 (G+I), 0.125 (I): accepting 0.875 or down to 0.5 both give 3/4, so
    // the best thresholds are (0.125, 0.875] and the middle is 0.5.
    auto pairs = Pairs({0.875f, 0.5f}, {0.5f, 0.125f});
    EXPECT_DOUBLE_EQ(BestThreshold(pairs), 0.5);
    EXPECT_DOUBLE_EQ(AccuracyAt(pairs, 0.5), 0.75);
}

TEST(BestThresholdTest, SeparateBestRunsPreferHighestThreshold) {
    // 0.875 G, 0.625 I, 0.5 G, 0.25 I: 3/4 in (0.625, 0.875] and in (0.25, 0.5].
    auto pairs = Pairs({0.875f, 0.5f}, {0.625f, 0.25f});
    EXPECT_DOUBLE_EQ(BestThreshold(pairs), 0.75);
}

TEST(BestThresholdTest, InvertedRejectsEverything) {
    auto pairs = Pairs({0.125f, 0.25f}, {0.75f, 0.875f});
    const double t = BestThreshold(pairs);
    EXPECT_GT(t, 0.875);
    EXPECT_LT(t, 0.8751);
    EXPECT_DOUBLE_EQ(AccuracyAt(pairs, t), 0.5);
}

TEST(BestThresholdTest, SingleClass) {
    auto genuine_only = Pairs({0.5f, 0.25f}, {});
    EXPECT_DOUBLE_EQ(BestThreshold(genuine_only), 0.25);  // accept all: the lowest score
    auto impostor_only = Pairs({}, {0.5f, 0.25f});
    EXPECT_GT(BestThreshold(impostor_only), 0.5);         // reject all
    EXPECT_DOUBLE_EQ(BestThreshold({}), 0.0);
}

TEST(BestThresholdTest, AllTiedIsAnyThreshold) {
    auto pairs = Pairs({0.5f}, {0.5f});
    EXPECT_DOUBLE_EQ(AccuracyAt(pairs, BestThreshold(pairs)), 0.5);
}

TEST(BestThresholdTest, NaNIsLowestSimilarity) {
    // 0.75 G, 0.25 I, NaN G: best is accepting 0.75 only (2/3), tied with accepting all, but the
    // higher run wins; NaN must never end up in the threshold.
    auto pairs = Pairs({0.75f, kNaN}, {0.25f});
    EXPECT_DOUBLE_EQ(BestThreshold(pairs), 0.5);
    auto nan_impostor = Pairs({0.75f, 0.5f}, {kNaN, kNaN});
    EXPECT_DOUBLE_EQ(BestThreshold(nan_impostor), 0.5);  // unbounded below: lowest accepted score
    EXPECT_DOUBLE_EQ(AccuracyAt(nan_impostor, 0.5), 1.0);
}

TEST(BestThresholdTest, MatchesBruteForceOnRandomData) {
    std::mt19937 rng(7);
    for (int round = 0; round < 20; ++round) {
        auto pairs = RandomPairs(rng, 200, 1, 4);
        if (round % 5 == 0) pairs[round].score = kNaN;
        EXPECT_DOUBLE_EQ(AccuracyAt(pairs, BestThreshold(pairs)), BruteBestAccuracy(pairs))
            << "round " << round;
    }
}

// ---- ROC ----

TEST(RocTest, SmallExample) {
    auto pairs = Pairs({0.875f, 0.5f}, {0.5f, 0.125f});
    auto roc = ComputeRoc(pairs);
    ASSERT_EQ(roc.size(), 4u);
    EXPECT_GT(roc[0].threshold, 0.875);
    EXPECT_DOUBLE_EQ(roc[0].far, 0);
    EXPECT_DOUBLE_EQ(roc[0].tar, 0);
    EXPECT_DOUBLE_EQ(roc[1].threshold, 0.875);
    EXPECT_DOUBLE_EQ(roc[1].far, 0);
    EXPECT_DOUBLE_EQ(roc[1].tar, 0.5);
    EXPECT_DOUBLE_EQ(roc[2].threshold, 0.5);
    EXPECT_DOUBLE_EQ(roc[2].far, 0.5);
    EXPECT_DOUBLE_EQ(roc[2].tar, 1);
    EXPECT_DOUBLE_EQ(roc[3].threshold, 0.125);
    EXPECT_DOUBLE_EQ(roc[3].far, 1);
    EXPECT_DOUBLE_EQ(roc[3].tar, 1);
}

TEST(RocTest, MonotoneWithExtremesAndMatchesBruteForce) {
    std::mt19937 rng(11);
    auto pairs = RandomPairs(rng, 500, 1, 8);
    pairs[3].score = kNaN;
    auto roc = ComputeRoc(pairs);
    std::set<double> distinct;
    for (const auto& p : pairs) distinct.insert(Score(p));
    ASSERT_EQ(roc.size(), distinct.size() + 1);
    EXPECT_DOUBLE_EQ(roc.front().far, 0);
    EXPECT_DOUBLE_EQ(roc.front().tar, 0);
    EXPECT_DOUBLE_EQ(roc.back().far, 1);
    EXPECT_DOUBLE_EQ(roc.back().tar, 1);
    EXPECT_EQ(roc.back().threshold, -INFINITY);  // the NaN pair
    int genuine = 0;
    for (const auto& p : pairs) genuine += p.same;
    const int impostor = static_cast<int>(pairs.size()) - genuine;
    for (size_t i = 0; i < roc.size(); ++i) {
        if (i > 0) {
            EXPECT_LT(roc[i].threshold, roc[i - 1].threshold);
            EXPECT_GE(roc[i].far, roc[i - 1].far);
            EXPECT_GE(roc[i].tar, roc[i - 1].tar);
        }
        int tp = 0;
        int fp = 0;
        for (const auto& p : pairs) {
            if (Score(p) >= roc[i].threshold) (p.same ? tp : fp) += 1;
        }
        EXPECT_DOUBLE_EQ(roc[i].tar, static_cast<double>(tp) / genuine) << i;
        EXPECT_DOUBLE_EQ(roc[i].far, static_cast<double>(fp) / impostor) << i;
    }
}

TEST(RocTest, EmptyInputHasOnlyTheOrigin) {
    auto roc = ComputeRoc({});
    ASSERT_EQ(roc.size(), 1u);
    EXPECT_DOUBLE_EQ(roc[0].far, 0);
    EXPECT_DOUBLE_EQ(roc[0].tar, 0);
}

// ---- TAR@FAR ----

TEST(TarAtFarTest, Steps) {
    // Descending: 0.875 G, 0.75 I, 0.625 G, 0.5 I, 0.375 G, 0.25 I, 0.125 I.
    auto pairs = Pairs({0.875f, 0.625f, 0.375f}, {0.75f, 0.5f, 0.25f, 0.125f});
    auto r = ComputeTarAtFar(pairs, 0.1);  // below 1/4: no impostor may pass
    EXPECT_DOUBLE_EQ(r.far_target, 0.1);
    EXPECT_DOUBLE_EQ(r.tar, 1.0 / 3);
    EXPECT_DOUBLE_EQ(r.threshold, 0.875);
    EXPECT_GT(r.threshold, 0.75);  // above the highest impostor
    EXPECT_DOUBLE_EQ(r.far_actual, 0);

    r = ComputeTarAtFar(pairs, 0.25);
    EXPECT_DOUBLE_EQ(r.tar, 2.0 / 3);
    EXPECT_DOUBLE_EQ(r.threshold, 0.625);
    EXPECT_DOUBLE_EQ(r.far_actual, 0.25);

    r = ComputeTarAtFar(pairs, 0.6);
    EXPECT_DOUBLE_EQ(r.tar, 1);
    EXPECT_DOUBLE_EQ(r.threshold, 0.375);
    EXPECT_DOUBLE_EQ(r.far_actual, 0.5);

    r = ComputeTarAtFar(pairs, 1.0);
    EXPECT_DOUBLE_EQ(r.tar, 1);
    EXPECT_DOUBLE_EQ(r.threshold, 0.125);
    EXPECT_DOUBLE_EQ(r.far_actual, 1);
}

TEST(TarAtFarTest, TopImpostorForcesThresholdAboveEverything) {
    auto pairs = Pairs({0.5f, 0.25f}, {0.75f, 0.0f});
    auto r = ComputeTarAtFar(pairs, 0.0);
    EXPECT_DOUBLE_EQ(r.tar, 0);
    EXPECT_DOUBLE_EQ(r.far_actual, 0);
    EXPECT_GT(r.threshold, 0.75);
}

TEST(TarAtFarTest, ExactFarBoundaryIsAdmitted) {
    // 1000 impostors, FAR 1e-3 allows exactly one, despite 1e-3 * 1000 rounding.
    std::vector<float> impostor(1000, 0.0f);
    impostor[0] = 0.9f;
    auto pairs = Pairs({0.95f, 0.8f}, impostor);
    auto r = ComputeTarAtFar(pairs, 1e-3);
    EXPECT_DOUBLE_EQ(r.far_actual, 1e-3);
    EXPECT_DOUBLE_EQ(r.tar, 1);
    EXPECT_DOUBLE_EQ(r.threshold, 0.8f);
}

TEST(TarAtFarTest, SeparableGivesFullTarAtZeroFar) {
    auto pairs = Pairs({0.9f, 0.8f, 0.7f}, {0.3f, 0.2f});
    auto r = ComputeTarAtFar(pairs, 0.0);
    EXPECT_DOUBLE_EQ(r.tar, 1);
    EXPECT_DOUBLE_EQ(r.far_actual, 0);
    EXPECT_DOUBLE_EQ(r.threshold, 0.7f);
}

// ---- EvaluateVerification ----

TEST(EvaluateVerificationTest, PerfectlySeparable) {
    std::vector<ScoredPair> pairs;
    for (int k = 0; k < 10; ++k) Append(pairs, Pairs({0.75f, 0.875f}, {0.25f, 0.125f}, k));
    const std::vector<double> fars = {0.0, 1e-3, 0.1};
    auto r = EvaluateVerification(pairs, fars);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_DOUBLE_EQ(r->accuracy, 1);
    EXPECT_DOUBLE_EQ(r->accuracy_std, 0);
    ASSERT_EQ(r->fold_accuracy.size(), 10u);
    EXPECT_DOUBLE_EQ(r->best_threshold, 0.5);
    ASSERT_EQ(r->tar_at_far.size(), 3u);
    for (const auto& t : r->tar_at_far) EXPECT_DOUBLE_EQ(t.tar, 1);
    EXPECT_DOUBLE_EQ(r->tar_at_far[1].far_target, 1e-3);
    EXPECT_DOUBLE_EQ(r->auc, 1);
    EXPECT_EQ(r->pairs, 40);
    EXPECT_EQ(r->genuine, 20);
    EXPECT_EQ(r->impostor, 20);
}

TEST(EvaluateVerificationTest, FullyInverted) {
    std::vector<ScoredPair> pairs;
    for (int k = 0; k < 10; ++k) Append(pairs, Pairs({0.125f, 0.25f}, {0.75f, 0.875f}, k));
    const std::vector<double> fars = {0.1};
    auto r = EvaluateVerification(pairs, fars);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_DOUBLE_EQ(r->accuracy, 0.5);  // best the thresholds can do: reject everything
    EXPECT_DOUBLE_EQ(r->auc, 0);
    EXPECT_DOUBLE_EQ(r->tar_at_far[0].tar, 0);
}

TEST(EvaluateVerificationTest, HandComputedTenFold) {
    // Every fold: genuine 0.75, impostor 0.25; fold 3's genuine is 0.125 instead.
    // Held-out fold 3: the other folds separate at 0.5, so its genuine is rejected: 1/2.
    // Any other fold k: training sees G 0.75 x8, I 0.25 x9, G 0.125; accepting down to 0.75
    // is best (17/18), threshold 0.5, and fold k is fully correct.
    // Mean = (9 * 1 + 0.5) / 10 = 0.95; population std = sqrt((9 * 0.05^2 + 0.45^2) / 10) = 0.15.
    std::vector<ScoredPair> pairs;
    for (int k = 0; k < 10; ++k) Append(pairs, Pairs({k == 3 ? 0.125f : 0.75f}, {0.25f}, k));
    auto r = EvaluateVerification(pairs, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->fold_accuracy.size(), 10u);
    for (int k = 0; k < 10; ++k) EXPECT_DOUBLE_EQ(r->fold_accuracy[k], k == 3 ? 0.5 : 1.0) << k;
    EXPECT_NEAR(r->accuracy, 0.95, 1e-12);
    EXPECT_NEAR(r->accuracy_std, 0.15, 1e-12);
    EXPECT_DOUBLE_EQ(r->best_threshold, 0.5);
    EXPECT_TRUE(r->tar_at_far.empty());
    // ROC: (0,0) (0,.9) (1,.9) (1,1) -> AUC 0.9.
    EXPECT_NEAR(r->auc, 0.9, 1e-12);
}

TEST(EvaluateVerificationTest, ThresholdComesFromTheOtherFolds) {
    // Fold 0: G 0.875, I 0.625; fold 1: G 0.5, I 0.25. Each fold alone is separable, but the
    // threshold learnt on the other fold misclassifies one pair of it: 0.5 each.
    std::vector<ScoredPair> pairs = Pairs({0.875f}, {0.625f}, 0);
    Append(pairs, Pairs({0.5f}, {0.25f}, 1));
    auto r = EvaluateVerification(pairs, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_DOUBLE_EQ(r->fold_accuracy[0], 0.5);
    EXPECT_DOUBLE_EQ(r->fold_accuracy[1], 0.5);
    EXPECT_DOUBLE_EQ(r->accuracy, 0.5);
    EXPECT_DOUBLE_EQ(r->accuracy_std, 0);
    EXPECT_DOUBLE_EQ(r->best_threshold, 0.75);
}

TEST(EvaluateVerificationTest, SingleFoldUsesAllPairs) {
    auto pairs = Pairs({0.875f, 0.5f}, {0.5f, 0.125f});
    auto r = EvaluateVerification(pairs, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->fold_accuracy.size(), 1u);
    EXPECT_DOUBLE_EQ(r->accuracy, 0.75);
    EXPECT_DOUBLE_EQ(r->accuracy_std, 0);
}

TEST(EvaluateVerificationTest, NaNScoresAreRejections) {
    std::vector<ScoredPair> pairs;
    for (int k = 0; k < 10; ++k) Append(pairs, Pairs({0.75f}, {0.25f}, k));
    pairs[0].score = kNaN;  // fold 0's genuine: can only be rejected
    auto r = EvaluateVerification(pairs, std::vector<double>{0.0});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_DOUBLE_EQ(r->fold_accuracy[0], 0.5);
    EXPECT_DOUBLE_EQ(r->accuracy, 0.95);
    EXPECT_TRUE(std::isfinite(r->auc));
    EXPECT_DOUBLE_EQ(r->tar_at_far[0].tar, 0.9);
    EXPECT_FALSE(std::isnan(r->best_threshold));
}

TEST(EvaluateVerificationTest, MatchesPerFoldBestThreshold) {
    std::mt19937 rng(3);
    auto pairs = RandomPairs(rng, 2000, 10, 5);
    auto r = EvaluateVerification(pairs, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    double sum = 0;
    for (int k = 0; k < 10; ++k) {
        std::vector<ScoredPair> train;
        std::vector<ScoredPair> test;
        for (const auto& p : pairs) (p.fold == k ? test : train).push_back(p);
        const double expected = AccuracyAt(test, BestThreshold(train));
        EXPECT_DOUBLE_EQ(r->fold_accuracy[k], expected) << k;
        sum += expected;
    }
    EXPECT_NEAR(r->accuracy, sum / 10, 1e-12);
    EXPECT_DOUBLE_EQ(AccuracyAt(pairs, r->best_threshold), BruteBestAccuracy(pairs));
    EXPECT_GT(r->auc, 0.8);
    EXPECT_LT(r->auc, 1.0);
}

TEST(EvaluateVerificationTest, Errors) {
    EXPECT_EQ(EvaluateVerification({}, {}).status().code(), StatusCode::kInvalidArgument);

    auto gap = Pairs({0.75f}, {0.25f}, 0);
    Append(gap, Pairs({0.75f}, {0.25f}, 2));  // fold 1 empty
    auto r = EvaluateVerification(gap, {});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("fold 1"), std::string::npos) << r.status().ToString();

    auto negative = Pairs({0.75f}, {0.25f}, -1);
    EXPECT_EQ(EvaluateVerification(negative, {}).status().code(), StatusCode::kInvalidArgument);

    auto genuine_only = Pairs({0.75f, 0.5f}, {});
    EXPECT_EQ(EvaluateVerification(genuine_only, {}).status().code(),
              StatusCode::kInvalidArgument);
    auto impostor_only = Pairs({}, {0.75f, 0.5f});
    EXPECT_EQ(EvaluateVerification(impostor_only, {}).status().code(),
              StatusCode::kInvalidArgument);

    auto ok = Pairs({0.75f}, {0.25f});
    EXPECT_EQ(EvaluateVerification(ok, std::vector<double>{1.5}).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(EvaluateVerification(ok, std::vector<double>{std::nan("")}).status().code(),
              StatusCode::kInvalidArgument);
}

TEST(EvaluateVerificationTest, LargeInputIsFast) {
    // A million pairs: the O(n log n) path must finish well within the test timeout.
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<ScoredPair> pairs(1'000'000);
    for (size_t i = 0; i < pairs.size(); ++i) {
        const bool same = (i % 20) < 10;  // both classes in every fold
        pairs[i] = {u(rng) + (same ? 0.5f : 0.0f), same, static_cast<int>(i % 10)};
    }
    const std::vector<double> fars = {1e-4, 1e-3};
    auto r = EvaluateVerification(pairs, fars);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    // Uniform [0,1) vs [0.5,1.5): the best threshold is near 1 (overlap [0.5, 1), accuracy 0.75).
    EXPECT_NEAR(r->accuracy, 0.75, 0.01);
    EXPECT_NEAR(r->auc, 0.875, 0.01);
}

}  // namespace
}  // namespace fg::eval
