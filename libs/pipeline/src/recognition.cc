// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/recognition.h"

#include <chrono>

#include <opencv2/imgcodecs.hpp>

#include "fg/base/log.h"
#include "fg/events/event.h"

namespace fg::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

std::string JpegBase64(const cv::Mat& bgr) {
    std::vector<uchar> buf;
    if (bgr.empty() || !cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, 90})) return {};
    return events::Base64Encode(buf);
}

Outcome OutcomeFor(const FaceItem& item, Outcome::Kind kind) {
    Outcome o;
    o.kind = kind;
    o.track_id = item.track_id;
    o.frame_index = item.frame_index;
    o.capture_unix_ms = item.capture_unix_ms;
    o.box = item.box;
    o.liveness = item.liveness;
    return o;
}

}  // namespace

Recognizer::Recognizer(RecognizerConfig config, EmbedBatcher& embedder, std::string model_id,
                       const Identifier* identifier)
    : config_(std::move(config)),
      embedder_(embedder),
      model_id_(std::move(model_id)),
      identifier_(identifier) {}

Result<RecognitionStep> Recognizer::Recognize(std::vector<FaceItem> items) {
    RecognitionStep step;
    std::vector<FaceItem*> to_embed;
    for (FaceItem& item : items) {
        TrackState& t = tracks_.try_emplace(item.track_id, config_.policy).first->second;
        if (!item.embed) {
            if (item.liveness.spoof && !t.spoof) {
                t.spoof = true;
                step.outcomes.push_back(OutcomeFor(item, Outcome::Kind::kSpoof));
            }
            continue;
        }
        if (t.spoof) continue;
        if (item.quality > t.best_quality) {
            t.best_quality = item.quality;
            t.best_shot = item.aligned;  // the item owns its crop; no copy needed
        }
        to_embed.push_back(&item);
    }
    if (to_embed.empty()) return step;
    std::vector<cv::Mat> crops;
    crops.reserve(to_embed.size());
    for (const FaceItem* item : to_embed) crops.push_back(item->aligned);
    std::vector<vision::Embedding> embs;
    const auto t0 = Clock::now();
    FG_RETURN_IF_ERROR(embedder_.Embed(std::move(crops), embs));
    const auto t1 = Clock::now();
    step.embed_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    step.embedded = embs.size();
    for (std::size_t i = 0; i < to_embed.size() && i < embs.size(); ++i) {
        TrackState& t = tracks_.at(to_embed[i]->track_id);
        t.recognition.AddEmbedding(embs[i].values, to_embed[i]->quality);
        if (std::optional<Outcome> o = Decide(t, *to_embed[i])) step.outcomes.push_back(std::move(*o));
    }
    step.search_ms = std::chrono::duration<double, std::milli>(Clock::now() - t1).count();
    return step;
}

std::optional<Outcome> Recognizer::Decide(TrackState& t, const FaceItem& item) {
    IdentityVerdict v;
    if (identifier_) {
        Result<IdentityVerdict> r = identifier_->Identify(Embedding{model_id_, t.recognition.fused()});
        if (!r.ok()) {
            spdlog::warn("stream '{}': identify failed: {}", item.stream_id, r.status().ToString());
            return std::nullopt;
        }
        v = std::move(*r);
    }
    // Any decision waits for liveness when it is on, spoof first: no door opens for a photo, and
    // a photo is no stranger either (with an empty gallery every face is unknown at once, so an
    // unknown that did not wait would come before the spoof of the same track).
    if (item.liveness.checked && !item.liveness.live) return std::nullopt;
    const std::optional<TrackDecision> d = t.recognition.Decide(v);
    if (!d) return std::nullopt;
    Outcome o = OutcomeFor(item, *d == TrackDecision::kRecognized ? Outcome::Kind::kRecognized
                                                                   : Outcome::Kind::kUnknown);
    o.verdict = std::move(v);
    o.best_quality = t.best_quality;
    o.faces_used = t.recognition.faces_used();
    if (config_.best_shot_crops) o.best_shot_jpeg_base64 = JpegBase64(t.best_shot);
    o.fused_embedding = t.recognition.fused();
    o.best_shot = t.best_shot;  // a reference, not a copy: the track replaces, never edits, it
    return o;
}

TrackDecision Recognizer::Decision(std::uint64_t track_id) const {
    const auto it = tracks_.find(track_id);
    return it == tracks_.end() ? TrackDecision::kPending : it->second.recognition.decision();
}

std::string Recognizer::EndTrack(std::uint64_t track_id) {
    const auto it = tracks_.find(track_id);
    if (it == tracks_.end()) return {};
    std::string subject;
    if (it->second.recognition.decision() == TrackDecision::kRecognized && !it->second.spoof) {
        subject = it->second.recognition.verdict().subject_id;
    }
    tracks_.erase(it);
    return subject;
}

}  // namespace fg::pipeline
