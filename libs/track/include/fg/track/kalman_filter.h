// SPDX-License-Identifier: Apache-2.0
// Constant-velocity Kalman filter on a box: state (cx, cy, w, h) plus their per-frame velocities.
#pragma once

#include <array>

#include "fg/track/tracker.h"

namespace fg::track {

/// Kalman filter for one box with state x = (cx, cy, w, h, vcx, vcy, vw, vh), measurement
/// z = (cx, cy, w, h), transition cx' = cx + vcx (one frame), and diagonal noise whose standard
/// deviations scale with the box size (a face far away moves fewer pixels per frame).
///
/// Because F is block-diagonal per coordinate and Q, R and the initial covariance are diagonal,
/// the 8-D filter is exactly four independent 2-D (position, velocity) filters; we store it that
/// way (3 covariance numbers per coordinate) instead of 8x8 matrices.
///
/// Thread-safety: a value type, not synchronised.
class BoxKalmanFilter {
  public:
    BoxKalmanFilter(float std_weight_position, float std_weight_velocity);

    /// Starts from a measurement with zero velocity and a wide velocity uncertainty.
    void Initiate(const Rect2f& box);
    /// Advances one frame.
    void Predict();
    /// Corrects with a measured box.
    void Update(const Rect2f& box);
    /// Sets the size velocities to zero (used for lost tracks so their boxes do not collapse).
    void FreezeSize();

    /// Current estimate; width and height are kept at least 1 pixel.
    Rect2f box() const;
    /// Position/size (0..3) and velocity (4..7) of the state.
    const std::array<float, 8>& state() const { return x_; }

  private:
    float std_pos_;
    float std_vel_;
    std::array<float, 8> x_{};
    // Covariance per coordinate i: [p_pp, p_pv; p_pv, p_vv].
    std::array<float, 4> p_pp_{};
    std::array<float, 4> p_pv_{};
    std::array<float, 4> p_vv_{};
};

}  // namespace fg::track
