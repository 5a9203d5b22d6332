// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/track_recognition.h"

#include <algorithm>
#include <cmath>

#include "fg/core/embedding.h"

namespace fg::pipeline {

Status RecognitionPolicy::Validate() const {
    if (!(min_quality >= 0.f && min_quality <= 1.f)) {
        return InvalidArgument("recognition.min_quality must be in [0, 1]");
    }
    if (patience_frames < 0) return InvalidArgument("recognition.patience_frames must be >= 0");
    if (!(quality_gain >= 0.f && quality_gain <= 1.f)) {
        return InvalidArgument("recognition.quality_gain must be in [0, 1]");
    }
    if (min_gap_frames < 1) return InvalidArgument("recognition.min_gap_frames must be >= 1");
    if (recheck_interval_ms < 0) {
        return InvalidArgument("recognition.recheck_interval_ms must be >= 0");
    }
    if (unknown_min_faces < 1) {
        return InvalidArgument("recognition.unknown_min_faces must be >= 1");
    }
    if (max_embeddings < 1) return InvalidArgument("recognition.max_embeddings must be >= 1");
    if (unknown_min_faces > max_embeddings) {
        return InvalidArgument("recognition.unknown_min_faces must be <= max_embeddings");
    }
    return Status::Ok();
}

bool FaceOfferPolicy::OfferFace(float quality, std::int64_t stream_ms) {
    ++matched_frames_;
    ++frames_since_sent_;
    const float best_seen_before = best_seen_quality_;
    best_seen_quality_ = std::max(best_seen_quality_, quality);
    if (faces_sent_ >= policy_.max_embeddings || !std::isfinite(quality)) return false;

    if (faces_sent_ == 0) {
        if (quality >= policy_.min_quality) return true;
        // Waited long enough for a good face: take one about as good as the best seen, so a
        // person who never faces the camera squarely is still recognised (or declared unknown).
        return matched_frames_ > policy_.patience_frames && quality >= best_seen_before - 0.05f;
    }
    if (frames_since_sent_ < policy_.min_gap_frames) return false;
    const bool better = quality >= best_sent_quality_ + policy_.quality_gain;
    if (!decided_) {
        // Undecided: gather the faces needed for a confident answer, the better ones first.
        return better || quality >= std::max(policy_.min_quality, best_sent_quality_ - 0.1f) ||
               matched_frames_ > policy_.patience_frames;
    }
    const bool recheck_due = stream_ms - last_sent_ms_ >= policy_.recheck_interval_ms &&
                             quality >= policy_.min_quality;
    return better || recheck_due;
}

void FaceOfferPolicy::Sent(float quality, std::int64_t stream_ms) {
    ++faces_sent_;
    frames_since_sent_ = 0;
    last_sent_ms_ = stream_ms;
    best_sent_quality_ = std::max(best_sent_quality_, quality);
}

void TrackRecognition::AddEmbedding(const std::vector<float>& embedding, float quality) {
    if (embedding.empty()) return;
    if (sum_.empty()) sum_.assign(embedding.size(), 0.0);
    if (sum_.size() != embedding.size()) return;  // another model: ignore rather than mix
    // Weight by quality, with a floor so a forced low-quality face still counts a little.
    const double w = std::max(0.05, static_cast<double>(quality));
    for (std::size_t i = 0; i < sum_.size(); ++i) sum_[i] += w * embedding[i];
    fused_.assign(sum_.begin(), sum_.end());
    L2Normalize(fused_);
    ++faces_used_;
}

std::optional<TrackDecision> TrackRecognition::Decide(const IdentityVerdict& verdict) {
    if (verdict.known) {
        const bool changed =
            decision_ != TrackDecision::kRecognized || verdict.subject_id != verdict_.subject_id;
        verdict_ = verdict;
        decision_ = TrackDecision::kRecognized;
        if (changed) return TrackDecision::kRecognized;
        return std::nullopt;
    }
    if (decision_ == TrackDecision::kRecognized) return std::nullopt;  // keep the match
    verdict_ = verdict;
    if (faces_used_ < policy_.unknown_min_faces) return std::nullopt;
    decision_ = TrackDecision::kUnknown;
    if (unknown_announced_) return std::nullopt;
    unknown_announced_ = true;
    return TrackDecision::kUnknown;
}

}  // namespace fg::pipeline
