// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "fg/base/log.h"
#include "fg/gallery/gallery.h"
#include "fg/image/align.h"
#include "fg/pipeline/embed_batcher.h"
#include "fg/vision/liveness.h"
#include "fg/vision/quality.h"

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
    std::set<std::string> ids;
    for (std::size_t i = 0; i < streams.size(); ++i) {
        const std::string where = "streams[" + std::to_string(i) + "]";
        if (streams[i].source.id.empty()) return InvalidArgument(where + ".id must not be empty");
        if (!ids.insert(streams[i].source.id).second) {
            return InvalidArgument(where + ".id '" + streams[i].source.id + "' is used twice");
        }
        FG_RETURN_IF_ERROR(streams[i].source.Validate().WithContext(where));
        if (streams[i].motion_gate) {
            FG_RETURN_IF_ERROR(streams[i].motion.Validate().WithContext(where + ".motion"));
        }
    }
    return Status::Ok();
}

namespace {

using Clock = std::chrono::steady_clock;

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

events::Box ToEventBox(const track::Box& b) { return {b.x1, b.y1, b.x2, b.y2}; }
track::Box ToTrackBox(const Rect2f& r) { return {r.x, r.y, r.x + r.width, r.y + r.height}; }

std::string JpegBase64(const cv::Mat& bgr) {
    std::vector<uchar> buf;
    if (bgr.empty() || !cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, 90})) return {};
    return events::Base64Encode(buf);
}

}  // namespace

/// Shared by every stream of one pipeline.
struct Shared {
    PipelineConfig config;
    std::shared_ptr<vision::Engine> engine;
    std::shared_ptr<gallery::Gallery> gallery;
    std::shared_ptr<events::Sink> sink;
    std::unique_ptr<EmbedBatcher> batcher;
    std::shared_ptr<const vision::LivenessModel> liveness;
    std::string model_id;
    std::mutex identities_mu;
    std::set<std::string> identities;

    void Publish(const events::Event& e) {
        if (!sink) return;
        const Status st = sink->Publish(e);
        if (!st.ok()) spdlog::warn("event not published: {}", st.ToString());
    }
};

/// Everything about one track the pipeline remembers beyond the tracker.
struct TrackInfo {
    explicit TrackInfo(const RecognitionPolicy& p, float live_thr, int live_min)
        : recognition(p), liveness(live_thr, 15, live_min) {}
    TrackRecognition recognition;
    vision::LivenessTrackFusion liveness;
    bool spoof_announced = false;
    std::int64_t first_ms = 0;
    std::int64_t last_ms = 0;
    cv::Mat best_shot;
    float best_shot_quality = -1.f;
    std::string label;  // for drawing
};

/// One stream: its source, motion gate, tracker and processing thread.
class StreamWorker {
  public:
    StreamWorker(Shared& shared, StreamSpec spec) : shared_(shared), spec_(std::move(spec)) {}
    ~StreamWorker() { Stop(); }

