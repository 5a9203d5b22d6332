// SPDX-License-Identifier: Apache-2.0
// Stage 5: event emission. Turns track starts, recognition outcomes, track ends and source
// states into versioned events (libs/events), stamped with the time their frame arrived, and
// hands them to the sink and to observers (the annotated-video writer, a live view).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fg/events/event.h"
#include "fg/events/sink.h"
#include "fg/pipeline/face_item.h"
#include "fg/pipeline/recognition.h"
#include "fg/stream/frame.h"
#include "fg/track/tracker.h"
#include "fg/vision/detector.h"

namespace fg::pipeline {

/// Where one frame's processing time went, in milliseconds (0 for a stage that did not run).
/// `queue_ms`: from the frame's arrival (decoder output) to the start of its processing.
struct StageTimes {
    double queue_ms = 0;
    double gate_ms = 0;
    double detect_ms = 0;
    double track_ms = 0;
    double select_ms = 0;   ///< align, quality, liveness
    double embed_ms = 0;    ///< including the wait for the shared embedding thread
    double search_ms = 0;   ///< gallery identification
    double total_ms = 0;    ///< arrival to the end of processing (events emitted)
    bool detected = false;
    bool gated = false;
};

/// What a processed frame showed, for observers.
struct FrameView {
    const stream::Frame* frame = nullptr;
    /// Default mode: every live track after this frame.
    const std::vector<track::Track>* tracks = nullptr;
    /// Naive mode: every face and its label ("" = not recognised).
    const std::vector<vision::FaceDetection>* faces = nullptr;
    const std::vector<std::string>* face_labels = nullptr;
    const StageTimes* times = nullptr;
};

/// Watches a stream: every event it emits and every frame it processed. Called on the stream's
/// processing thread; must be quick (or hand off).
class PipelineObserver {
  public:
    virtual ~PipelineObserver() = default;
    virtual void OnEvent(const events::Event& /*event*/) {}
    virtual void OnFrame(const FrameView& /*view*/) {}
    /// A track decision (recognized, unknown, spoof) with what OnEvent's event leaves out: the
    /// fused embedding and the best-shot crop (Outcome). Called before OnEvent of its event.
    virtual void OnDecision(const std::string& /*stream_id*/, const Outcome& /*outcome*/) {}
    /// The face items face selection chose in one frame (the best shots, aligned), before any
    /// recognition: the hand-off `facegate edge` publishes on the bus.
    virtual void OnFaceItems(const std::vector<FaceItem>& /*items*/) {}
    /// The stream ends (its thread is about to finish): flush what is open.
    virtual void OnStreamEnd() {}
};

/// Thread-safety: everything runs on the stream's thread except SourceState (the source's
/// thread) and count() (any thread); the sink and observers must accept that.
class EventEmitter {
  public:
    EventEmitter(std::string stream_id, std::shared_ptr<events::Sink> sink,
                 std::vector<std::shared_ptr<PipelineObserver>> observers)
        : stream_id_(std::move(stream_id)), sink_(std::move(sink)), observers_(std::move(observers)) {}

    void TrackStarted(const track::Track& t, std::int64_t frame_index, std::int64_t unix_ms);
    void Decision(const Outcome& o);
    /// `subject_id`: the track's final identity ("" = unknown or never decided).
    void TrackEnded(const track::Track& t, std::int64_t duration_ms, std::string subject_id,
                    std::int64_t frame_index, std::int64_t unix_ms);
    /// Any face event (counted in count()).
    void Publish(events::Event e);
    /// A stream_state event (not counted: it is about the source, not about faces).
    void SourceState(const events::Event& e);
    void Frame(const FrameView& view);
    void FaceItems(const std::vector<FaceItem>& items);
    void StreamEnd();
    std::uint64_t count() const { return count_; }

  private:
    void Send(const events::Event& e);

    std::string stream_id_;
    std::shared_ptr<events::Sink> sink_;
    std::vector<std::shared_ptr<PipelineObserver>> observers_;
    std::atomic<std::uint64_t> count_{0};
};

}  // namespace fg::pipeline
