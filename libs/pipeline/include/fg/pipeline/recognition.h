// SPDX-License-Identifier: Apache-2.0
// Stage 4: recognition. Takes the FaceItems face selection produced (in process, or from a
// bus), embeds them (batched across streams), fuses each track's embeddings, identifies the
// fused vector and decides: recognized, unknown or spoof. Knows nothing of frames or video.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/pipeline/embed_batcher.h"
#include "fg/pipeline/face_item.h"
#include "fg/pipeline/models.h"
#include "fg/pipeline/track_recognition.h"

namespace fg::pipeline {

struct RecognizerConfig {
    RecognitionPolicy policy;
    /// Attach the best aligned face (JPEG, base64) to recognized/unknown outcomes.
    bool best_shot_crops = false;
};

/// A decision to announce for one track.
struct Outcome {
    enum class Kind { kRecognized, kUnknown, kSpoof };
    Kind kind = Kind::kUnknown;
    std::uint64_t track_id = 0;
    std::int64_t frame_index = 0;
    std::int64_t capture_unix_ms = 0;
    Rect2f box;
    IdentityVerdict verdict;        ///< recognized / unknown
    float best_quality = -1;        ///< quality of the track's best face so far
    int faces_used = 0;             ///< embeddings fused
    std::string best_shot_jpeg_base64;  ///< when RecognizerConfig::best_shot_crops
    LivenessState liveness;         ///< spoof: the fused score and threshold
    /// For observers that keep decisions (libs/history): the fused, L2-normalised embedding the
    /// verdict was made on (empty for a spoof) and the track's best aligned face (BGR, shared
    /// with the recognizer: observers must not modify it; clone or encode on their own thread).
    std::vector<float> fused_embedding;
    cv::Mat best_shot;
};

struct RecognitionStep {
    std::vector<Outcome> outcomes;  ///< in item order; spoofs first
    std::uint64_t embedded = 0;     ///< faces embedded
    double embed_ms = 0;            ///< embedding, including the wait for the shared thread
    double search_ms = 0;           ///< gallery identification
};

/// Thread-safety: none; one per stream (it holds the stream's per-track state). The batcher
/// and the identifier it uses are shared and thread-safe.
class Recognizer {
  public:
    /// `identifier` may be null: faces are then embedded and reported unknown.
    Recognizer(RecognizerConfig config, EmbedBatcher& embedder, std::string model_id,
               const Identifier* identifier);

    /// Embeds the items' crops in one batch and decides their tracks.
    Result<RecognitionStep> Recognize(std::vector<FaceItem> items);
    /// The decision so far (kPending for a track never seen).
    TrackDecision Decision(std::uint64_t track_id) const;
    /// Forgets a track; returns its subject when it ended recognized (and was no spoof).
    std::string EndTrack(std::uint64_t track_id);
    void Clear() { tracks_.clear(); }

  private:
    struct TrackState {
        explicit TrackState(const RecognitionPolicy& p) : recognition(p) {}
        TrackRecognition recognition;
        bool spoof = false;
        cv::Mat best_shot;
        float best_quality = -1.f;
    };
    std::optional<Outcome> Decide(TrackState& t, const FaceItem& item);

    RecognizerConfig config_;
    EmbedBatcher& embedder_;
    std::string model_id_;
    const Identifier* identifier_;
    std::map<std::uint64_t, TrackState> tracks_;
};

}  // namespace fg::pipeline
