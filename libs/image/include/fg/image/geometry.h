// SPDX-License-Identifier: Apache-2.0
// Geometry on the plain types of fg/core/geometry.h: IoU, NMS, similarity transforms. No OpenCV.
#pragma once

#include <array>
#include <span>
#include <vector>

#include "fg/core/geometry.h"

namespace fg {

// Point2f, Rect2f and Landmarks5 live in fg/core/geometry.h (no OpenCV, no image library).


/// Intersection over union of two boxes; 0 when either is empty.
float IoU(const Rect2f& a, const Rect2f& b);

/// Greedy non-maximum suppression. Returns the indices of the kept boxes, highest score first.
/// Boxes with score < score_threshold are dropped first; `max_keep` <= 0 means no limit.
std::vector<int> Nms(std::span<const Rect2f> boxes, std::span<const float> scores,
                     float iou_threshold, float score_threshold = 0.f, int max_keep = 0);

/// 2x3 affine matrix, row-major: [a b tx; c d ty] maps (x, y) to (a x + b y + tx, c x + d y + ty).
struct Affine2x3 {
    std::array<double, 6> m{1, 0, 0, 0, 1, 0};

    Point2f Apply(Point2f p) const {
        return {static_cast<float>(m[0] * p.x + m[1] * p.y + m[2]),
                static_cast<float>(m[3] * p.x + m[4] * p.y + m[5])};
    }
    /// Uniform scale of a similarity transform (sqrt of the determinant).
    double Scale() const;
    /// Inverse transform; identity if the matrix is singular.
    Affine2x3 Inverse() const;
};

/// Least-squares similarity transform (rotation, uniform scale, translation) mapping `src` to
/// `dst`, after Umeyama (1991), "Least-squares estimation of transformation parameters between
/// two point patterns". Needs at least 2 points and src.size() == dst.size(); returns false (and
/// leaves `out` unchanged) on degenerate input (coincident points, size mismatch).
bool EstimateSimilarity(std::span<const Point2f> src, std::span<const Point2f> dst, Affine2x3& out);

}  // namespace fg
