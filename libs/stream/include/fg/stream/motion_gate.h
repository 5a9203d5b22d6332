// SPDX-License-Identifier: Apache-2.0
// Cheap change detection that decides whether a frame is worth running the face detector on.
#pragma once

#include <chrono>
#include <cstdint>

#include <opencv2/core.hpp>

#include "fg/base/status.h"
#include "fg/stream/frame.h"

namespace fg::stream {

/// Defaults suit a fixed camera at 720p-1080p; every field has a default.
struct MotionGateConfig {
    int width = 160;  ///< analysis width in pixels (height keeps the aspect ratio)
    int blur = 5;     ///< Gaussian blur kernel (odd, >= 1; 1 = none) against sensor noise
    /// Grey-level difference (0-255) at which an analysis pixel counts as changed.
    int pixel_threshold = 20;
    /// Sensitivity: share of changed analysis pixels (0-1) at or above which the frame passes.
    /// 0.002 at 160x90 is about 29 pixels, i.e. a face of roughly 5x6 analysis pixels.
    double min_changed_share = 0.002;
    /// Running-average weight of a new frame in the background (0-1]. Lower remembers longer.
    double background_rate = 0.05;
    /// Compensate global brightness changes (auto exposure, flicker) before differencing.
    bool compensate_brightness = true;
    /// A frame passes anyway when the last pass was at least this many frames ago (0 = off)
    /// or this long ago in the timestamps given to Update (0 = off): a person standing still
    /// is absorbed by the background but must still be seen now and then.
    int max_interval_frames = 0;
    std::chrono::milliseconds max_interval{1000};

    Status Validate() const;  ///< names the offending field
    bool operator==(const MotionGateConfig&) const = default;
};

enum class GateReason {
    kFirstFrame,   ///< first frame, or first after a size change: passes
    kMotion,       ///< changed share >= min_changed_share: passes
    kMaxInterval,  ///< forced pass
    kStatic,       ///< gated (skip detection)
};

struct GateDecision {
    bool pass = false;  ///< run detection on this frame
    GateReason reason = GateReason::kStatic;
    double changed_share = 0.0;  ///< share of changed analysis pixels
    /// Bounding box of the changed pixels in full-frame coordinates (empty if none).
    cv::Rect motion_box;
};

struct MotionGateStats {
    std::uint64_t frames_seen = 0;
    std::uint64_t frames_gated = 0;   ///< decided kStatic
    std::uint64_t forced_passes = 0;  ///< kMaxInterval
    double gated_share() const {
        return frames_seen == 0 ? 0.0 : static_cast<double>(frames_gated) / frames_seen;
    }
};

/// Per-stream motion gate: downscale to grey, blur, absolute difference against a running
/// background, share of changed pixels vs the sensitivity.
/// Thread-safety: not thread-safe; use one gate per stream from one thread. Create(), then
/// Update() each frame in order.
class MotionGate {
  public:
    /// InvalidArgument naming the field for an invalid config.
    static Result<MotionGate> Create(const MotionGateConfig& config = {});

    /// Decides for one BGR (CV_8UC3) or grey (CV_8UC1) frame. `timestamp` is any monotonic
    /// time (media time for offline runs, capture time live) used for `max_interval`.
    GateDecision Update(const cv::Mat& image, std::chrono::microseconds timestamp);
    /// Uses frame.media_time when known, else the capture time; resets first when
    /// frame.generation changed (reconnect or file loop).
    GateDecision Update(const Frame& frame);

    /// Forgets the background (e.g. after a reconnect); the next frame passes as kFirstFrame.
    void Reset();

    const MotionGateStats& stats() const { return stats_; }
    const MotionGateConfig& config() const { return config_; }

  private:
    explicit MotionGate(const MotionGateConfig& config) : config_(config) {}

    MotionGateConfig config_;
    MotionGateStats stats_;
    cv::Mat background_;  // CV_32F, analysis size
    cv::Size input_size_;
    std::uint64_t frames_since_pass_ = 0;
    std::chrono::microseconds last_pass_time_{0};
    std::uint32_t generation_ = 0;
};

}  // namespace fg::stream
