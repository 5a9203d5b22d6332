// SPDX-License-Identifier: Apache-2.0
#include "annotated_video.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <opencv2/imgproc.hpp>

#include "fg/base/log.h"

namespace fg::pipeline {
namespace {

void DrawLabel(cv::Mat& canvas, const cv::Rect& r, const std::string& text, const cv::Scalar& color) {
    cv::rectangle(canvas, r, color, 2);
    int base = 0;
    const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, 0.6, 2, &base);
    const cv::Point org(r.x, std::max(ts.height + 2, r.y - 4));
    cv::rectangle(canvas, org + cv::Point(0, base), org + cv::Point(ts.width, -ts.height - 2), color,
                  cv::FILLED);
    cv::putText(canvas, text, org, cv::FONT_HERSHEY_SIMPLEX, 0.6, {0, 0, 0}, 2);
}

cv::Rect ToCv(const Rect2f& b) {
    return {cv::Point(int(b.x), int(b.y)), cv::Point(int(b.right()), int(b.bottom()))};
}

const cv::Scalar kKnown(0, 220, 0), kUnknown(0, 200, 255), kSpoof(0, 0, 255), kPending(200, 200, 200);

}  // namespace

void AnnotatedVideoWriter::OnEvent(const events::Event& e) {
    if (!e.track_id) return;
    const std::uint64_t id = *e.track_id;
    if (const auto* r = std::get_if<events::Recognized>(&e.payload)) {
        labels_[id] = {r->display_name.empty() ? r->subject_id : r->display_name, r->score};
    } else if (std::holds_alternative<events::UnknownFace>(e.payload)) {
        labels_[id] = {"unknown", -1};
    } else if (std::holds_alternative<events::SpoofDetected>(e.payload)) {
        labels_[id] = {"SPOOF", -1};
    } else if (std::holds_alternative<events::TrackEnded>(e.payload)) {
        labels_.erase(id);
    }
}

void AnnotatedVideoWriter::OnFrame(const FrameView& view) {
    if (view.frame == nullptr) return;
    cv::Mat canvas = view.frame->image.clone();
    if (view.faces) {
        for (std::size_t i = 0; i < view.faces->size(); ++i) {
            const std::string name =
                view.face_labels && i < view.face_labels->size() ? (*view.face_labels)[i] : "";
            DrawLabel(canvas, ToCv((*view.faces)[i].box), name.empty() ? "?" : name,
                      name.empty() ? kUnknown : kKnown);
        }
    }
    if (view.tracks) {
        for (const track::Track& t : *view.tracks) {
            if (t.state == track::TrackState::kTentative) continue;
            const auto it = labels_.find(t.id);
            const Label l = it == labels_.end() ? Label{} : it->second;
            std::string text = "#" + std::to_string(t.id) + (l.text.empty() ? " ..." : " " + l.text);
            if (l.score >= 0) {
                char buf[16];
                std::snprintf(buf, sizeof buf, " %.2f", l.score);
                text += buf;
            }
            const cv::Scalar color = l.text == "SPOOF"     ? kSpoof
                                     : l.text == "unknown" ? kUnknown
                                     : l.text.empty()      ? kPending
                                                           : kKnown;
            DrawLabel(canvas, ToCv(t.box), text, color);
        }
    }
    Write(canvas);
}

void AnnotatedVideoWriter::Write(const cv::Mat& canvas) {
    if (!writer_.isOpened()) {
        std::error_code ec;
        std::filesystem::create_directories(dir_, ec);
        const std::string path = (std::filesystem::path(dir_) / (stream_id_ + ".avi")).string();
        // MJPG in AVI: every Debian OpenCV build writes it, no codec licensing questions.
        if (!writer_.open(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps_, canvas.size())) {
            spdlog::warn("stream '{}': cannot write {}", stream_id_, path);
            return;
        }
        size_ = canvas.size();
    }
    // A video file has one frame size: after a resolution change, scale to the first one (the
    // writer would silently drop the frame otherwise).
    if (canvas.size() != size_) {
        cv::Mat scaled;
        cv::resize(canvas, scaled, size_);
        writer_.write(scaled);
        return;
    }
    writer_.write(canvas);
}

void AnnotatedVideoWriter::OnStreamEnd() {
    if (writer_.isOpened()) writer_.release();
}

}  // namespace fg::pipeline
