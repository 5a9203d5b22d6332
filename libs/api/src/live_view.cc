// SPDX-License-Identifier: Apache-2.0
#include "fg/api/live_view.h"

#include <opencv2/imgcodecs.hpp>

namespace fg::api {

void LiveView::OnEvent(const events::Event& event) {
    std::lock_guard lock(mu_);
    streams_[event.stream_id].labels.OnEvent(event);
}

void LiveView::OnFrame(const pipeline::FrameView& view) {
    if (view.frame == nullptr || view.frame->image.empty()) return;
    std::lock_guard lock(mu_);
    Snapshot& s = streams_[view.frame->source_id];
    s.frame = *view.frame;  // shares the pixels: the pipeline never writes into a delivered frame
    s.has_tracks = view.tracks != nullptr;
    if (view.tracks) s.tracks = *view.tracks;
    s.has_faces = view.faces != nullptr;
    if (view.faces) s.faces = *view.faces;
    if (view.face_labels) s.face_labels = *view.face_labels;
    ++s.version;
}

Result<LiveView::Jpeg> LiveView::Latest(const std::string& stream_id) {
    Snapshot copy;
    {
        std::lock_guard lock(mu_);
        const auto it = streams_.find(stream_id);
        if (it == streams_.end() || it->second.version == 0) {
            return NotFound("stream '" + stream_id + "' has no frame yet");
        }
        if (it->second.jpeg.version == it->second.version) return it->second.jpeg;
        copy = it->second;
    }
    // Draw and encode outside the lock: the stream threads must not wait for it.
    pipeline::FrameView view;
    view.frame = &copy.frame;
    if (copy.has_tracks) view.tracks = &copy.tracks;
    if (copy.has_faces) {
        view.faces = &copy.faces;
        view.face_labels = &copy.face_labels;
    }
    const cv::Mat canvas = pipeline::Annotate(view, copy.labels);
    std::vector<std::uint8_t> buf;
    if (canvas.empty() || !cv::imencode(".jpg", canvas, buf, {cv::IMWRITE_JPEG_QUALITY, jpeg_quality_})) {
        return Internal("cannot encode the frame of stream '" + stream_id + "'");
    }
    Jpeg out{std::string(buf.begin(), buf.end()), copy.version};
    std::lock_guard lock(mu_);
    const auto it = streams_.find(stream_id);
    if (it != streams_.end() && it->second.jpeg.version < out.version) it->second.jpeg = out;
    return out;
}

std::uint64_t LiveView::version(const std::string& stream_id) const {
    std::lock_guard lock(mu_);
    const auto it = streams_.find(stream_id);
    return it == streams_.end() ? 0 : it->second.version;
}

void LiveView::Forget(const std::string& stream_id) {
    std::lock_guard lock(mu_);
    streams_.erase(stream_id);
}

}  // namespace fg::api
