// SPDX-License-Identifier: Apache-2.0
// Stage 3 of a stream: face selection. For each confirmed track matched in a frame it aligns
// the face, assesses its quality, fuses per-frame liveness, and decides whether this face is
// worth recognising (best shots: FaceOfferPolicy). What it selects leaves as FaceItems, the
// hand-off to recognition (in process, or over a bus to a worker).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fg/pipeline/face_item.h"
#include "fg/pipeline/face_tracking.h"
#include "fg/pipeline/models.h"
#include "fg/pipeline/track_recognition.h"
#include "fg/vision/liveness.h"

namespace fg::pipeline {

struct SelectionConfig {
    /// Detections below this score only keep tracks alive (the tracker's second stage); they
    /// are no faces to judge.
    float face_score_threshold = 0.f;
    RecognitionPolicy policy;
    float liveness_threshold = 0.5f;
    int liveness_min_frames = 3;
};

/// Where and when a frame was seen; stamped on every item selected from it.
struct FrameContext {
    std::string stream_id;
    std::uint32_t generation = 0;  ///< source generation (reconnect / loop count)
    std::int64_t frame_index = 0;
    std::int64_t stream_ms = 0;
    std::int64_t capture_unix_ms = 0;
};

/// Thread-safety: none; one per stream, owned by its processing thread.
class FaceSelector {
  public:
    /// `liveness` may be null (liveness off).
    FaceSelector(SelectionConfig config, const ModelProvider& models,
                 std::unique_ptr<vision::LivenessChecker> liveness);

    /// Registers the tracks confirmed in this step, then returns the faces to recognise: one
    /// item per track at most, in track order. A track judged a spoof yields one item with
    /// embed = false (and is never offered again).
    std::vector<FaceItem> Select(const cv::Mat& image, const FrameContext& frame,
                                 const TrackingResult& tracking);
    /// Recognition's feedback: a decided track is only re-checked now and then.
    void SetDecided(std::uint64_t track_id, bool decided);
    /// Faces are in view and every one of them is decided (or a spoof): the detector may relax.
    bool Settled() const;
    /// Stream time of a track's first and last matched frame; {0, 0} for an unknown id.
    std::pair<std::int64_t, std::int64_t> Span(std::uint64_t track_id) const;
    void EndTrack(std::uint64_t track_id) { tracks_.erase(track_id); }
    void Clear() { tracks_.clear(); }

  private:
    struct TrackState {
        explicit TrackState(const SelectionConfig& c)
            : offer(c.policy), liveness(c.liveness_threshold, 15, c.liveness_min_frames) {}
        FaceOfferPolicy offer;
        vision::LivenessTrackFusion liveness;
        bool spoof_sent = false;
        std::int64_t first_ms = 0;
        std::int64_t last_ms = 0;
    };
    LivenessState Liveness(const TrackState& t) const;

    SelectionConfig config_;
    const ModelProvider& models_;
    std::unique_ptr<vision::LivenessChecker> liveness_;
    std::map<std::uint64_t, TrackState> tracks_;
};

}  // namespace fg::pipeline
