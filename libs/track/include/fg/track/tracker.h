// SPDX-License-Identifier: Apache-2.0
// ByteTrack-style multi-object tracker for faces: a constant-velocity Kalman filter per track and
// two-stage IoU association (high-score detections first, then low-score ones keep tracks alive).
// Pure C++: no OpenCV, no models, so it builds and is tested anywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "fg/base/status.h"
#include "fg/core/geometry.h"

namespace fg::track {

/// Intersection over union in [0, 1]; 0 when either box is empty. Boxes are fg::Rect2f (x, y,
/// width, height), the project's one box type. Same result as fg::IoU of libs/image for finite
/// boxes; kept here so the tracker needs only fg::core.
float IoU(const Rect2f& a, const Rect2f& b);

/// One detector output for a frame. Only the box and score matter to the tracker; the caller
/// keeps landmarks/embeddings by index (see Track::detection_index).
struct Detection {
    Rect2f box;
    float score = 0;  ///< detector confidence in [0, 1]
};

enum class TrackState {
    kTentative,  ///< seen fewer than min_hits times; not reported as started yet
    kConfirmed,  ///< matched in the last Update, or only predicted since (no detection ran)
    kLost,       ///< confirmed before, then unmatched by an Update; kept max_lost_frames
};

/// "tentative", "confirmed", "lost".
std::string_view TrackStateName(TrackState state);

/// A snapshot of one track after a step.
struct Track {
    std::uint64_t id = 0;  ///< unique per Tracker, monotonic, starts at 1
    Rect2f box;            ///< Kalman estimate after this step (predicted when unmatched)
    float score = 0;       ///< score of the last matched detection
    TrackState state = TrackState::kTentative;
    bool ever_confirmed = false;  ///< true once it has started (stays true when lost)
    int age = 0;                  ///< steps (frames) since creation; 0 in its first frame
    int hits = 0;                 ///< number of matched detections, including the first
    int frames_since_match = 0;   ///< steps since the last matched detection; 0 when matched now
    int detection_index = -1;     ///< index into the last Update's detections; -1 if unmatched
    std::int64_t start_frame = 0;  ///< Tracker frame counter when the track was created
};

struct TrackerConfig {
    /// Detections with score >= high_thresh take part in the first association stage.
    float high_thresh = 0.5f;
    /// Detections with low_thresh <= score < high_thresh only keep existing confirmed tracks
    /// alive (second stage); lower scores are ignored.
    /// 0.3, not ByteTrack's 0.1: every detection a face detector returns also costs a
    /// landmark pass, and the pipeline runs its detector down to this score.
    float low_thresh = 0.3f;
    /// An unmatched high-score detection starts a new track only at score >= new_track_thresh.
    float new_track_thresh = 0.6f;
    /// Minimum IoU between a track's predicted box and a high-score detection to match
    /// (first stage and tentative tracks).
    float match_iou = 0.2f;
    /// Minimum IoU for the second (low-score) stage; stricter, as low scores are often clutter.
    float low_match_iou = 0.5f;
    /// Matched detections needed to confirm a track (2: a single-frame detection never starts).
    int min_hits = 2;
    /// A track unmatched for more than this many steps (Predict or Update) is removed. Set it
    /// above the detection interval when detection runs every N frames.
    int max_lost_frames = 30;
    /// Kalman process/measurement noise, relative to the box size (per-frame units).
    float std_weight_position = 1.0f / 20;
    float std_weight_velocity = 1.0f / 160;

    /// Checks ranges and orderings (low <= high <= new track etc.); the message names the field.
    Status Validate() const;
};

/// The outcome of one step (one frame).
struct TrackerStep {
    /// Every live track after the step (tentative, confirmed and lost), ordered by id.
    std::vector<Track> tracks;
    /// Tracks confirmed for the first time in this step (emit track_started).
    std::vector<Track> started;
    /// Tracks that had started and were removed in this step, in their last state
    /// (emit track_ended). Tentative tracks that die are dropped silently.
    std::vector<Track> ended;
};

/// Multi-object tracker for one stream.
///
/// Each call to Predict() or Update() is one frame. Call Update(detections) on frames where the
/// detector ran (including with zero detections) and Predict() on frames where it did not, so
/// velocities stay in per-frame units when detection runs every N frames.
///
/// Association (Update): the Kalman filter predicts every track one frame ahead, then
///  1. high-score detections vs confirmed + lost tracks, by IoU;
///  2. low-score detections vs the confirmed (not lost) tracks left over;
///  3. remaining high-score detections vs tentative tracks;
///  4. unmatched confirmed tracks become lost; unmatched tentative tracks are removed;
///  5. remaining high-score detections >= new_track_thresh start tentative tracks;
///  6. tracks unmatched for more than max_lost_frames are removed.
/// Each stage is an optimal assignment (Hungarian algorithm on 1 - IoU) restricted to pairs at
/// or above the stage's IoU threshold.
///
/// Thread-safety: not thread-safe; one Tracker per stream, used from one thread at a time.
class Tracker {
  public:
    static Result<std::unique_ptr<Tracker>> Create(const TrackerConfig& config);
    ~Tracker();
    Tracker(const Tracker&) = delete;
    Tracker& operator=(const Tracker&) = delete;

    /// Advances every track one frame without detections (detector skipped this frame).
    /// Tracks keep their state; frames_since_match grows and tracks past max_lost_frames end.
    TrackerStep Predict();

    /// Advances one frame and associates `detections` (may be empty). Track::detection_index
    /// refers to positions in `detections`.
    TrackerStep Update(std::span<const Detection> detections);

    /// Removes every track, reporting the started ones as ended (stream stopped or restarted).
    /// Does not advance the frame counter; ids keep increasing afterwards.
    TrackerStep EndAll();

    /// Current live tracks, ordered by id (same as the last step's `tracks`).
    std::vector<Track> tracks() const;
    /// Steps taken so far (Predict + Update); the first step is frame 1.
    std::int64_t frame() const;
    const TrackerConfig& config() const;

  private:
    explicit Tracker(const TrackerConfig& config);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fg::track
