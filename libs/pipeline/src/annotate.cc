// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/annotate.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/imgproc.hpp>

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

void TrackLabels::OnEvent(const events::Event& e) {
    if (!e.track_id) return;
    const std::uint64_t id = *e.track_id;
    if (const auto* r = std::get_if<events::Recognized>(&e.payload)) {
        labels_[id] = {r->display_name.empty() ? r->subject_id : r->display_name, r->score};
    } else if (std::holds_alternative<events::UnknownFace>(e.payload)) {
        labels_[id] = {"unknown", -1};
    } else if (const auto* sp = std::get_if<events::SpoofDetected>(&e.payload)) {
        // Liveness on the picture: the operator sees how sure the check was.
        char buf[32];
        std::snprintf(buf, sizeof buf, "SPOOF live=%.2f", sp->liveness_score);
        labels_[id] = {buf, -1};
    } else if (std::holds_alternative<events::TrackEnded>(e.payload)) {
        labels_.erase(id);
    }
}

const TrackLabel* TrackLabels::Find(std::uint64_t track_id) const {
    const auto it = labels_.find(track_id);
    return it == labels_.end() ? nullptr : &it->second;
}

cv::Mat Annotate(const FrameView& view, const TrackLabels& labels) {
    if (view.frame == nullptr || view.frame->image.empty()) return {};
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
            const TrackLabel* found = labels.Find(t.id);
            const TrackLabel l = found ? *found : TrackLabel{};
            std::string text = "#" + std::to_string(t.id) + (l.text.empty() ? " ..." : " " + l.text);
            if (l.score >= 0) {
                char buf[16];
                std::snprintf(buf, sizeof buf, " %.2f", l.score);
                text += buf;
            }
            const cv::Scalar color = l.text.starts_with("SPOOF") ? kSpoof
                                     : l.text == "unknown" ? kUnknown
                                     : l.text.empty()      ? kPending
                                                           : kKnown;
            DrawLabel(canvas, ToCv(t.box), text, color);
        }
    }
    return canvas;
}

}  // namespace fg::pipeline
