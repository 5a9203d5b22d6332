// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/face_tracking.h"

#include <algorithm>

namespace fg::pipeline {

Result<std::unique_ptr<FaceTracking>> FaceTracking::Create(const ModelProvider& models,
                                                           float detector_threshold,
                                                           const track::TrackerConfig& tracker) {
    FG_ASSIGN_OR_RETURN(std::unique_ptr<vision::Detector> det, models.CreateDetector(detector_threshold));
    FG_ASSIGN_OR_RETURN(std::unique_ptr<track::Tracker> tr, track::Tracker::Create(tracker));
    return std::unique_ptr<FaceTracking>(new FaceTracking(std::move(det), std::move(tr)));
}

Result<TrackingResult> FaceTracking::Step(const cv::Mat& image, bool detect) {
    TrackingResult r;
    if (!detect) {
        r.step = tracker_->Predict();
        return r;
    }
    FG_ASSIGN_OR_RETURN(r.detections, detector_->Detect(image));
    std::vector<track::Detection> td;
    td.reserve(r.detections.size());
    for (const auto& d : r.detections) td.push_back({d.box, d.score});
    r.step = tracker_->Update(td);
    return r;
}

bool FaceTracking::Following() const {
    const auto tracks = tracker_->tracks();
    return std::any_of(tracks.begin(), tracks.end(),
                       [](const track::Track& t) { return t.state != track::TrackState::kLost; });
}

}  // namespace fg::pipeline
