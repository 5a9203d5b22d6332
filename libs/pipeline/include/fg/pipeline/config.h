// SPDX-License-Identifier: Apache-2.0
// The stream pipeline's settings and statistics (what Pipeline and each stream's processor share).
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/pipeline/track_recognition.h"
#include "fg/stream/motion_gate.h"
#include "fg/stream/source.h"
#include "fg/track/tracker.h"

namespace fg::pipeline {

struct StreamSpec {
    stream::SourceConfig source;  ///< source.id names the stream in events
    bool motion_gate = true;
    stream::MotionGateConfig motion;
    bool operator==(const StreamSpec&) const = default;
};

enum class PipelineMode {
    kDefault,  ///< gate, track, embed only the best faces of each track
    kNaive,    ///< detect and embed every face of every frame (the baseline we beat)
};

struct PipelineConfig {
    std::vector<StreamSpec> streams;
    PipelineMode mode = PipelineMode::kDefault;
    /// The detector runs at most every N frames of a stream (and only when the motion gate
    /// lets the frame through); the tracker predicts in between.
    int detect_interval = 2;
    /// Once every face in view is decided (recognized, unknown or spoof) the detector runs only
    /// every this many frames: decided faces need tracking, not scrutiny, and a newcomer is
    /// found at most this many frames late (4 frames = 160 ms at 25 fps). >= detect_interval.
    int settled_detect_interval = 4;
    track::TrackerConfig tracker;
    /// Detector score from which a detection is a face to recognise (be aligned, judged,
    /// embedded). 0 = the engine's own detector threshold. In the default mode the pipeline runs
    /// its detectors down to min(that, tracker.low_thresh): the weaker detections only keep
    /// confirmed tracks alive through the tracker's second stage (a face turning away or
    /// blurred by motion). The naive mode keeps the engine's threshold.
    float face_score_threshold = 0.0f;
    /// A stream that delivers no frame for this long (a stalled camera) ends its open tracks
    /// (track_ended): a face last seen minutes ago is not "in view". 0 = never.
    std::chrono::milliseconds track_timeout{3000};
    RecognitionPolicy recognition;
    /// Faces per embedding call across all streams.
    int embed_batch = 8;
    /// Attach the best aligned face (JPEG, base64) to recognized/unknown_face events.
    bool best_shot_crops = false;
    /// Liveness per track (the engine pack's liveness models); a track judged spoofed emits
    /// spoof_detected and is never `recognized`.
    bool liveness = false;
    std::string liveness_preset;  ///< "" = the default preset
    float liveness_threshold = 0.5f;
    int liveness_min_frames = 3;
    /// Recognise the selected faces in this process (embed, search, decide). false: face
    /// selection's items only go to the observers (OnFaceItems) and nothing is embedded; tracks
    /// then stay undecided (facegate edge without local decisions; a worker recognises).
    bool recognize = true;
    /// Write an annotated video per stream into this folder ("" = off).
    std::string draw_dir;
    double draw_fps = 25.0;

    Status Validate() const;  ///< names the offending field
};

/// Latency from a frame leaving the decoder (live sources) or leaving the queue (sources set to
/// process every frame, whose decoder waits for queue space) to the end of its processing.
struct LatencySummary {
    std::uint64_t samples = 0;
    double p50_ms = 0;
    double p99_ms = 0;
};

struct StreamRunStats {
    std::string id;
    std::uint64_t frames = 0;          ///< frames processed
    std::uint64_t detector_runs = 0;
    std::uint64_t gated = 0;           ///< frames the motion gate skipped
    std::uint64_t embeddings = 0;
    std::uint64_t tracks_started = 0;
    std::uint64_t events = 0;
    LatencySummary latency;
    /// From the arrival of the frame whose face decided a track to its `recognized` event
    /// being published (detection, alignment, embedding, gallery search, sinks).
    LatencySummary recognized_latency;
    /// Media time the processed frames span (from their timestamps; for a file, its length):
    /// what "real time" means for this stream.
    double media_seconds = 0;
    stream::SourceStats source;
};

struct PipelineStats {
    std::uint64_t frames = 0;
    std::uint64_t detector_runs = 0;
    std::uint64_t gated = 0;
    std::uint64_t embeddings = 0;
    std::uint64_t embed_batches = 0;
    std::uint64_t events = 0;
    std::set<std::string> identities;  ///< subjects recognised in any stream
    LatencySummary latency;            ///< over all streams
    LatencySummary recognized_latency;  ///< over all streams
    std::vector<StreamRunStats> streams;
};

/// The source and motion-gate settings of one stream; errors name the field.
Status ValidateStream(const StreamSpec& spec);
/// Every stream, and ids non-empty and unique ("streams[i]" in errors).
Status ValidateStreams(const std::vector<StreamSpec>& streams);
/// p50/p99 of latency samples in milliseconds.
LatencySummary SummarizeLatencies(std::vector<double> ms);

}  // namespace fg::pipeline
