// SPDX-License-Identifier: Apache-2.0
// Draws a stream's tracks (id, name or "unknown"/"SPOOF", score) or the naive mode's faces on
// each processed frame and writes an MJPG AVI: an observer of events and frames, not a branch
// of the stage code.
#pragma once

#include <map>
#include <string>

#include <opencv2/videoio.hpp>

#include "fg/pipeline/annotate.h"
#include "fg/pipeline/event_emitter.h"

namespace fg::pipeline {

/// Thread-safety: none; called on its stream's thread only (one per stream).
class AnnotatedVideoWriter final : public PipelineObserver {
  public:
    AnnotatedVideoWriter(std::string dir, std::string stream_id, double fps)
        : dir_(std::move(dir)), stream_id_(std::move(stream_id)), fps_(fps) {}
    void OnEvent(const events::Event& event) override;
    void OnFrame(const FrameView& view) override;
    void OnStreamEnd() override;

  private:
    void Write(const cv::Mat& canvas);

    std::string dir_;
    std::string stream_id_;
    double fps_;
    TrackLabels labels_;
    cv::VideoWriter writer_;
    cv::Size size_;
};

}  // namespace fg::pipeline
