// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/stream_processor.h"

#include <algorithm>

#include "fg/base/log.h"

namespace fg::pipeline {
namespace {

LatencySummary Summarize(std::vector<double> ms) {
    LatencySummary s;
    s.samples = ms.size();
    if (ms.empty()) return s;
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) {
        const std::size_t i = std::min(ms.size() - 1, static_cast<std::size_t>(q * (ms.size() - 1) + 0.5));
        return ms[i];
    };
    s.p50_ms = at(0.50);
    s.p99_ms = at(0.99);
    return s;
}

/// What counts as a face: the pipeline's own threshold, or the engine's.
float FaceScoreThreshold(const PipelineConfig& config, const ModelProvider& models) {
    return config.face_score_threshold > 0.f ? config.face_score_threshold
                                             : models.detector_threshold();
}

/// The tracker's second stage needs the weaker detections (a face turning away, motion blur)
/// that the face threshold drops: the default mode's detectors run down to tracker.low_thresh.
/// The naive baseline has no tracker and keeps the face threshold.
float DetectorThreshold(const PipelineConfig& config, const ModelProvider& models) {
    const float face = FaceScoreThreshold(config, models);
    return config.mode == PipelineMode::kDefault ? std::min(face, config.tracker.low_thresh) : face;
}

}  // namespace

LatencySummary SummarizeLatencies(std::vector<double> ms) { return Summarize(std::move(ms)); }

StreamProcessor::StreamProcessor(const PipelineConfig& config, const StreamSpec& spec,
                                 const StreamContext& context)
    : config_(config),
      spec_(spec),
      context_(context),
      emitter_(spec.source.id, context.sink, context.observers) {}

Result<std::unique_ptr<StreamProcessor>> StreamProcessor::Create(const PipelineConfig& config,
                                                                 const StreamSpec& spec,
                                                                 const StreamContext& context) {
    if (!context.models || !context.embedder) {
        return InvalidArgument("stream processor: no models or embedder");
    }
    std::unique_ptr<StreamProcessor> p(new StreamProcessor(config, spec, context));
    const ModelProvider& models = *context.models;
    if (config.mode == PipelineMode::kNaive) {
        FG_ASSIGN_OR_RETURN(p->naive_, NaiveProcessor::Create(models, DetectorThreshold(config, models), *context.embedder,
                                                              context.model_id, context.identifier));
        return p;
    }
    CadenceConfig cc{config.detect_interval, config.settled_detect_interval, std::nullopt};
    if (spec.motion_gate) cc.motion = spec.motion;
    FG_ASSIGN_OR_RETURN(FrameCadence cadence, FrameCadence::Create(cc));
    p->cadence_.emplace(std::move(cadence));
    FG_ASSIGN_OR_RETURN(p->tracking_,
                        FaceTracking::Create(models, DetectorThreshold(config, models), config.tracker));
    std::unique_ptr<vision::LivenessChecker> liveness;
    if (config.liveness) {
        FG_ASSIGN_OR_RETURN(liveness, models.CreateLivenessChecker(config.liveness_preset,
                                                                   config.liveness_threshold));
    }
    SelectionConfig sc{FaceScoreThreshold(config, models), config.recognition,
                       config.liveness_threshold, config.liveness_min_frames};
    p->selector_ = std::make_unique<FaceSelector>(sc, models, std::move(liveness));
    p->recognizer_ = std::make_unique<Recognizer>(
        RecognizerConfig{config.recognition, config.best_shot_crops}, *context.embedder,
        context.model_id, context.identifier);
    return p;
}

std::int64_t StreamProcessor::StreamMs(const stream::Frame& f) {
    if (f.media_time) {
        const std::int64_t ms = f.media_time->count() / 1000 + generation_offset_ms_;
        // Stream time must not go back within a generation: FFmpeg gives the frames it drains
        // at the end of a file with B-frames position 0 (crowd_walking_1080p.mp4), which made
        // track durations negative. Step on at the last frame interval instead.
        if (frames_in_generation_ > 0 && ms <= last_ms_) return last_ms_ + last_step_ms_;
        if (frames_in_generation_ > 0) last_step_ms_ = ms - last_ms_;
        return ms;
    }
    if (start_ == Clock::time_point{}) start_ = f.capture_time;
    return std::chrono::duration_cast<std::chrono::milliseconds>(f.capture_time - start_).count();
}

