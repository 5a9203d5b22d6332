// SPDX-License-Identifier: Apache-2.0
// Plain geometry types shared by detection, alignment and tracking. No OpenCV here, so the
// tracker and other pure libraries can use them without pulling in an image library.
#pragma once

#include <array>
#include <span>
#include <vector>

namespace fg {

struct Point2f {
    float x = 0;
    float y = 0;
};

/// Axis-aligned box in pixels: top-left corner, width and height.
struct Rect2f {
    float x = 0;
    float y = 0;
    float width = 0;
    float height = 0;

    float area() const { return width > 0 && height > 0 ? width * height : 0.f; }
    float right() const { return x + width; }
    float bottom() const { return y + height; }
    Point2f center() const { return {x + width / 2, y + height / 2}; }
};

/// Five facial landmarks in ArcFace order: left eye, right eye, nose tip, left mouth corner,
/// right mouth corner ("left" = image left, i.e. the subject's right eye).
using Landmarks5 = std::array<Point2f, 5>;

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
