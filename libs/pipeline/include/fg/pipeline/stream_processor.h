// SPDX-License-Identifier: Apache-2.0
// One stream's stages in order, fed one frame at a time: cadence -> detect + track -> face
// selection -> recognition -> event emission (or the naive processor). No threads and no
// source: Pipeline runs one per stream on the stream's thread, and tests feed frames directly.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/events/sink.h"
#include "fg/pipeline/config.h"
#include "fg/pipeline/embed_batcher.h"
#include "fg/pipeline/event_emitter.h"
#include "fg/pipeline/face_selection.h"
#include "fg/pipeline/face_tracking.h"
#include "fg/pipeline/frame_cadence.h"
#include "fg/pipeline/models.h"
#include "fg/pipeline/naive.h"
#include "fg/pipeline/recognition.h"
#include "fg/stream/frame.h"

namespace fg::pipeline {

/// What every stream of one pipeline shares. All members are thread-safe; they outlive the
/// processors.
struct StreamContext {
    const ModelProvider* models = nullptr;
    EmbedBatcher* embedder = nullptr;
    std::string model_id;                   ///< the embedder's model
    const Identifier* identifier = nullptr;  ///< null: every face is unknown
    std::shared_ptr<events::Sink> sink;      ///< may be null
    std::vector<std::shared_ptr<PipelineObserver>> observers;
    /// Called with every subject recognised (any thread).
    std::function<void(const std::string&)> on_identity;
};

/// Thread-safety: Process/Stall/End on one thread (the stream's); Stats and the latency
/// getters from any thread; emitter().SourceState from the source's thread.
class StreamProcessor {
  public:
    using Clock = std::chrono::steady_clock;

    static Result<std::unique_ptr<StreamProcessor>> Create(const PipelineConfig& config,
                                                           const StreamSpec& spec,
                                                           const StreamContext& context);

    /// Runs the stages on one frame that arrived at `arrival` (latency starts there).
    Status Process(const stream::Frame& frame, Clock::time_point arrival);
    /// The camera stalled: its faces are not in view any more. Ends the tracks; the next frame
    /// is a fresh look (detected at once, against a new background).
    void Stall();
    /// The stream ends: ends open tracks (track_ended) and tells the observers.
    void End();
    bool HasTracks() const { return tracking_ && tracking_->HasTracks(); }

    EventEmitter& emitter() { return emitter_; }
    StreamRunStats Stats() const;
    std::vector<double> Latencies() const;
    std::vector<double> RecognizedLatencies() const;

  private:
    StreamProcessor(const PipelineConfig& config, const StreamSpec& spec, const StreamContext& context);
    std::int64_t StreamMs(const stream::Frame& f);
    void EndTracks(const track::TrackerStep& step);
    void Announce(const RecognitionStep& step, Clock::time_point arrival);

    PipelineConfig config_;
    StreamSpec spec_;
    StreamContext context_;
    EventEmitter emitter_;
    std::optional<FrameCadence> cadence_;
    std::unique_ptr<FaceTracking> tracking_;
    std::unique_ptr<FaceSelector> selector_;
    std::unique_ptr<Recognizer> recognizer_;
    std::unique_ptr<NaiveProcessor> naive_;

    // Stream time and the frame being processed.
    std::uint32_t generation_ = 0;
    std::int64_t generation_offset_ms_ = 0;
    std::int64_t last_ms_ = 0;
    std::int64_t last_step_ms_ = 1;
    std::uint64_t frames_in_generation_ = 0;
    std::int64_t last_frame_index_ = 0;
    std::int64_t frame_unix_ms_ = 0;
    Clock::time_point start_{};
    std::int64_t first_media_ms_ = 0;

    mutable std::mutex stats_mu_;
    StreamRunStats stats_;
    static constexpr std::size_t kLatencySamples = 1 << 16;  // ~45 min at 25 fps
    std::vector<double> latencies_;
    std::size_t latency_next_ = 0;
    std::vector<double> recognized_latencies_;  // the first kLatencySamples
};

}  // namespace fg::pipeline
