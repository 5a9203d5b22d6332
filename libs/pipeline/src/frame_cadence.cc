// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/frame_cadence.h"

namespace fg::pipeline {

Result<FrameCadence> FrameCadence::Create(const CadenceConfig& config) {
    if (config.detect_interval < 1) return InvalidArgument("detect_interval must be >= 1");
    if (config.settled_detect_interval < config.detect_interval) {
        return InvalidArgument("settled_detect_interval must be >= detect_interval");
    }
    FrameCadence c(config);
    if (config.motion) {
        FG_ASSIGN_OR_RETURN(stream::MotionGate gate, stream::MotionGate::Create(*config.motion));
        c.gate_ = std::make_unique<stream::MotionGate>(std::move(gate));
    }
    return c;
}

CadenceDecision FrameCadence::Next(const stream::Frame& frame, bool following, bool settled) {
    ++frames_since_detect_;
    const int interval = settled ? config_.settled_detect_interval : config_.detect_interval;
    CadenceDecision d;
    d.detect = frames_since_detect_ >= interval;
    if (gate_) {
        const stream::GateDecision g = gate_->Update(frame);
        // While faces are visibly tracked the detector keeps its cadence: a face that stops
        // moving must still be followed and its best shot taken. Lost tracks do not count: a
        // face coming back moves, and the gate lets it through.
        if (!g.pass && !following) {
            d.detect = false;
            d.gated = true;
        }
    }
    if (d.detect) frames_since_detect_ = 0;
    return d;
}

void FrameCadence::ResetBackground() {
    if (gate_) gate_->Reset();
}

}  // namespace fg::pipeline
