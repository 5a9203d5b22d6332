// SPDX-License-Identifier: Apache-2.0
// Stage 1 of a stream: which frames the detector sees. The motion gate skips still scenes with
// no face in view; the cadence runs the detector every `detect_interval` frames while a face is
// undecided and every `settled_detect_interval` once every face in view is decided (the tracker
// predicts in between).
#pragma once

#include <memory>
#include <optional>

#include "fg/base/status.h"
#include "fg/stream/frame.h"
#include "fg/stream/motion_gate.h"

namespace fg::pipeline {

struct CadenceConfig {
    int detect_interval = 2;
    int settled_detect_interval = 4;
    std::optional<stream::MotionGateConfig> motion;  ///< none = no motion gate
};

struct CadenceDecision {
    bool detect = false;  ///< run the detector on this frame
    bool gated = false;   ///< the motion gate held it back (no motion, nobody followed)
};

/// Thread-safety: none; one per stream, owned by its processing thread.
class FrameCadence {
  public:
    static Result<FrameCadence> Create(const CadenceConfig& config);

    /// `following`: a face is visibly tracked (not lost); `settled`: faces are in view and all
    /// of them are decided. Feeds every frame to the motion gate.
    CadenceDecision Next(const stream::Frame& frame, bool following, bool settled);
    /// A new picture (reconnect, file loop): the motion gate learns a new background.
    void ResetBackground();
    /// After a gap (a stalled camera): also detect on the next frame, whatever the cadence.
    void DetectNext() { frames_since_detect_ = kDetectNow; }

  private:
    explicit FrameCadence(const CadenceConfig& config) : config_(config) {}
    static constexpr int kDetectNow = 1 << 20;
    CadenceConfig config_;
    std::unique_ptr<stream::MotionGate> gate_;
    int frames_since_detect_ = kDetectNow;  // detect on the first frame
};

}  // namespace fg::pipeline
