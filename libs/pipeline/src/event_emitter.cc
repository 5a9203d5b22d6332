// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/event_emitter.h"

#include "fg/base/log.h"

namespace fg::pipeline {
namespace {

events::Event Stamped(events::Event e, std::optional<std::uint64_t> track_id,
                      std::int64_t frame_index, const Rect2f& box, std::int64_t unix_ms) {
    e.track_id = track_id;
    e.frame_index = frame_index;
    e.box = box;
    // The frame's arrival, not the moment of sending: a consumer correlating events with video
    // (or with another camera) needs when the face was seen.
    if (unix_ms != 0) e.timestamp_ms = unix_ms;
    return e;
}

}  // namespace

void EventEmitter::TrackStarted(const track::Track& t, std::int64_t frame_index,
                                std::int64_t unix_ms) {
    Publish(Stamped(events::MakeEvent(stream_id_, events::TrackStarted{t.score}), t.id, frame_index,
                    t.box, unix_ms));
}

void EventEmitter::Decision(const Outcome& o) {
    for (const auto& obs : observers_) obs->OnDecision(stream_id_, o);
    events::Payload p;
    switch (o.kind) {
        case Outcome::Kind::kRecognized:
            p = events::Recognized{o.verdict.subject_id, o.verdict.display_name, o.verdict.score,
                                   o.verdict.margin,     o.best_quality,         o.faces_used,
                                   o.best_shot_jpeg_base64};
            break;
        case Outcome::Kind::kUnknown:
            p = events::UnknownFace{o.verdict.score, o.best_quality, o.faces_used,
                                    o.best_shot_jpeg_base64};
            break;
        case Outcome::Kind::kSpoof:
            p = events::SpoofDetected{o.liveness.score, o.liveness.threshold};
            break;
    }
    Publish(Stamped(events::MakeEvent(stream_id_, std::move(p)), o.track_id, o.frame_index, o.box,
                    o.capture_unix_ms));
}

void EventEmitter::TrackEnded(const track::Track& t, std::int64_t duration_ms,
                              std::string subject_id, std::int64_t frame_index,
                              std::int64_t unix_ms) {
    events::TrackEnded p;
    p.duration_ms = duration_ms;
    p.frames = t.age + 1;
    p.hits = t.hits;
    p.subject_id = std::move(subject_id);
    Publish(Stamped(events::MakeEvent(stream_id_, p), t.id, frame_index, t.box, unix_ms));
}

void EventEmitter::Publish(events::Event e) {
    ++count_;
    Send(e);
}

void EventEmitter::SourceState(const events::Event& e) { Send(e); }

void EventEmitter::Send(const events::Event& e) {
    for (const auto& o : observers_) o->OnEvent(e);
    if (!sink_) return;
    const Status st = sink_->Publish(e);
    if (!st.ok()) spdlog::warn("event not published: {}", st.ToString());
}

void EventEmitter::Frame(const FrameView& view) {
    for (const auto& o : observers_) o->OnFrame(view);
}

void EventEmitter::FaceItems(const std::vector<FaceItem>& items) {
    for (const auto& o : observers_) o->OnFaceItems(items);
}

void EventEmitter::StreamEnd() {
    for (const auto& o : observers_) o->OnStreamEnd();
}

}  // namespace fg::pipeline
