// SPDX-License-Identifier: Apache-2.0
#include "annotated_video.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <opencv2/imgproc.hpp>

#include "fg/base/log.h"

namespace fg::pipeline {

void AnnotatedVideoWriter::OnEvent(const events::Event& e) { labels_.OnEvent(e); }

void AnnotatedVideoWriter::OnFrame(const FrameView& view) {
    const cv::Mat canvas = Annotate(view, labels_);
    if (!canvas.empty()) Write(canvas);
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
