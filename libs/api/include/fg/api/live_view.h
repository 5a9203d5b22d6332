// SPDX-License-Identifier: Apache-2.0
// The latest annotated frame of every stream, for GET /v1/streams/{id}/frame.jpg and the MJPEG
// view: a pipeline observer that keeps (cheaply: shared pixels, copied boxes) the last frame of
// each stream and draws and encodes it only when someone asks.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/pipeline/annotate.h"
#include "fg/pipeline/event_emitter.h"
#include "fg/stream/frame.h"

namespace fg::api {

/// Thread-safety: OnEvent/OnFrame from the stream threads, the rest from any thread.
class LiveView final : public pipeline::PipelineObserver {
  public:
    explicit LiveView(int jpeg_quality = 80) : jpeg_quality_(jpeg_quality) {}
    void OnEvent(const events::Event& event) override;
    void OnFrame(const pipeline::FrameView& view) override;

    struct Jpeg {
        std::string bytes;
        std::uint64_t version = 0;  ///< grows with every new frame of the stream
    };
    /// The stream's latest frame, annotated, as JPEG (encoded once per frame, then cached).
    /// NotFound when the stream has delivered no frame yet.
    Result<Jpeg> Latest(const std::string& stream_id);
    /// Version of the latest frame (0 = none), to poll cheaply.
    std::uint64_t version(const std::string& stream_id) const;
    /// Drops a removed stream's frame.
    void Forget(const std::string& stream_id);

  private:
    struct Snapshot {
        stream::Frame frame;
        bool has_tracks = false;
        std::vector<track::Track> tracks;
        bool has_faces = false;
        std::vector<vision::FaceDetection> faces;
        std::vector<std::string> face_labels;
        pipeline::TrackLabels labels;
        std::uint64_t version = 0;
        Jpeg jpeg;  // cache of `version`
    };
    const int jpeg_quality_;
    mutable std::mutex mu_;
    std::map<std::string, Snapshot> streams_;
};

}  // namespace fg::api
