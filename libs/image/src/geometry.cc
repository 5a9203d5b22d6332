// SPDX-License-Identifier: Apache-2.0
#include "fg/image/geometry.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <opencv2/core.hpp>

namespace fg {

float IoU(const Rect2f& a, const Rect2f& b) {
    const float area_a = a.area();
    const float area_b = b.area();
    if (area_a <= 0 || area_b <= 0) return 0.f;
    const float iw = std::min(a.right(), b.right()) - std::max(a.x, b.x);
    const float ih = std::min(a.bottom(), b.bottom()) - std::max(a.y, b.y);
    if (!(iw > 0 && ih > 0)) return 0.f;  // also rejects NaN
    const float inter = iw * ih;
    const float uni = area_a + area_b - inter;
    if (!(uni > 0) || !std::isfinite(uni)) return 0.f;
    return std::clamp(inter / uni, 0.f, 1.f);
}

std::vector<int> Nms(std::span<const Rect2f> boxes, std::span<const float> scores,
                     float iou_threshold, float score_threshold, int max_keep) {
    const std::size_t n = std::min(boxes.size(), scores.size());
    std::vector<int> order;
    order.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        // NaN scores would break the sort's strict weak ordering, so they are dropped here.
        if (!std::isnan(scores[i]) && scores[i] >= score_threshold) {
            order.push_back(static_cast<int>(i));
        }
    }
    // Stable: equal scores keep input order, so results do not depend on the sort algorithm.
    std::stable_sort(order.begin(), order.end(),
                     [&](int l, int r) { return scores[l] > scores[r]; });

    std::vector<int> keep;
    std::vector<char> suppressed(order.size(), 0);
    for (std::size_t i = 0; i < order.size(); ++i) {
        if (suppressed[i]) continue;
        keep.push_back(order[i]);
        if (max_keep > 0 && static_cast<int>(keep.size()) >= max_keep) break;
        const Rect2f& kept = boxes[order[i]];
        for (std::size_t j = i + 1; j < order.size(); ++j) {
            if (!suppressed[j] && IoU(kept, boxes[order[j]]) > iou_threshold) suppressed[j] = 1;
        }
    }
    return keep;
}

double Affine2x3::Scale() const {
    // |det| so that a reflection still reports its magnitude.
    return std::sqrt(std::abs(m[0] * m[4] - m[1] * m[3]));
}

Affine2x3 Affine2x3::Inverse() const {
    const double det = m[0] * m[4] - m[1] * m[3];
    if (det == 0 || !std::isfinite(det)) return {};
    const double ia = m[4] / det;
    const double ib = -m[1] / det;
    const double ic = -m[3] / det;
    const double id = m[0] / det;
    Affine2x3 inv;
    inv.m = {ia, ib, -(ia * m[2] + ib * m[5]), ic, id, -(ic * m[2] + id * m[5])};
    return inv;
}

namespace {

struct Moments {
    double mx = 0, my = 0;  // centroid
    double var = 0;         // mean squared distance to the centroid
    double scale2 = 0;      // mean squared distance to the origin, for a relative tolerance
};

bool ComputeMoments(std::span<const Point2f> p, Moments& mo) {
    const double n = static_cast<double>(p.size());
    for (const Point2f& q : p) {
        if (!std::isfinite(q.x) || !std::isfinite(q.y)) return false;
        mo.mx += q.x;
        mo.my += q.y;
        mo.scale2 += static_cast<double>(q.x) * q.x + static_cast<double>(q.y) * q.y;
    }
    mo.mx /= n;
    mo.my /= n;
    mo.scale2 /= n;
    for (const Point2f& q : p) {
        const double dx = q.x - mo.mx;
        const double dy = q.y - mo.my;
        mo.var += dx * dx + dy * dy;
    }
    mo.var /= n;
    // Float inputs carry ~1e-7 relative precision: a spread below that is noise, not geometry.
    return mo.var > 1e-12 * (1.0 + mo.scale2);
}

}  // namespace

bool EstimateSimilarity(std::span<const Point2f> src, std::span<const Point2f> dst,
                        Affine2x3& out) {
    if (src.size() != dst.size() || src.size() < 2) return false;
    Moments ms, md;
    // A collapsed destination would give a zero-scale (non-invertible) transform: also rejected.
    if (!ComputeMoments(src, ms) || !ComputeMoments(dst, md)) return false;

    // Cross-covariance Sigma = 1/n sum (d - mu_d)(s - mu_s)^T (Umeyama eq. 38).
    const double n = static_cast<double>(src.size());
    cv::Matx22d sigma = cv::Matx22d::zeros();
    for (std::size_t i = 0; i < src.size(); ++i) {
        const double sx = src[i].x - ms.mx, sy = src[i].y - ms.my;
        const double dx = dst[i].x - md.mx, dy = dst[i].y - md.my;
        sigma(0, 0) += dx * sx;
        sigma(0, 1) += dx * sy;
        sigma(1, 0) += dy * sx;
        sigma(1, 1) += dy * sy;
    }
    sigma *= 1.0 / n;

    cv::Matx21d w;
    cv::Matx22d u, vt;
    try {
        cv::SVD::compute(sigma, w, u, vt, cv::SVD::FULL_UV);
    } catch (const cv::Exception&) {
        return false;
    }
    // S = diag(1, -1) when U V^T would be a reflection (eq. 39-40); det(U)det(V) rather than
    // det(Sigma) so that the rank-1 case (collinear points) is handled too.
    const double sign = cv::determinant(u) * cv::determinant(vt) < 0 ? -1.0 : 1.0;
    const cv::Matx22d s(1, 0, 0, sign);
    const cv::Matx22d r = u * s * vt;
    const double c = (w(0) + sign * w(1)) / ms.var;  // eq. 42: tr(DS) / sigma_s^2
    if (!(c > 0) || !std::isfinite(c)) return false;

    const double tx = md.mx - c * (r(0, 0) * ms.mx + r(0, 1) * ms.my);
    const double ty = md.my - c * (r(1, 0) * ms.mx + r(1, 1) * ms.my);
    out.m = {c * r(0, 0), c * r(0, 1), tx, c * r(1, 0), c * r(1, 1), ty};
    return true;
}

}  // namespace fg
