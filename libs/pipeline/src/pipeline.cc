// SPDX-License-Identifier: Apache-2.0
// The pipeline's threads: per stream a source (its own decoder thread) and a processing thread
// that feeds the stream's StreamProcessor; one shared embedding thread (EmbedBatcher). The
// stages themselves live in stream_processor.cc and the files it names.
#include "fg/pipeline/pipeline.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "annotated_video.h"
#include "fg/base/log.h"
#include "fg/pipeline/embed_batcher.h"
#include "fg/pipeline/stream_processor.h"

namespace fg::pipeline {

Status PipelineConfig::Validate() const {
    if (detect_interval < 1) return InvalidArgument("detect_interval must be >= 1");
    if (settled_detect_interval < detect_interval) {
        return InvalidArgument("settled_detect_interval must be >= detect_interval");
    }
    if (embed_batch < 1) return InvalidArgument("embed_batch must be >= 1");
    if (!(face_score_threshold >= 0.f && face_score_threshold <= 1.f)) {
        return InvalidArgument("face_score_threshold must be in [0, 1]");
    }
    if (track_timeout.count() < 0) return InvalidArgument("track_timeout_ms must be >= 0");
    if (!(liveness_threshold >= 0.f && liveness_threshold <= 1.f)) {
        return InvalidArgument("liveness.threshold must be in [0, 1]");
    }
    if (liveness_min_frames < 1) return InvalidArgument("liveness.min_frames must be >= 1");
    if (!(draw_fps > 0)) return InvalidArgument("draw_fps must be > 0");
    FG_RETURN_IF_ERROR(tracker.Validate().WithContext("tracker"));
    FG_RETURN_IF_ERROR(recognition.Validate());
    return ValidateStreams(streams);
}

Status ValidateStreams(const std::vector<StreamSpec>& streams) {
    std::set<std::string> ids;
    for (std::size_t i = 0; i < streams.size(); ++i) {
        const std::string where = "streams[" + std::to_string(i) + "]";
        if (streams[i].source.id.empty()) return InvalidArgument(where + ".id must not be empty");
        if (!ids.insert(streams[i].source.id).second) {
            return InvalidArgument(where + ".id '" + streams[i].source.id + "' is used twice");
        }
        FG_RETURN_IF_ERROR(ValidateStream(streams[i]).WithContext(where));
    }
    return Status::Ok();
}

Status ValidateStream(const StreamSpec& spec) {
    FG_RETURN_IF_ERROR(spec.source.Validate());
    if (spec.motion_gate) FG_RETURN_IF_ERROR(spec.motion.Validate().WithContext("motion"));
    return Status::Ok();
}

namespace {

using Clock = std::chrono::steady_clock;

/// Shared by every stream of one pipeline.
struct Shared {
    PipelineConfig config;
    std::shared_ptr<ModelProvider> models;
    std::shared_ptr<Identifier> identifier;
    std::shared_ptr<events::Sink> sink;
    std::vector<std::shared_ptr<PipelineObserver>> observers;
    std::unique_ptr<EmbedBatcher> batcher;
    std::string model_id;
    std::mutex identities_mu;
    std::set<std::string> identities;

    StreamContext ContextFor(const StreamSpec& spec) {
        StreamContext c;
        c.models = models.get();
        c.embedder = batcher.get();
        c.model_id = model_id;
        c.identifier = identifier.get();
        c.sink = sink;
        c.observers = observers;
        if (!config.draw_dir.empty()) {
            c.observers.push_back(
                std::make_shared<AnnotatedVideoWriter>(config.draw_dir, spec.source.id, config.draw_fps));
        }
        c.on_identity = [this](const std::string& id) {
            std::lock_guard lock(identities_mu);
            identities.insert(id);
        };
        return c;
    }
};

}  // namespace

/// One stream: its source, and the thread that feeds its frames to the stages.
class StreamWorker {
  public:
    StreamWorker(Shared& shared, StreamSpec spec) : shared_(shared), spec_(std::move(spec)) {}
    ~StreamWorker() { Stop(); }