Status StreamProcessor::Process(const stream::Frame& f, Clock::time_point arrival) {
    // Events of this frame carry its arrival time mapped onto the wall clock.
    frame_unix_ms_ = events::NowUnixMs() -
                     std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - arrival).count();
    if (f.generation != generation_) {
        // Reconnect or file loop: a new picture, so nothing carries over.
        if (tracking_) EndTracks(tracking_->EndAll());
        if (cadence_) cadence_->ResetBackground();
        generation_offset_ms_ = last_ms_ + 1;
        frames_in_generation_ = 0;
        generation_ = f.generation;
    }
    const std::int64_t now_ms = StreamMs(f);
    last_ms_ = now_ms;
    ++frames_in_generation_;
    const auto frame_index = static_cast<std::int64_t>(f.sequence);
    last_frame_index_ = frame_index;
    std::uint64_t embeddings = 0;
    StageTimes times;
    auto t = Clock::now();
    times.queue_ms = std::chrono::duration<double, std::milli>(t - arrival).count();
    // Milliseconds since the last lap, for the stage timings.
    auto lap = [&t] {
        const auto now = Clock::now();
        const double ms = std::chrono::duration<double, std::milli>(now - t).count();
        t = now;
        return ms;
    };

    if (naive_) {
        FG_ASSIGN_OR_RETURN(NaiveFrame nf, naive_->Process(f.image));
        times.detect_ms = lap();  // detection, alignment, embedding and search together
        times.detected = true;
        embeddings = nf.embedded;
        if (context_.on_identity) {
            for (const std::string& id : nf.identities) context_.on_identity(id);
        }
        times.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - arrival).count();
        emitter_.Frame({.frame = &f, .faces = &nf.faces, .face_labels = &nf.labels, .times = &times});
    } else {
        const CadenceDecision cd = cadence_->Next(f, tracking_->Following(), selector_->Settled());
        times.gate_ms = lap();
        times.detected = cd.detect;
        times.gated = cd.gated;
        FG_ASSIGN_OR_RETURN(TrackingResult tr, tracking_->Step(f.image, cd.detect));
        (cd.detect ? times.detect_ms : times.track_ms) = lap();  // the tracker's share is small
        for (const track::Track& tk : tr.step.started) emitter_.TrackStarted(tk, frame_index, frame_unix_ms_);
        {
            std::lock_guard lock(stats_mu_);
            stats_.tracks_started += tr.step.started.size();
        }
        const FrameContext fc{spec_.source.id, generation_, frame_index, now_ms, frame_unix_ms_};
        std::vector<FaceItem> items = selector_->Select(f.image, fc, tr);
        times.select_ms = lap();
        if (!items.empty()) emitter_.FaceItems(items);
        if (!items.empty() && config_.recognize) {
            FG_ASSIGN_OR_RETURN(RecognitionStep rs, recognizer_->Recognize(std::move(items)));
            lap();
            embeddings = rs.embedded;
            times.embed_ms = rs.embed_ms;
            times.search_ms = rs.search_ms;
            Announce(rs, arrival);
        }
        EndTracks(tr.step);
        times.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - arrival).count();
        emitter_.Frame({.frame = &f, .tracks = &tr.step.tracks, .times = &times});
    }
    const bool detected = times.detected;
    const bool gated = times.gated;

    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - arrival).count();
    std::lock_guard lock(stats_mu_);
    stats_.frames += 1;
    if (stats_.frames == 1) first_media_ms_ = now_ms;
    // A frame stands for the time until the next one: add one frame interval.
    stats_.media_seconds =
        static_cast<double>(now_ms - first_media_ms_ + std::max<std::int64_t>(1, last_step_ms_)) / 1000.0;
    stats_.detector_runs += detected ? 1 : 0;
    stats_.gated += gated ? 1 : 0;
    stats_.embeddings += embeddings;
    // The newest kLatencySamples only: a camera that runs for weeks must not grow memory.
    if (latencies_.size() < kLatencySamples) {
        latencies_.push_back(ms);
    } else {
        latencies_[latency_next_++ % kLatencySamples] = ms;
    }
    return Status::Ok();
}

void StreamProcessor::Announce(const RecognitionStep& step, Clock::time_point arrival) {
    for (const Outcome& o : step.outcomes) {
        emitter_.Decision(o);
        selector_->SetDecided(o.track_id, recognizer_->Decision(o.track_id) != TrackDecision::kPending);
        if (o.kind != Outcome::Kind::kRecognized) continue;
        if (context_.on_identity) context_.on_identity(o.verdict.subject_id);
        // Measured after the sinks took the event: that is when a consumer can act on it.
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - arrival).count();
        std::lock_guard lock(stats_mu_);
        if (recognized_latencies_.size() < kLatencySamples) recognized_latencies_.push_back(ms);
    }
}

void StreamProcessor::EndTracks(const track::TrackerStep& step) {
    for (const track::Track& t : step.ended) {
        const auto [first, last] = selector_->Span(t.id);
        std::string subject = recognizer_->EndTrack(t.id);
        selector_->EndTrack(t.id);
        emitter_.TrackEnded(t, last - first, std::move(subject), last_frame_index_, frame_unix_ms_);
    }
}

void StreamProcessor::Stall() {
    if (!tracking_ || !tracking_->HasTracks()) return;
    frame_unix_ms_ = 0;  // no frame: the events carry the time they are sent
    EndTracks(tracking_->EndAll());
    selector_->Clear();
    recognizer_->Clear();
    cadence_->DetectNext();
    cadence_->ResetBackground();
}

void StreamProcessor::End() {
    frame_unix_ms_ = 0;
    if (tracking_) EndTracks(tracking_->EndAll());
    emitter_.StreamEnd();
}

StreamRunStats StreamProcessor::Stats() const {
    std::lock_guard lock(stats_mu_);
    StreamRunStats s = stats_;
    s.id = spec_.source.id;
    s.events = emitter_.count();
    s.latency = Summarize(latencies_);
    s.recognized_latency = Summarize(recognized_latencies_);
    return s;
}

std::vector<double> StreamProcessor::Latencies() const {
    std::lock_guard lock(stats_mu_);
    return latencies_;
}

std::vector<double> StreamProcessor::RecognizedLatencies() const {
    std::lock_guard lock(stats_mu_);
    return recognized_latencies_;
}

}  // namespace fg::pipeline
