// SPDX-License-Identifier: Apache-2.0
// Conventions: a pair is accepted ("same") when score >= threshold. A NaN score is read as
// -infinity, the lowest similarity, so a pair the caller could not score counts as a rejection
// instead of poisoning the sort. Everything is computed from one descending sort of the scores,
// grouped by distinct value, hence O(n log n) overall.
#include "fg/eval/metrics.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace fg::eval {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kNoFold = INT_MIN;
// Slack for comparing rates computed by division with a requested FAR: far below 1/#impostors
// for any realistic set, so it never admits an extra impostor.
constexpr double kRateEps = 1e-12;

struct Entry {
    double score;
    bool same;
    int fold;
};

// All pairs with the same score; a threshold can only fall between groups, never inside one.
struct Group {
    double score;
    int64_t genuine;
    int64_t impostor;
};

double SanitizedScore(float score) {
    return std::isnan(score) ? -kInf : static_cast<double>(score);
}

std::vector<Entry> SortDescending(std::span<const ScoredPair> pairs) {
    std::vector<Entry> entries;
    entries.reserve(pairs.size());
    for (const ScoredPair& p : pairs) entries.push_back({SanitizedScore(p.score), p.same, p.fold});
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.score > b.score; });
    return entries;
}

// Groups of the sorted entries, leaving out fold `exclude` (kNoFold keeps everything).
std::vector<Group> GroupScores(const std::vector<Entry>& sorted, int exclude = kNoFold) {
    std::vector<Group> groups;
    for (const Entry& e : sorted) {
        if (e.fold == exclude && exclude != kNoFold) continue;
        if (groups.empty() || groups.back().score != e.score) groups.push_back({e.score, 0, 0});
        (e.same ? groups.back().genuine : groups.back().impostor) += 1;
    }
    return groups;
}

// A threshold strictly above `score` that still rejects every float at or below it.
double JustAbove(double score) { return std::nextafter(score, kInf); }

// "Cut k" accepts the k highest groups, i.e. any threshold in (groups[k], groups[k-1]].
// Among the cuts of maximal accuracy we take the first contiguous run (the highest thresholds,
// so the lowest FAR when several runs tie) and return the middle of its threshold interval.
double PickThreshold(const std::vector<Group>& groups) {
    if (groups.empty()) return 0.0;
    int64_t impostors = 0;
    for (const Group& g : groups) impostors += g.impostor;

    const size_t m = groups.size();
    int64_t tp = 0;
    int64_t fp = 0;
    int64_t best = -1;
    size_t run_begin = 0;
    size_t run_end = 0;
    bool run_open = false;
    for (size_t k = 0; k <= m; ++k) {
        if (k > 0) {
            tp += groups[k - 1].genuine;
            fp += groups[k - 1].impostor;
        }
        const int64_t correct = tp + (impostors - fp);
        if (correct > best) {
            best = correct;
            run_begin = run_end = k;
            run_open = true;
        } else if (correct == best && run_open) {
            run_end = k;
        } else if (correct < best) {
            run_open = false;
        }
    }
    // The best thresholds form (lo, hi].
    const double hi = run_begin > 0 ? groups[run_begin - 1].score : kInf;
    const double lo = run_end < m ? groups[run_end].score : -kInf;
    if (std::isfinite(lo) && std::isfinite(hi)) return lo + (hi - lo) / 2;
    if (std::isfinite(hi)) return hi;             // unbounded below: the lowest accepted score
    if (std::isfinite(lo)) return JustAbove(lo);  // unbounded above: just reject the highest
    return 0.0;                                   // every threshold is as good
}

std::vector<RocPoint> RocFromGroups(const std::vector<Group>& groups) {
    int64_t genuine = 0;
    int64_t impostors = 0;
    for (const Group& g : groups) {
        genuine += g.genuine;
        impostors += g.impostor;
    }
    auto rate = [](int64_t count, int64_t total) {
        return total > 0 ? static_cast<double>(count) / static_cast<double>(total) : 0.0;
    };
    std::vector<RocPoint> roc;
    roc.reserve(groups.size() + 1);
    // The (0, 0) extreme: a threshold just above the highest score accepts nothing.
    roc.push_back({groups.empty() ? kInf : JustAbove(groups.front().score), 0.0, 0.0});
    int64_t tp = 0;
    int64_t fp = 0;
    for (const Group& g : groups) {
        tp += g.genuine;
        fp += g.impostor;
        roc.push_back({g.score, rate(fp, impostors), rate(tp, genuine)});
    }
    return roc;
}

