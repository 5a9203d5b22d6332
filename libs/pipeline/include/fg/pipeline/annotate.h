// SPDX-License-Identifier: Apache-2.0
// Drawing a processed frame: each confirmed track's box with its id and label (a name,
// "unknown" or "SPOOF", the score), or the naive mode's faces. Shared by the annotated video
// writer (draw_dir) and the service's live view (latest frame, MJPEG).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <opencv2/core/mat.hpp>

#include "fg/events/event.h"
#include "fg/pipeline/event_emitter.h"

namespace fg::pipeline {

struct TrackLabel {
    std::string text;  ///< "" = undecided, else a name, "unknown" or "SPOOF"
    float score = -1;  ///< when recognised
};

/// Track id -> label, kept from one stream's events. Thread-safety: none (one per stream).
class TrackLabels {
  public:
    /// recognized / unknown_face / spoof_detected set a label; track_ended forgets it.
    void OnEvent(const events::Event& event);
    const TrackLabel* Find(std::uint64_t track_id) const;
    void Clear() { labels_.clear(); }

  private:
    std::map<std::uint64_t, TrackLabel> labels_;
};

/// A copy of `view.frame->image` with the tracks (or faces) drawn on it; empty without a frame.
cv::Mat Annotate(const FrameView& view, const TrackLabels& labels);

}  // namespace fg::pipeline
