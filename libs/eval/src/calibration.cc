// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/calibration.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "fg/core/embedding.h"

namespace fg::eval {

Result<CalibrationReport> Calibrate(std::vector<float> genuine, std::vector<float> impostor,
                                    const std::vector<double>& target_fars,
                                    const std::vector<std::int64_t>& gallery_sizes) {
    if (genuine.empty() || impostor.empty()) {
        return InvalidArgument(
            "calibration needs same-person and different-person pairs (at least two people, "
            "one with two photos)");
    }
    for (const auto* v : {&genuine, &impostor}) {
        for (float s : *v) {
            if (!std::isfinite(s)) return InvalidArgument("calibration scores contain NaN or Inf");
        }
    }
    std::sort(impostor.begin(), impostor.end(), std::greater<float>());
    std::sort(genuine.begin(), genuine.end());
    CalibrationReport rep;
    rep.genuine_pairs = std::int64_t(genuine.size());
    rep.impostor_pairs = std::int64_t(impostor.size());
    const double n_imp = double(impostor.size());
    for (double target : target_fars) {
        OperatingPoint p;
        p.target_far = target;
        // Accept when score > threshold is not what the gallery does (score >= threshold), so
        // the threshold sits just above the k-th highest impostor score, with k = floor(target*n).
        const auto allowed = std::int64_t(std::floor(target * n_imp));
        p.resolvable = n_imp * target >= 1.0;
        const float edge =
            impostor[size_t(std::min<std::int64_t>(allowed, rep.impostor_pairs - 1))];
        p.threshold = std::nextafter(edge, 2.f);
        const auto accepted_imp = std::count_if(impostor.begin(), impostor.end(),
                                                [&](float s) { return s >= p.threshold; });
        p.far = double(accepted_imp) / n_imp;
        const auto accepted_gen =
            genuine.end() - std::lower_bound(genuine.begin(), genuine.end(), p.threshold);
        p.tar = double(accepted_gen) / double(genuine.size());
        std::vector<GallerySizeRisk> growth;
        const double far_for_growth = std::max(p.far, p.resolvable ? 0.0 : target);
        for (std::int64_t n : gallery_sizes) {
            growth.push_back({n, 1.0 - std::pow(1.0 - far_for_growth, double(n))});
        }
        rep.points.push_back(p);
        rep.growth.push_back(std::move(growth));
    }
    return rep;
}

const OperatingPoint* FindPoint(const CalibrationReport& report, double target_far) {
    for (const OperatingPoint& p : report.points) {
        if (std::fabs(p.target_far - target_far) <= std::fabs(target_far) * 1e-6) return &p;
    }
    return nullptr;
}

Result<PairScores> ScoreAllPairs(std::span<const std::vector<float>> vectors,
                                 std::span<const int> labels) {
    if (vectors.size() != labels.size()) {
        return InvalidArgument(std::to_string(vectors.size()) + " vectors but " +
                               std::to_string(labels.size()) + " labels");
    }
    for (const auto& v : vectors) {
        if (v.size() != vectors.front().size())
            return InvalidArgument("vectors of different lengths cannot be scored together");
    }
    PairScores out;
    for (size_t i = 0; i < vectors.size(); ++i) {
        for (size_t j = i + 1; j < vectors.size(); ++j) {
            const float s = Dot(vectors[i], vectors[j]);
            (labels[i] == labels[j] ? out.genuine : out.impostor).push_back(s);
        }
    }
    return out;
}

}  // namespace fg::eval
