// SPDX-License-Identifier: Apache-2.0
// Plain geometry types shared by detection, alignment, tracking and events: the one box type
// of the project. No dependencies, so the tracker, the event schema and other pure libraries
// use them without pulling in an image library.
#pragma once

#include <array>

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

    /// The box with corners (x1, y1) and (x2, y2).
    static constexpr Rect2f FromCorners(float x1, float y1, float x2, float y2) {
        return {x1, y1, x2 - x1, y2 - y1};
    }
    float area() const { return width > 0 && height > 0 ? width * height : 0.f; }
    float right() const { return x + width; }
    float bottom() const { return y + height; }
    Point2f center() const { return {x + width / 2, y + height / 2}; }
};

/// Five facial landmarks in ArcFace order: left eye, right eye, nose tip, left mouth corner,
/// right mouth corner ("left" = image left, i.e. the subject's right eye).
using Landmarks5 = std::array<Point2f, 5>;

}  // namespace fg
