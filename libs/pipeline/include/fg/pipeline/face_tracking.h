// SPDX-License-Identifier: Apache-2.0
// Stage 2 of a stream: detect (on the frames the cadence picks) and track. The detector runs
// down to the tracker's low threshold, so weak detections (a face turning away, motion blur)
// keep confirmed tracks alive; only detections at the engine's own threshold count as faces.
#pragma once

#include <memory>
#include <vector>

#include "fg/base/status.h"
#include "fg/pipeline/models.h"
#include "fg/stream/frame.h"
#include "fg/track/tracker.h"

namespace fg::pipeline {

struct TrackingResult {
    std::vector<vision::FaceDetection> detections;  ///< empty when the detector did not run
    track::TrackerStep step;
};

/// Thread-safety: none; one per stream, owned by its processing thread.
class FaceTracking {
  public:
    /// `detector_threshold`: the score the detector runs down to (see PipelineConfig).
    static Result<std::unique_ptr<FaceTracking>> Create(const ModelProvider& models,
                                                        float detector_threshold,
                                                        const track::TrackerConfig& tracker);

    /// Detects and updates the tracker (detect) or only predicts (!detect).
    Result<TrackingResult> Step(const cv::Mat& image, bool detect);
    /// Ends every track (stream end, stall, new picture).
    track::TrackerStep EndAll() { return tracker_->EndAll(); }
    /// A face is visibly followed: some track is not lost.
    bool Following() const;
    bool HasTracks() const { return !tracker_->tracks().empty(); }

  private:
    FaceTracking(std::unique_ptr<vision::Detector> detector, std::unique_ptr<track::Tracker> tracker)
        : detector_(std::move(detector)), tracker_(std::move(tracker)) {}
    std::unique_ptr<vision::Detector> detector_;
    std::unique_ptr<track::Tracker> tracker_;
};

}  // namespace fg::pipeline