    Status Start() {
        FG_ASSIGN_OR_RETURN(worker_, shared_.engine->CreateWorker());
        FG_ASSIGN_OR_RETURN(tracker_, track::Tracker::Create(shared_.config.tracker));
        if (spec_.motion_gate) {
            FG_ASSIGN_OR_RETURN(stream::MotionGate gate, stream::MotionGate::Create(spec_.motion));
            gate_ = std::make_unique<stream::MotionGate>(std::move(gate));
        }
        if (shared_.liveness) {
            vision::LivenessConfig lc;
            lc.threshold = shared_.config.liveness_threshold;
            FG_ASSIGN_OR_RETURN(liveness_, shared_.liveness->CreateChecker(lc));
        }
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
            shared_.Publish(e);
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

    StreamRunStats Stats() const {
        std::lock_guard lock(stats_mu_);
        StreamRunStats s = stats_;
        s.id = id();  // also for a stream that never produced a frame
        s.latency = Summarize(latencies_);
        s.recognized_latency = Summarize(recognized_latencies_);
        if (source_) s.source = source_->Stats();
        return s;
    }
    std::vector<double> Latencies() const {
        std::lock_guard lock(stats_mu_);
        return latencies_;
    }
    std::vector<double> RecognizedLatencies() const {
        std::lock_guard lock(stats_mu_);
        return recognized_latencies_;
    }

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
                    !tracker_->tracks().empty()) {
                    spdlog::info("stream '{}': no frame for {} ms, ending its tracks", id(),
                                 timeout.count());
                    EndTracks(tracker_->EndAll(), last_frame_index_);
                    tracks_.clear();
                    // The next frame, whenever it comes, is a fresh look: detect at once,
                    // against a new background (the old one is from before the gap).
                    frames_since_detect_ = 1 << 20;
                    if (gate_) gate_->Reset();
                }
                continue;
            }
            last_frame = Clock::now();
            // A source that blocks its decoder (process_every_frame) stamps capture_time before
            // waiting for queue space, so a frame "arrives" only when it is taken; otherwise a
            // benchmark's latency would count up to two other frames' processing.
            const Clock::time_point arrival =
                spec_.source.process_every_frame ? Clock::now() : f->capture_time;
            const Status st = Process(*f, arrival);
            if (!st.ok()) spdlog::warn("stream '{}': frame {}: {}", id(), f->sequence, st.ToString());
        }
        EndTracks(tracker_->EndAll(), last_frame_index_);
        if (writer_.isOpened()) writer_.release();
        std::optional<events::Event> ended;
        {
            std::lock_guard lock(end_mu_);
            loop_done_ = true;
            ended = std::move(deferred_end_);
        }
        if (ended) shared_.Publish(*ended);
        finished_ = true;
    }

    std::int64_t StreamMs(const stream::Frame& f) {
        if (f.media_time) {
            const std::int64_t ms = f.media_time->count() / 1000 + generation_offset_ms_;
            // Stream time must not go back within a generation: FFmpeg gives the frames it
            // drains at the end of a file with B-frames position 0 (crowd_walking_1080p.mp4),
            // which made track durations negative. Step on at the last frame interval instead.
            if (frames_in_generation_ > 0 && ms <= last_ms_) return last_ms_ + last_step_ms_;
            if (frames_in_generation_ > 0) last_step_ms_ = ms - last_ms_;
            return ms;
        }
        if (start_ == Clock::time_point{}) start_ = f.capture_time;
        return std::chrono::duration_cast<std::chrono::milliseconds>(f.capture_time - start_).count();
    }

    Status Process(const stream::Frame& f, Clock::time_point arrival) {
        // Events of this frame carry its arrival time, not the moment they were sent: a
        // consumer correlating events with video (or with another camera) needs when it was
        // seen. The steady arrival is mapped onto the wall clock once per frame.
        frame_arrival_ = arrival;
        frame_unix_ms_ =
            events::NowUnixMs() -
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - arrival).count();
        struct ClearFrame {
            StreamWorker* w;
            ~ClearFrame() { w->frame_unix_ms_ = 0; }
        } clear_frame{this};
        if (f.generation != generation_) {
            // Reconnect or file loop: a new picture, so nothing carries over.
            EndTracks(tracker_->EndAll(), last_frame_index_);
            tracks_.clear();
            if (gate_) gate_->Reset();
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
        bool detected = false;
        bool gated = false;

        std::vector<vision::FaceDetection> dets;
        track::TrackerStep step;
        if (shared_.config.mode == PipelineMode::kNaive) {
            FG_ASSIGN_OR_RETURN(dets, worker_->Detect(f.image));
            // The naive baseline recognises faces only: no tracker uses weaker detections.
            std::erase_if(dets, [&](const vision::FaceDetection& d) {
                return d.score < shared_.config.face_score_threshold;
            });
            detected = true;
            FG_ASSIGN_OR_RETURN(embeddings, ProcessNaive(f, dets));
        } else {
            ++frames_since_detect_;
            bool run = frames_since_detect_ >= DetectInterval();
            if (gate_) {
                const stream::GateDecision g = gate_->Update(f);
                // While faces are visibly tracked the detector keeps its cadence: a face that
                // stops moving must still be followed and its best shot taken. Lost tracks do
                // not count: a face coming back moves, and the gate lets it through.
                const auto tracks = tracker_->tracks();
                const bool following = std::any_of(tracks.begin(), tracks.end(), [](const auto& t) {
                    return t.state != track::TrackState::kLost;
                });
                if (!g.pass && !following) {
                    run = false;
                    gated = true;
                }
            }
            if (run) {
                FG_ASSIGN_OR_RETURN(dets, worker_->Detect(f.image));
                detected = true;
                frames_since_detect_ = 0;
                std::vector<track::Detection> td;
                td.reserve(dets.size());
                for (const auto& d : dets) td.push_back({ToTrackBox(d.box), d.score});
                step = tracker_->Update(td);
            } else {
                step = tracker_->Predict();
            }
            FG_ASSIGN_OR_RETURN(embeddings, ProcessTracks(f, now_ms, dets, step));
        }
        if (!shared_.config.draw_dir.empty()) Draw(f, dets, step);

        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - arrival).count();
        std::lock_guard lock(stats_mu_);
        stats_.id = id();
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

    /// The detector's cadence: relaxed while every followed face is already decided.
    int DetectInterval() const {
        if (tracks_.empty()) return shared_.config.detect_interval;
        for (const auto& [id, info] : tracks_) {
            if (info.recognition.decision() == TrackDecision::kPending && !info.spoof_announced) {
                return shared_.config.detect_interval;
            }
        }
        return shared_.config.settled_detect_interval;
    }

    Result<std::uint64_t> ProcessTracks(const stream::Frame& f, std::int64_t now_ms,
                                        const std::vector<vision::FaceDetection>& dets,
                                        const track::TrackerStep& step) {
        const auto frame_index = static_cast<std::int64_t>(f.sequence);
        for (const track::Track& t : step.started) {
            auto [it, inserted] = tracks_.try_emplace(t.id, shared_.config.recognition,
                                                      shared_.config.liveness_threshold,
                                                      shared_.config.liveness_min_frames);
            it->second.first_ms = now_ms;
            events::Event e = events::MakeEvent(id(), events::TrackStarted{t.score});
            e.track_id = t.id;
            e.frame_index = frame_index;
            e.box = ToEventBox(t.box);
            Emit(e);
            std::lock_guard lock(stats_mu_);
            stats_.tracks_started += 1;
        }

        // Faces of confirmed tracks matched in this frame, and which of them to embed.
        struct Pending {
            std::uint64_t track_id;
            int det;
            vision::QualityReport quality;
            cv::Mat aligned;
            track::Box box;
        };
        std::vector<Pending> pending;
        for (const track::Track& t : step.tracks) {
            if (t.state != track::TrackState::kConfirmed || t.detection_index < 0) continue;
            auto it = tracks_.find(t.id);
            if (it == tracks_.end()) continue;
            TrackInfo& info = it->second;
            info.last_ms = now_ms;
            const vision::FaceDetection& d = dets[static_cast<std::size_t>(t.detection_index)];
            // A weak detection kept the track alive (second stage); it is no face to judge.
            if (d.score < shared_.config.face_score_threshold) continue;
            Result<AlignedFace> aligned = AlignFace(f.image, d.landmarks);
            if (!aligned.ok()) continue;
            const vision::QualityReport q = vision::AssessQuality(d, aligned->image);
            if (liveness_ && !info.liveness.spoof()) {
                Result<vision::LivenessResult> lr = liveness_->Check(f.image, d);
                if (lr.ok()) info.liveness.Add(*lr);
                if (info.liveness.spoof() && !info.spoof_announced) {
                    info.spoof_announced = true;
                    events::Event e = events::MakeEvent(
                        id(), events::SpoofDetected{info.liveness.score(),
                                                    shared_.config.liveness_threshold});
                    e.track_id = t.id;
                    e.frame_index = frame_index;
                    e.box = ToEventBox(t.box);
                    Emit(e);
                    info.label = "SPOOF";
                }
            }
            if (info.spoof_announced) continue;  // never recognised, no more embeddings
            if (!info.recognition.OfferFace(q.score, now_ms)) continue;
            if (q.score > info.best_shot_quality) {
                info.best_shot_quality = q.score;
                info.best_shot = aligned->image.clone();
            }
            pending.push_back({t.id, t.detection_index, q, aligned->image, t.box});
        }

        std::uint64_t embedded = 0;
        if (!pending.empty()) {
            std::vector<cv::Mat> crops;
            for (const Pending& p : pending) crops.push_back(p.aligned);
            std::vector<vision::Embedding> embs;
            FG_RETURN_IF_ERROR(shared_.batcher->Embed(std::move(crops), embs));
            embedded = embs.size();
            for (std::size_t i = 0; i < pending.size() && i < embs.size(); ++i) {
                TrackInfo& info = tracks_.at(pending[i].track_id);
                info.recognition.AddEmbedding(embs[i].values, pending[i].quality.score, now_ms);
                Decide(info, pending[i].track_id, frame_index, pending[i].box);
            }
        }

        EndTracks(step, frame_index);
        return embedded;
    }

    void Decide(TrackInfo& info, std::uint64_t track_id, std::int64_t frame_index,
                const track::Box& box) {
        IdentityVerdict v;
        if (shared_.gallery) {
            vision::Embedding probe{shared_.model_id, info.recognition.fused()};
            Result<gallery::Identification> r = shared_.gallery->Identify(probe, 2);
            if (!r.ok()) {
                spdlog::warn("stream '{}': identify failed: {}", id(), r.status().ToString());
                return;
            }
            if (!r->candidates.empty()) {
                v.score = r->candidates[0].score;
                v.margin = r->candidates.size() > 1 ? r->candidates[0].score - r->candidates[1].score
                                                    : r->candidates[0].score;
                v.display_name = r->candidates[0].display_name;
            }
            v.known = r->known;
            if (r->known) v.subject_id = r->subject_id;
        }
        // A live decision waits for liveness when it is on: no door opens for a photo.
        if (v.known && liveness_ && !info.liveness.live()) return;
        const std::optional<TrackDecision> d = info.recognition.Decide(v);
        if (!d) return;
        const std::string crop =
            shared_.config.best_shot_crops ? JpegBase64(info.best_shot) : std::string();
        events::Event e;
        bool recognized = false;
        if (*d == TrackDecision::kRecognized) {
            events::Recognized p{v.subject_id, v.display_name, v.score, v.margin,
                                 info.best_shot_quality, info.recognition.faces_used(), crop};
            e = events::MakeEvent(id(), p);
            info.label = (v.display_name.empty() ? v.subject_id : v.display_name);
            {
                std::lock_guard lock(shared_.identities_mu);
                shared_.identities.insert(v.subject_id);
            }
            recognized = true;
        } else {
            events::UnknownFace p{v.score, info.best_shot_quality, info.recognition.faces_used(),
                                  crop};
            e = events::MakeEvent(id(), p);
            info.label = "unknown";
        }
        e.track_id = track_id;
        e.frame_index = frame_index;
        e.box = ToEventBox(box);
        Emit(e);
        if (recognized) {
            // Measured after the sinks took the event: that is when a consumer can act on it.
            const double ms =
                std::chrono::duration<double, std::milli>(Clock::now() - frame_arrival_).count();
            std::lock_guard lock(stats_mu_);
            if (recognized_latencies_.size() < kLatencySamples) recognized_latencies_.push_back(ms);
        }
    }

    void EndTracks(const track::TrackerStep& step, std::int64_t frame_index) {
        for (const track::Track& t : step.ended) {
            auto it = tracks_.find(t.id);
            events::TrackEnded p;
            p.frames = t.age + 1;
            p.hits = t.hits;
            if (it != tracks_.end()) {
                p.duration_ms = it->second.last_ms - it->second.first_ms;
                if (it->second.recognition.decision() == TrackDecision::kRecognized &&
                    !it->second.spoof_announced) {
                    p.subject_id = it->second.recognition.verdict().subject_id;
                }
                tracks_.erase(it);
            }
            events::Event e = events::MakeEvent(id(), p);
            e.track_id = t.id;
            e.frame_index = frame_index;
            e.box = ToEventBox(t.box);
            Emit(e);
        }
    }

    Result<std::uint64_t> ProcessNaive(const stream::Frame& f,
                                       const std::vector<vision::FaceDetection>& dets) {
        if (dets.empty()) return std::uint64_t{0};
        std::vector<cv::Mat> crops;
        for (const auto& d : dets) {
            Result<AlignedFace> a = AlignFace(f.image, d.landmarks);
            if (a.ok()) crops.push_back(a->image);
        }
        std::vector<vision::Embedding> embs;
        FG_RETURN_IF_ERROR(shared_.batcher->Embed(std::move(crops), embs));
        naive_labels_.assign(dets.size(), "");
        for (std::size_t i = 0; i < embs.size(); ++i) {
            if (!shared_.gallery) continue;
            Result<gallery::Identification> r = shared_.gallery->Identify(embs[i], 2);
            if (r.ok() && r->known) {
                std::lock_guard lock(shared_.identities_mu);
                shared_.identities.insert(r->subject_id);
                if (i < naive_labels_.size()) {
                    naive_labels_[i] = r->candidates.empty() ? r->subject_id
                                                             : r->candidates[0].display_name;
                }
            }
        }
        return static_cast<std::uint64_t>(embs.size());
    }

    void Emit(events::Event e) {
        if (frame_unix_ms_ != 0) e.timestamp_ms = frame_unix_ms_;
        shared_.Publish(e);
        std::lock_guard lock(stats_mu_);
        stats_.events += 1;
    }

    void Draw(const stream::Frame& f, const std::vector<vision::FaceDetection>& dets,
              const track::TrackerStep& step) {
        cv::Mat canvas = f.image.clone();
        auto label = [&](const cv::Rect& r, const std::string& text, const cv::Scalar& color) {
            cv::rectangle(canvas, r, color, 2);
            int base = 0;
            const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, 0.6, 2, &base);
            const cv::Point org(r.x, std::max(ts.height + 2, r.y - 4));
            cv::rectangle(canvas, org + cv::Point(0, base), org + cv::Point(ts.width, -ts.height - 2),
                          color, cv::FILLED);
            cv::putText(canvas, text, org, cv::FONT_HERSHEY_SIMPLEX, 0.6, {0, 0, 0}, 2);
        };
        if (shared_.config.mode == PipelineMode::kNaive) {
            for (std::size_t i = 0; i < dets.size(); ++i) {
                const auto& b = dets[i].box;
                const std::string name = i < naive_labels_.size() ? naive_labels_[i] : "";
                label(cv::Rect(cv::Point(int(b.x), int(b.y)), cv::Size(int(b.width), int(b.height))),
                      name.empty() ? "?" : name, name.empty() ? cv::Scalar(0, 200, 255) : cv::Scalar(0, 220, 0));
            }
        } else {
            for (const track::Track& t : step.tracks) {
                if (t.state == track::TrackState::kTentative) continue;
                auto it = tracks_.find(t.id);
                const std::string who = it == tracks_.end() ? "" : it->second.label;
                std::string text = "#" + std::to_string(t.id) + (who.empty() ? " ..." : " " + who);
                if (it != tracks_.end() &&
                    it->second.recognition.decision() == TrackDecision::kRecognized) {
                    char buf[16];
                    std::snprintf(buf, sizeof buf, " %.2f", it->second.recognition.verdict().score);
                    text += buf;
                }
                const cv::Scalar color = who == "SPOOF"     ? cv::Scalar(0, 0, 255)
                                         : who == "unknown" ? cv::Scalar(0, 200, 255)
                                         : who.empty()      ? cv::Scalar(200, 200, 200)
                                                            : cv::Scalar(0, 220, 0);
                label(cv::Rect(cv::Point(int(t.box.x1), int(t.box.y1)),
                               cv::Point(int(t.box.x2), int(t.box.y2))),
                      text, color);
            }
        }
        if (!writer_.isOpened()) {
            std::error_code ec;
            std::filesystem::create_directories(shared_.config.draw_dir, ec);
            const std::string path =
                (std::filesystem::path(shared_.config.draw_dir) / (id() + ".avi")).string();
            // MJPG in AVI: every Debian OpenCV build writes it, no codec licensing questions.
            if (!writer_.open(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'),
                              shared_.config.draw_fps, canvas.size())) {
                spdlog::warn("stream '{}': cannot write {}", id(), path);
                return;
            }
            writer_size_ = canvas.size();
        }
        // A video file has one frame size: after a resolution change, scale to the first one
        // (the writer would silently drop the frame otherwise).
        if (canvas.size() != writer_size_) cv::resize(canvas, canvas, writer_size_);
        writer_.write(canvas);
    }

    Shared& shared_;
    StreamSpec spec_;
    std::unique_ptr<vision::Worker> worker_;
    std::unique_ptr<track::Tracker> tracker_;
    std::unique_ptr<stream::MotionGate> gate_;
    std::unique_ptr<vision::LivenessChecker> liveness_;
    std::unique_ptr<stream::Source> source_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> finished_{false};
    std::mutex end_mu_;
    bool loop_done_ = false;
    std::optional<events::Event> deferred_end_;
    std::map<std::uint64_t, TrackInfo> tracks_;
    std::vector<std::string> naive_labels_;
    int frames_since_detect_ = 1 << 20;  // detect on the first frame
    std::uint32_t generation_ = 0;
    std::int64_t generation_offset_ms_ = 0;
    std::int64_t last_ms_ = 0;
    std::int64_t last_step_ms_ = 1;
    std::uint64_t frames_in_generation_ = 0;
    std::int64_t last_frame_index_ = 0;
    Clock::time_point start_{};
    cv::VideoWriter writer_;
    cv::Size writer_size_;
    mutable std::mutex stats_mu_;
    StreamRunStats stats_;
    static constexpr std::size_t kLatencySamples = 1 << 16;  // ~45 min at 25 fps
    std::vector<double> latencies_;
    std::size_t latency_next_ = 0;
    std::vector<double> recognized_latencies_;  // the first kLatencySamples
    std::int64_t first_media_ms_ = 0;
    Clock::time_point frame_arrival_{};
    std::int64_t frame_unix_ms_ = 0;  // the frame being processed; 0 outside Process
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
};