// FAR never decreases along the ROC, so the admissible points are a prefix; the last one has
// the largest TAR. The first point (FAR 0) is returned even for a negative target.
TarAtFar TarAtFarFromRoc(const std::vector<RocPoint>& roc, double far_target) {
    auto it = std::partition_point(roc.begin() + 1, roc.end(), [&](const RocPoint& p) {
        return p.far <= far_target + kRateEps;
    });
    const RocPoint& p = *(it - 1);
    return TarAtFar{far_target, p.tar, p.threshold, p.far};
}

double Auc(const std::vector<RocPoint>& roc) {
    double auc = 0;
    for (size_t i = 1; i < roc.size(); ++i) {
        auc += (roc[i].far - roc[i - 1].far) * (roc[i].tar + roc[i - 1].tar) / 2;
    }
    return auc;
}

}  // namespace

double BestThreshold(std::span<const ScoredPair> pairs) {
    return PickThreshold(GroupScores(SortDescending(pairs)));
}

std::vector<RocPoint> ComputeRoc(std::span<const ScoredPair> pairs) {
    return RocFromGroups(GroupScores(SortDescending(pairs)));
}

TarAtFar ComputeTarAtFar(std::span<const ScoredPair> pairs, double far_target) {
    return TarAtFarFromRoc(ComputeRoc(pairs), far_target);
}

Result<VerificationReport> EvaluateVerification(std::span<const ScoredPair> pairs,
                                               std::span<const double> far_targets) {
    if (pairs.empty()) return InvalidArgument("no pairs to evaluate");
    for (double target : far_targets) {
        if (!(target >= 0.0 && target <= 1.0)) {
            return InvalidArgument("FAR target must be in [0, 1], got " + std::to_string(target));
        }
    }

    VerificationReport report;
    int max_fold = 0;
    for (const ScoredPair& p : pairs) {
        if (p.fold < 0) return InvalidArgument("negative fold " + std::to_string(p.fold));
        max_fold = std::max(max_fold, p.fold);
        (p.same ? report.genuine : report.impostor) += 1;
    }
    report.pairs = static_cast<int>(pairs.size());
    if (report.genuine == 0) return InvalidArgument("no genuine (same) pairs");
    if (report.impostor == 0) return InvalidArgument("no impostor (different) pairs");

    // Folds are 0..max_fold; a gap is an error, as it means the protocol was loaded wrongly.
    const int folds = max_fold + 1;
    std::vector<int64_t> fold_size(folds, 0);
    for (const ScoredPair& p : pairs) ++fold_size[p.fold];
    for (int k = 0; k < folds; ++k) {
        if (fold_size[k] == 0) {
            return InvalidArgument("fold " + std::to_string(k) + " of 0.." +
                                   std::to_string(max_fold) + " has no pairs");
        }
    }

    const std::vector<Entry> sorted = SortDescending(pairs);
    const std::vector<Group> all = GroupScores(sorted);
    report.best_threshold = PickThreshold(all);

    // Each fold is scored with the threshold chosen on the other folds. With a single fold there
    // is nothing to hold out, so the threshold comes from all pairs (an optimistic estimate).
    std::vector<double> fold_threshold(folds, report.best_threshold);
    if (folds > 1) {
        for (int k = 0; k < folds; ++k) fold_threshold[k] = PickThreshold(GroupScores(sorted, k));
    }
    std::vector<int64_t> fold_correct(folds, 0);
    for (const Entry& e : sorted) {
        if ((e.score >= fold_threshold[e.fold]) == e.same) ++fold_correct[e.fold];
    }
    report.fold_accuracy.resize(folds);
    double sum = 0;
    for (int k = 0; k < folds; ++k) {
        report.fold_accuracy[k] =
            static_cast<double>(fold_correct[k]) / static_cast<double>(fold_size[k]);
        sum += report.fold_accuracy[k];
    }
    report.accuracy = sum / folds;
    // Population standard deviation (divide by the number of folds), as numpy's std() used by
    // the usual LFW evaluation scripts, so reported figures are comparable.
    double sq = 0;
    for (double a : report.fold_accuracy) sq += (a - report.accuracy) * (a - report.accuracy);
    report.accuracy_std = std::sqrt(sq / folds);

    const std::vector<RocPoint> roc = RocFromGroups(all);
    for (double target : far_targets) report.tar_at_far.push_back(TarAtFarFromRoc(roc, target));
    report.auc = Auc(roc);
    return report;
}

}  // namespace fg::eval
