// SPDX-License-Identifier: Apache-2.0
#include "fg/track/kalman_filter.h"

#include <algorithm>

namespace fg::track {
namespace {

// Coordinates 0 and 2 (cx, w) scale with the width, 1 and 3 (cy, h) with the height, so a wide
// or tall box gets noise in proportion along each axis.
float ScaleOf(const std::array<float, 8>& x, int i) {
    const float s = (i % 2 == 0) ? x[2] : x[3];
    return std::max(s, 1.0f);
}

float Sq(float v) { return v * v; }

}  // namespace

BoxKalmanFilter::BoxKalmanFilter(float std_weight_position, float std_weight_velocity)
    : std_pos_(std_weight_position), std_vel_(std_weight_velocity) {}

void BoxKalmanFilter::Initiate(const Rect2f& box) {
    const Point2f c = box.center();
    x_ = {c.x, c.y, box.width, box.height, 0, 0, 0, 0};
    for (int i = 0; i < 4; ++i) {
        const float s = ScaleOf(x_, i);
        // Position is known from the detection; velocity is not (10x wider prior).
        p_pp_[i] = Sq(2 * std_pos_ * s);
        p_pv_[i] = 0;
        p_vv_[i] = Sq(10 * std_vel_ * s);
    }
}

void BoxKalmanFilter::Predict() {
    std::array<float, 4> q_pos{};
    std::array<float, 4> q_vel{};
    for (int i = 0; i < 4; ++i) {
        const float s = ScaleOf(x_, i);
        q_pos[i] = Sq(std_pos_ * s);
        q_vel[i] = Sq(std_vel_ * s);
    }
    for (int i = 0; i < 4; ++i) {
        x_[i] += x_[i + 4];
        // P' = F P F^T + Q with F = [[1, 1], [0, 1]] per coordinate.
        const float pp = p_pp_[i] + 2 * p_pv_[i] + p_vv_[i] + q_pos[i];
        const float pv = p_pv_[i] + p_vv_[i];
        const float vv = p_vv_[i] + q_vel[i];
        p_pp_[i] = pp;
        p_pv_[i] = pv;
        p_vv_[i] = vv;
    }
    // A box cannot shrink below a pixel, whatever the size velocity says.
    x_[2] = std::max(x_[2], 1.0f);
    x_[3] = std::max(x_[3], 1.0f);
}

void BoxKalmanFilter::Update(const Rect2f& box) {
    const Point2f c = box.center();
    const std::array<float, 4> z = {c.x, c.y, box.width, box.height};
    for (int i = 0; i < 4; ++i) {
        const float r = Sq(std_pos_ * ScaleOf(x_, i));
        const float s = p_pp_[i] + r;  // innovation variance, > 0 since r > 0
        const float k_pos = p_pp_[i] / s;
        const float k_vel = p_pv_[i] / s;
        const float innovation = z[i] - x_[i];
        x_[i] += k_pos * innovation;
        x_[i + 4] += k_vel * innovation;
        // P' = (I - K H) P.
        const float pp = (1 - k_pos) * p_pp_[i];
        const float pv = (1 - k_pos) * p_pv_[i];
        const float vv = p_vv_[i] - k_vel * p_pv_[i];
        p_pp_[i] = pp;
        p_pv_[i] = pv;
        p_vv_[i] = vv;
    }
    x_[2] = std::max(x_[2], 1.0f);
    x_[3] = std::max(x_[3], 1.0f);
}

void BoxKalmanFilter::FreezeSize() {
    x_[6] = 0;
    x_[7] = 0;
}

Rect2f BoxKalmanFilter::box() const {
    const float w = std::max(x_[2], 1.0f);
    const float h = std::max(x_[3], 1.0f);
    return {x_[0] - w / 2, x_[1] - h / 2, w, h};
}

}  // namespace fg::track