    Status Start() {
        FG_ASSIGN_OR_RETURN(processor_,
                            StreamProcessor::Create(shared_.config, spec_, shared_.ContextFor(spec_)));
        stream::Source::Callbacks cb;
        // Safe to capture `this`: no callback runs after source_->Stop(), which precedes our end.
        cb.on_state = [this](const stream::StateChange& c) {
            events::Event e = events::MakeEvent(
                id(), events::StreamState{std::string(stream::SourceStateName(c.state)), c.error});
            // The decoder reaches the end of a file while frames are still queued: "ended" (or
            // "failed") is published after the stream's last track_ended, not before it.
            if (c.state == stream::SourceState::kEnded || c.state == stream::SourceState::kFailed) {
                std::lock_guard lock(end_mu_);
                if (!loop_done_) {
                    deferred_end_ = std::move(e);
                    return;
                }
            }
            processor_->emitter().SourceState(e);
        };
        FG_ASSIGN_OR_RETURN(source_, stream::Source::Create(spec_.source, std::move(cb)));
        thread_ = std::thread([this] { Loop(); });
        return Status::Ok();
    }

    void Stop() {
        stop_ = true;
        if (source_) source_->RequestStop();
        if (thread_.joinable()) thread_.join();
        if (source_) source_->Stop();
    }

    bool Finished() const { return finished_; }
    const std::string& id() const { return spec_.source.id; }
    const StreamSpec& spec() const { return spec_; }

    StreamRunStats Stats() const {
        StreamRunStats s = processor_->Stats();
        if (source_) s.source = source_->Stats();
        return s;
    }
    std::vector<double> Latencies() const { return processor_->Latencies(); }
    std::vector<double> RecognizedLatencies() const { return processor_->RecognizedLatencies(); }

  private:
    void Loop() {
        Clock::time_point last_frame = Clock::now();
        while (!stop_) {
            std::optional<stream::Frame> f = source_->WaitPop(std::chrono::milliseconds(100));
            if (!f) {
                if (source_->Exhausted()) break;
                // A stalled camera: the faces of its last frame are not in view any more.
                const auto timeout = shared_.config.track_timeout;
                if (timeout.count() > 0 && Clock::now() - last_frame >= timeout &&
                    processor_->HasTracks()) {
                    spdlog::info("stream '{}': no frame for {} ms, ending its tracks", id(),
                                 timeout.count());
                    processor_->Stall();
                }
                continue;
            }
            last_frame = Clock::now();
            // A source that blocks its decoder (process_every_frame) stamps capture_time before
            // waiting for queue space, so a frame "arrives" only when it is taken; otherwise a
            // benchmark's latency would count up to two other frames' processing.
            const Clock::time_point arrival =
                spec_.source.process_every_frame ? Clock::now() : f->capture_time;
            Status st;
            try {
                st = processor_->Process(*f, arrival);
            } catch (const std::exception& e) {
                // An OpenCV or allocation error on one frame must not end the process (every
                // other stream with it): the frame is lost, the stream goes on.
                st = Internal(std::string("exception: ") + e.what());
            }
            if (!st.ok()) spdlog::warn("stream '{}': frame {}: {}", id(), f->sequence, st.ToString());
        }
        processor_->End();
        std::optional<events::Event> ended;
        {
            std::lock_guard lock(end_mu_);
            loop_done_ = true;
            ended = std::move(deferred_end_);
        }
        if (ended) processor_->emitter().SourceState(*ended);
        finished_ = true;
    }

    Shared& shared_;
    StreamSpec spec_;
    std::unique_ptr<StreamProcessor> processor_;
    std::unique_ptr<stream::Source> source_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> finished_{false};
    std::mutex end_mu_;
    bool loop_done_ = false;
    std::optional<events::Event> deferred_end_;
};

struct Pipeline::Impl {
    Shared shared;
    mutable std::mutex mu;
    std::vector<std::unique_ptr<StreamWorker>> streams;
    std::vector<StreamRunStats> removed;  // stats of streams removed while running
    std::vector<double> removed_latencies;
    std::vector<double> removed_recognized_latencies;
    bool started = false;
    bool stopped = false;

