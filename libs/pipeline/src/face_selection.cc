// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/face_selection.h"

#include "fg/base/log.h"

namespace fg::pipeline {

FaceSelector::FaceSelector(SelectionConfig config, const ModelProvider& models,
                           std::unique_ptr<vision::LivenessChecker> liveness)
    : config_(std::move(config)), models_(models), liveness_(std::move(liveness)) {}

LivenessState FaceSelector::Liveness(const TrackState& t) const {
    LivenessState s;
    s.checked = liveness_ != nullptr;
    if (!s.checked) return s;
    s.live = t.liveness.live();
    s.spoof = t.liveness.spoof();
    s.score = t.liveness.frames() > 0 ? t.liveness.score() : 0.f;
    s.threshold = config_.liveness_threshold;
    return s;
}

std::vector<FaceItem> FaceSelector::Select(const cv::Mat& image, const FrameContext& frame,
                                           const TrackingResult& tracking) {
    for (const track::Track& t : tracking.step.started) {
        auto [it, inserted] = tracks_.try_emplace(t.id, config_);
        it->second.first_ms = frame.stream_ms;
    }
    std::vector<FaceItem> items;
    for (const track::Track& t : tracking.step.tracks) {
        if (t.state != track::TrackState::kConfirmed || t.detection_index < 0) continue;
        auto it = tracks_.find(t.id);
        if (it == tracks_.end()) continue;
        TrackState& ts = it->second;
        ts.last_ms = frame.stream_ms;
        const vision::FaceDetection& d = tracking.detections[static_cast<std::size_t>(t.detection_index)];
        if (d.score < config_.face_score_threshold) continue;
        Result<AssessedCrop> crop = models_.AlignAndAssess(image, d);
        if (!crop.ok()) continue;

        FaceItem item;
        item.item_id = frame.stream_id + "/" + std::to_string(frame.generation) + "/" +
                       std::to_string(t.id) + "/" + std::to_string(frame.frame_index);
        item.stream_id = frame.stream_id;
        item.track_id = t.id;
        item.frame_index = frame.frame_index;
        item.stream_ms = frame.stream_ms;
        item.capture_unix_ms = frame.capture_unix_ms;
        item.box = t.box;  // the tracker's estimate: what events report
        item.detection_score = d.score;
        item.landmarks = d.landmarks;
        item.quality = crop->quality.score;

        if (liveness_ && !ts.liveness.spoof()) {
            Result<vision::LivenessResult> lr = liveness_->Check(image, d);
            if (lr.ok()) ts.liveness.Add(*lr);
            if (ts.liveness.spoof() && !ts.spoof_sent) {
                ts.spoof_sent = true;
                FaceItem spoof = item;
                spoof.embed = false;
                spoof.liveness = Liveness(ts);
                items.push_back(std::move(spoof));
            }
        }
        if (ts.spoof_sent) continue;  // never recognised, no more faces
        if (!ts.offer.OfferFace(item.quality, frame.stream_ms)) continue;
        ts.offer.Sent(item.quality, frame.stream_ms);
        item.aligned = std::move(crop->aligned);
        item.liveness = Liveness(ts);
        items.push_back(std::move(item));
    }
    return items;
}

void FaceSelector::SetDecided(std::uint64_t track_id, bool decided) {
    if (auto it = tracks_.find(track_id); it != tracks_.end()) it->second.offer.SetDecided(decided);
}

bool FaceSelector::Settled() const {
    if (tracks_.empty()) return false;
    for (const auto& [id, t] : tracks_) {
        if (!t.offer.decided() && !t.spoof_sent) return false;
    }
    return true;
}

std::pair<std::int64_t, std::int64_t> FaceSelector::Span(std::uint64_t track_id) const {
    const auto it = tracks_.find(track_id);
    if (it == tracks_.end()) return {0, 0};
    return {it->second.first_ms, it->second.last_ms};
}

}  // namespace fg::pipeline