Result<std::unique_ptr<Pipeline>> Pipeline::Create(PipelineConfig config,
                                                   std::shared_ptr<vision::Engine> engine,
                                                   std::shared_ptr<gallery::Gallery> gallery,
                                                   std::shared_ptr<events::Sink> sink) {
    FG_RETURN_IF_ERROR(config.Validate());
    if (!engine) return InvalidArgument("pipeline: no engine");
    const vision::EmbedderInfo* emb = engine->embedder_info();
    if (emb == nullptr) return FailedPrecondition("pipeline: the engine has no embedder");
    if (gallery) {
        FG_ASSIGN_OR_RETURN(gallery::GalleryStats gs, gallery->Stats());
        if (!gs.model_id.empty() && gs.model_id != emb->model_id) {
            return FailedPrecondition("the gallery's templates come from model '" + gs.model_id +
                                      "' but the engine embeds with '" + emb->model_id +
                                      "': use the gallery's pack or re-embed the gallery");
        }
    }
    auto impl = std::make_unique<Impl>();
    impl->shared.config = std::move(config);
    impl->shared.engine = engine;
    impl->shared.gallery = std::move(gallery);
    impl->shared.sink = std::move(sink);
    impl->shared.model_id = emb->model_id;
    FG_ASSIGN_OR_RETURN(impl->shared.batcher,
                        EmbedBatcher::Create(engine, impl->shared.config.embed_batch));
    if (impl->shared.config.liveness) {
        FG_ASSIGN_OR_RETURN(std::shared_ptr<infer::Backend> backend,
                            infer::MakeBackend(engine->config().backend));
        const std::string preset = impl->shared.config.liveness_preset.empty()
                                       ? std::string(vision::DefaultLivenessPreset())
                                       : impl->shared.config.liveness_preset;
        auto model = vision::LoadLiveness(preset, engine->pack(), *backend);
        if (!model.ok()) return model.status().WithContext("liveness");
        impl->shared.liveness = *model;
    }
    return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
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
    FG_RETURN_IF_ERROR(spec.source.Validate());
    if (spec.motion_gate) FG_RETURN_IF_ERROR(spec.motion.Validate());
    auto w = std::make_unique<StreamWorker>(impl_->shared, spec);
    FG_RETURN_IF_ERROR(w->Start().WithContext("stream '" + spec.source.id + "'"));
    impl_->streams.push_back(std::move(w));
    return Status::Ok();
}