    /// Stops and forgets one stream; keeps its figures for Stats(). Called without `mu`.
    void Retire(std::unique_ptr<StreamWorker> w) {
        w->Stop();
        std::lock_guard lock(mu);
        removed.push_back(w->Stats());
        const auto lat = w->Latencies();
        removed_latencies.insert(removed_latencies.end(), lat.begin(), lat.end());
        const auto rlat = w->RecognizedLatencies();
        removed_recognized_latencies.insert(removed_recognized_latencies.end(), rlat.begin(), rlat.end());
    }
};

Result<std::unique_ptr<Pipeline>> Pipeline::Create(
    PipelineConfig config, std::shared_ptr<ModelProvider> models,
    std::shared_ptr<Identifier> identifier, std::shared_ptr<events::Sink> sink,
    std::vector<std::shared_ptr<PipelineObserver>> observers) {
    FG_RETURN_IF_ERROR(config.Validate());
    if (!models) return InvalidArgument("pipeline: no models");
    auto impl = std::make_unique<Impl>();
    Shared& s = impl->shared;
    s.config = std::move(config);
    s.models = std::move(models);
    s.identifier = std::move(identifier);
    s.sink = std::move(sink);
    s.observers = std::move(observers);
    s.model_id = s.models->embedder_model_id();
    FG_ASSIGN_OR_RETURN(s.batcher, EmbedBatcher::Create(*s.models, s.config.embed_batch));
    if (s.config.liveness) {
        // Fail now rather than at the first stream: loads the models (the engine keeps them).
        Result<std::unique_ptr<vision::LivenessChecker>> check =
            s.models->CreateLivenessChecker(s.config.liveness_preset, s.config.liveness_threshold);
        if (!check.ok()) return check.status().WithContext("liveness");
    }
    return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

Result<std::unique_ptr<Pipeline>> Pipeline::Create(PipelineConfig config,
                                                   std::shared_ptr<vision::Engine> engine,
                                                   std::shared_ptr<gallery::Gallery> gallery,
                                                   std::shared_ptr<events::Sink> sink) {
    if (!engine) return InvalidArgument("pipeline: no engine");
    FG_ASSIGN_OR_RETURN(std::shared_ptr<ModelProvider> models, MakeEngineModels(std::move(engine)));
    std::shared_ptr<Identifier> identifier;
    if (gallery) {
        FG_ASSIGN_OR_RETURN(identifier,
                            MakeGalleryIdentifier(std::move(gallery), models->embedder_model_id()));
    }
    return Create(std::move(config), std::move(models), std::move(identifier), std::move(sink));
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() { Stop(); }

Status Pipeline::Start() {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return FailedPrecondition("pipeline stopped");
    if (impl_->started) return Status::Ok();
    impl_->started = true;
    for (const StreamSpec& spec : impl_->shared.config.streams) {
        auto w = std::make_unique<StreamWorker>(impl_->shared, spec);
        FG_RETURN_IF_ERROR(w->Start().WithContext("stream '" + spec.source.id + "'"));
        impl_->streams.push_back(std::move(w));
    }
    return Status::Ok();
}

Status Pipeline::AddStream(const StreamSpec& spec) {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return FailedPrecondition("pipeline stopped");
    for (const auto& s : impl_->streams) {
        if (s->id() == spec.source.id) {
            return AlreadyExists("stream '" + spec.source.id + "' exists");
        }
    }
    FG_RETURN_IF_ERROR(ValidateStream(spec));
    auto w = std::make_unique<StreamWorker>(impl_->shared, spec);
    FG_RETURN_IF_ERROR(w->Start().WithContext("stream '" + spec.source.id + "'"));
    impl_->streams.push_back(std::move(w));
    return Status::Ok();
}

Status Pipeline::RemoveStream(const std::string& id) {
    std::unique_ptr<StreamWorker> w;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopped) return FailedPrecondition("pipeline stopped");
        auto it = std::find_if(impl_->streams.begin(), impl_->streams.end(),
                               [&](const auto& s) { return s->id() == id; });
        if (it == impl_->streams.end()) return NotFound("stream '" + id + "' not found");
        w = std::move(*it);
        impl_->streams.erase(it);
    }
    impl_->Retire(std::move(w));
    return Status::Ok();
}

Result<StreamsUpdate> Pipeline::SetStreams(const std::vector<StreamSpec>& wanted) {
    FG_RETURN_IF_ERROR(ValidateStreams(wanted));
    std::map<std::string, const StreamSpec*> want;
    for (const StreamSpec& s : wanted) want[s.source.id] = &s;
    std::vector<std::string> to_remove;
    std::set<std::string> changed;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopped) return FailedPrecondition("pipeline stopped");
        for (const auto& w : impl_->streams) {
            const auto it = want.find(w->id());
            if (it == want.end() || !(*it->second == w->spec())) to_remove.push_back(w->id());
            if (it != want.end() && !(*it->second == w->spec())) changed.insert(w->id());
        }
    }
    StreamsUpdate u;
    for (const std::string& id : to_remove) {
        if (Status st = RemoveStream(id); !st.ok()) {
            u.errors.push_back("removing stream '" + id + "': " + st.ToString());
            continue;
        }
        changed.count(id) ? ++u.restarted : ++u.removed;
    }
    for (const StreamSpec& s : wanted) {
        Status st = AddStream(s);
        if (st.code() == StatusCode::kAlreadyExists) continue;  // unchanged, still running
        if (!st.ok()) {
            u.errors.push_back("stream '" + s.source.id + "' not started: " + st.ToString());
            continue;
        }
        if (!changed.count(s.source.id)) ++u.added;
    }
    std::lock_guard lock(impl_->mu);
    u.running = static_cast<int>(impl_->streams.size());
    return u;
}

