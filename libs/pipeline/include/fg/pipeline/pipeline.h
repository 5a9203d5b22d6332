// SPDX-License-Identifier: Apache-2.0
// The stream pipeline: for each stream a source thread and a processing thread running the
// stages (stream_processor.h): cadence (motion gate) -> detect + track -> face selection (best
// shots; FaceItem hand-off) -> recognition (batched embedding across streams, fusion, gallery
// decision) -> event emission. One shared embedding thread batches across streams.
//
//   auto p = fg::pipeline::Pipeline::Create(config, engine, gallery, sink);
//   (*p)->Start();  ...  (*p)->Stop();   // ends open tracks and flushes the sink
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/events/sink.h"
#include "fg/pipeline/config.h"
#include "fg/pipeline/event_emitter.h"
#include "fg/pipeline/models.h"

namespace fg::gallery {
class Gallery;
}

namespace fg::pipeline {

/// What SetStreams changed.
struct StreamsUpdate {
    int added = 0;      ///< new ids started
    int removed = 0;    ///< ids no longer wanted, stopped (their tracks ended)
    int restarted = 0;  ///< ids whose spec changed, stopped and started again
    int running = 0;
    std::vector<std::string> errors;  ///< streams that could not be started or stopped
};

/// Thread-safety: Start/Stop/AddStream/RemoveStream/SetStreams/Stats may be called from any
/// thread (serialised internally). Events are published from the stream threads.
class Pipeline {
  public:
    /// `identifier` may be null (faces are then tracked and reported unknown); `sink` may be
    /// null; `observers` see every stream's events and frames (on the stream threads).
    static Result<std::unique_ptr<Pipeline>> Create(
        PipelineConfig config, std::shared_ptr<ModelProvider> models,
        std::shared_ptr<Identifier> identifier, std::shared_ptr<events::Sink> sink,
        std::vector<std::shared_ptr<PipelineObserver>> observers = {});
    /// The same over an engine and an optional gallery (whose model must be the engine's).
    static Result<std::unique_ptr<Pipeline>> Create(PipelineConfig config,
                                                    std::shared_ptr<vision::Engine> engine,
                                                    std::shared_ptr<gallery::Gallery> gallery,
                                                    std::shared_ptr<events::Sink> sink);
    ~Pipeline();
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    /// Starts every configured stream.
    Status Start();
    /// Adds and starts a stream while running. AlreadyExists for a used id.
    Status AddStream(const StreamSpec& spec);
    /// Stops a stream (its open tracks end with track_ended). NotFound for an unknown id.
    Status RemoveStream(const std::string& id);
    /// Makes the running streams exactly `wanted` (a config reload): ids no longer wanted are
    /// removed, new ones started, changed ones restarted; unchanged streams keep running
    /// (their tracks, their connection). Invalid specs change nothing (InvalidArgument).
    Result<StreamsUpdate> SetStreams(const std::vector<StreamSpec>& wanted);
    /// True once every stream's source is exhausted and its frames processed (files).
    bool Finished() const;
    /// Blocks until Finished() or the timeout; true if finished.
    bool WaitFinished(std::chrono::milliseconds timeout) const;
    /// Stops every stream, ends open tracks (track_ended), flushes the sink (bounded).
    void Stop();
    PipelineStats Stats() const;

    struct Impl;

  private:
    explicit Pipeline(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace fg::pipeline