Status Pipeline::RemoveStream(const std::string& id) {
    std::unique_ptr<StreamWorker> w;
    {
        std::lock_guard lock(impl_->mu);
        auto it = std::find_if(impl_->streams.begin(), impl_->streams.end(),
                               [&](const auto& s) { return s->id() == id; });
        if (it == impl_->streams.end()) return NotFound("stream '" + id + "' not found");
        w = std::move(*it);
        impl_->streams.erase(it);
    }
    w->Stop();
    std::lock_guard lock(impl_->mu);
    impl_->removed.push_back(w->Stats());
    const auto lat = w->Latencies();
    impl_->removed_latencies.insert(impl_->removed_latencies.end(), lat.begin(), lat.end());
    const auto rlat = w->RecognizedLatencies();
    impl_->removed_recognized_latencies.insert(impl_->removed_recognized_latencies.end(),
                                               rlat.begin(), rlat.end());
    return Status::Ok();
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
    std::vector<StreamWorker*> ws;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopped) return;
        impl_->stopped = true;
        for (auto& s : impl_->streams) ws.push_back(s.get());
    }
    for (StreamWorker* w : ws) w->Stop();  // ends open tracks
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
    p.recognized_latency = Summarize(std::move(all_recognized));
    for (const auto& s : p.streams) {
        p.frames += s.frames;
        p.detector_runs += s.detector_runs;
        p.gated += s.gated;
        p.embeddings += s.embeddings;
        p.events += s.events;
    }
    if (impl_->shared.batcher) p.embed_batches = impl_->shared.batcher->stats().batches;
    p.latency = Summarize(std::move(all));
    std::lock_guard ilock(impl_->shared.identities_mu);
    p.identities = impl_->shared.identities;
    return p;
}

}  // namespace fg::pipeline