bool Pipeline::Finished() const {
    std::lock_guard lock(impl_->mu);
    return std::all_of(impl_->streams.begin(), impl_->streams.end(),
                       [](const auto& s) { return s->Finished(); });
}

bool Pipeline::WaitFinished(std::chrono::milliseconds timeout) const {
    const auto until = Clock::now() + timeout;
    while (!Finished()) {
        if (Clock::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

void Pipeline::Stop() {
    {
        // Marking stopped under the lock makes RemoveStream/SetStreams refuse from here on, so
        // no worker is destroyed while we stop it (they stay owned by `streams`).
        std::lock_guard lock(impl_->mu);
        if (impl_->stopped) return;
        impl_->stopped = true;
    }
    for (auto& s : impl_->streams) s->Stop();  // ends open tracks
    if (impl_->shared.batcher) impl_->shared.batcher->Stop();
    if (impl_->shared.sink) {
        const Status st = events::FlushFor(*impl_->shared.sink, std::chrono::milliseconds(3000));
        if (!st.ok()) spdlog::warn("events not flushed: {}", st.ToString());
    }
}

PipelineStats Pipeline::Stats() const {
    std::lock_guard lock(impl_->mu);
    PipelineStats p;
    std::vector<double> all = impl_->removed_latencies;
    std::vector<double> all_recognized = impl_->removed_recognized_latencies;
    p.streams = impl_->removed;
    for (const auto& s : impl_->streams) {
        p.streams.push_back(s->Stats());
        const auto lat = s->Latencies();
        all.insert(all.end(), lat.begin(), lat.end());
        const auto rlat = s->RecognizedLatencies();
        all_recognized.insert(all_recognized.end(), rlat.begin(), rlat.end());
    }
    p.recognized_latency = SummarizeLatencies(std::move(all_recognized));
    for (const auto& s : p.streams) {
        p.frames += s.frames;
        p.detector_runs += s.detector_runs;
        p.gated += s.gated;
        p.embeddings += s.embeddings;
        p.events += s.events;
    }
    if (impl_->shared.batcher) p.embed_batches = impl_->shared.batcher->stats().batches;
    p.latency = SummarizeLatencies(std::move(all));
    std::lock_guard ilock(impl_->shared.identities_mu);
    p.identities = impl_->shared.identities;
    return p;
}

}  // namespace fg::pipeline
