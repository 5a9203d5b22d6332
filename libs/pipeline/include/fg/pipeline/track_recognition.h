// SPDX-License-Identifier: Apache-2.0
// Per-track recognition policy: which faces of a track are worth embedding (FaceOfferPolicy,
// used by face selection), how their embeddings are fused and when the track's identity is
// decided (TrackRecognition, used by recognition). Pure logic (no models), unit-tested with
// synthetic vectors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fg/base/status.h"

namespace fg::pipeline {

/// Every field has a default; Validate() names the offending one.
struct RecognitionPolicy {
    /// Faces below this combined quality (0..1, fg::vision::QualityReport::score) are not
    /// embedded while the track has nothing yet, unless it waited `patience_frames`.
    float min_quality = 0.45f;
    /// Matched frames a new track waits for a face of min_quality before it takes its best.
    int patience_frames = 8;
    /// A later face is embedded when its quality beats the best embedded one by this much.
    float quality_gain = 0.08f;
    /// While undecided, at most one embedding per this many matched frames (faces of one
    /// track a few frames apart are nearly the same picture).
    int min_gap_frames = 3;
    /// Decided tracks are re-checked with a fresh face this often (stream time).
    std::int64_t recheck_interval_ms = 2000;
    /// Embeddings fused before `unknown` may be declared (one poor face must not make a
    /// stranger of an enrolled person). A match is declared on the first embedding.
    int unknown_min_faces = 2;
    /// Hard cap of embeddings per track: never embed every frame.
    int max_embeddings = 10;

    Status Validate() const;
};

enum class TrackDecision { kPending, kRecognized, kUnknown };

/// What a track's fused identity is now; filled by the caller from a gallery search.
struct IdentityVerdict {
    bool known = false;
    std::string subject_id;
    std::string display_name;
    float score = 0;   ///< best subject's score
    float margin = 0;  ///< best minus runner-up
};

/// Which faces of one track are worth embedding (the face-selection half of the policy). It
/// knows what it sent, and whether the track is decided only when told (SetDecided): an edge
/// node that hands faces to a remote worker never is, and then sends at the undecided rate up
/// to max_embeddings.
/// Thread-safety: none; owned by the stream's processing thread.
class FaceOfferPolicy {
  public:
    explicit FaceOfferPolicy(const RecognitionPolicy& policy) : policy_(policy) {}

    /// Called for every frame in which the track was matched to a detection, with that face's
    /// quality and the stream time. Returns true when this face should be embedded now; the
    /// caller then reports it with Sent().
    bool OfferFace(float quality, std::int64_t stream_ms);
    /// The face accepted last was sent for embedding.
    void Sent(float quality, std::int64_t stream_ms);
    /// Decided tracks are only re-checked (recheck_interval_ms) or given a clearly better face.
    void SetDecided(bool decided) { decided_ = decided; }
    bool decided() const { return decided_; }
    int faces_sent() const { return faces_sent_; }

  private:
    RecognitionPolicy policy_;
    bool decided_ = false;
    int faces_sent_ = 0;
    int matched_frames_ = 0;
    int frames_since_sent_ = 0;
    float best_sent_quality_ = -1.f;
    float best_seen_quality_ = -1.f;
    std::int64_t last_sent_ms_ = 0;
};

/// The recognition state of one track: quality-weighted fusion of its embeddings and the
/// decision taken on the fused vector (the recognition half of the policy).
/// Thread-safety: none; owned by the thread recognising the track.
class TrackRecognition {
  public:
    explicit TrackRecognition(const RecognitionPolicy& policy) : policy_(policy) {}

    /// Adds one embedding of the track, weighted by its face quality. Vectors must all have
    /// the same length; they are L2-normalised unit vectors (another length is ignored).
    void AddEmbedding(const std::vector<float>& embedding, float quality);

    /// Quality-weighted mean of the embeddings so far, L2-normalised; empty before any.
    const std::vector<float>& fused() const { return fused_; }
    int faces_used() const { return faces_used_; }

    /// Applies a verdict for the current fused embedding. Returns the decision to announce
    /// now (kRecognized on a first match or a change of subject; kUnknown once, when the
    /// track has enough faces and no match), or nullopt when nothing new is to be said. A
    /// recognised track stays recognised when a later, weaker look finds no match.
    std::optional<TrackDecision> Decide(const IdentityVerdict& verdict);

    TrackDecision decision() const { return decision_; }
    const IdentityVerdict& verdict() const { return verdict_; }

  private:
    RecognitionPolicy policy_;
    TrackDecision decision_ = TrackDecision::kPending;
    IdentityVerdict verdict_;
    std::vector<double> sum_;  // quality-weighted sum of embeddings
    std::vector<float> fused_;
    int faces_used_ = 0;
    bool unknown_announced_ = false;
};

}  // namespace fg::pipeline
