// SPDX-License-Identifier: Apache-2.0
#include "readers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "ffmpeg_options.h"

namespace fg::stream::internal {
namespace fs = std::filesystem;

namespace {

bool IsIndex(const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

/// Brings any decoder output to BGR CV_8UC3 (grey cameras, BGRA, 16-bit PNGs).
bool ToBgr8(cv::Mat& image) {
    if (image.empty()) {
        return false;
    }
    if (image.depth() != CV_8U) {
        cv::Mat converted;
        image.convertTo(converted, CV_8U, image.depth() == CV_16U ? 1.0 / 257.0 : 1.0);
        image = converted;
    }
    if (image.channels() == 1) {
        cv::Mat bgr;
        cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
        image = bgr;
    } else if (image.channels() == 4) {
        cv::Mat bgr;
        cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
        image = bgr;
    }
    return image.type() == CV_8UC3;
}

class CaptureReader final : public FrameReader {
  public:
    CaptureReader(std::unique_ptr<cv::VideoCapture> capture, bool live, std::string what)
        : capture_(std::move(capture)), live_(live), what_(std::move(what)) {
        const double fps = capture_->get(cv::CAP_PROP_FPS);
        fps_ = std::isfinite(fps) && fps > 0 && fps < 1000 ? fps : 0.0;
    }

    ReadResult Read(cv::Mat& image) override {
        ReadResult result;
        bool ok = false;
        try {
            ok = capture_->read(image);
        } catch (const cv::Exception& e) {
            result.message = what_ + ": decoder error: " + e.what();
        }
        if (ok && ToBgr8(image)) {
            result.outcome = ReadOutcome::kFrame;
            const double ms = capture_->get(cv::CAP_PROP_POS_MSEC);
            if (std::isfinite(ms) && ms >= 0) {
                result.media_time =
                    std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000.0));
            }
            return result;
        }
        // OpenCV reports end of file, a dropped connection and a read timeout alike.
        if (live_) {
            result.outcome = ReadOutcome::kError;
            if (result.message.empty()) {
                result.message =
                    what_ + ": read failed (stream closed, or no data within read_timeout)";
            }
        } else {
            result.outcome = ReadOutcome::kEnd;
        }
        return result;
    }

    double fps() const override { return fps_; }

  private:
    std::unique_ptr<cv::VideoCapture> capture_;
    bool live_;
    std::string what_;
    double fps_ = 0.0;
};

class FolderReader final : public FrameReader {
  public:
    FolderReader(std::vector<fs::path> files, double fps) : files_(std::move(files)), fps_(fps) {}

    ReadResult Read(cv::Mat& image) override {
        ReadResult result;
        if (next_ >= files_.size()) {
            result.outcome = ReadOutcome::kEnd;
            return result;
        }
        const std::size_t index = next_++;
        const fs::path& path = files_[index];
        try {
            image = cv::imread(path.string(), cv::IMREAD_COLOR);
        } catch (const cv::Exception&) {
            image.release();
        }
        if (!ToBgr8(image)) {
            result.outcome = ReadOutcome::kSkipped;
            result.message = "skipping '" + path.string() + "': not a readable image";
            return result;
        }
        result.outcome = ReadOutcome::kFrame;
        result.media_time =
            std::chrono::microseconds(static_cast<std::int64_t>(index * 1e6 / fps_));
        return result;
    }

    double fps() const override { return fps_; }

  private:
    std::vector<fs::path> files_;
    double fps_;
    std::size_t next_ = 0;
};

Result<std::unique_ptr<FrameReader>> OpenFolder(const SourceConfig& config) {
    const fs::path dir(config.uri);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        return NotFound("image folder not found: " + config.uri);
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec)) {
            files.push_back(it->path());
        }
    }
    if (ec) {
        return Unavailable("cannot list image folder '" + config.uri + "': " + ec.message());
    }
    if (files.empty()) {
        return InvalidArgument("image folder '" + config.uri + "' holds no files");
    }
    std::sort(files.begin(), files.end());
    return std::unique_ptr<FrameReader>(new FolderReader(std::move(files), config.folder_fps));
}

Result<std::unique_ptr<FrameReader>> OpenCapture(const SourceConfig& config, SourceKind kind) {
    const std::string what = std::string(SourceKindName(kind)) + " '" + RedactUri(config.uri) + "'";
    auto capture = std::make_unique<cv::VideoCapture>();
    bool opened = false;
    try {
        if (kind == SourceKind::kDevice) {
            // V4L2 ignores OpenCV's timeout properties; the watchdog reports stalls instead.
            opened = IsIndex(config.uri) ? capture->open(std::stoi(config.uri), cv::CAP_V4L2)
                                         : capture->open(config.uri, cv::CAP_V4L2);
            if (opened && config.device_width > 0 && config.device_height > 0) {
                capture->set(cv::CAP_PROP_FRAME_WIDTH, config.device_width);
                capture->set(cv::CAP_PROP_FRAME_HEIGHT, config.device_height);
            }
            if (opened && config.device_fps > 0) {
                capture->set(cv::CAP_PROP_FPS, config.device_fps);
            }
        } else {
            const std::vector<int> params = {
                cv::CAP_PROP_OPEN_TIMEOUT_MSEC,
                static_cast<int>(config.open_timeout.count()),
                cv::CAP_PROP_READ_TIMEOUT_MSEC,
                static_cast<int>(config.read_timeout.count()),
            };
            if (kind == SourceKind::kRtsp) {
                // fpsprobesize 0: FFmpeg otherwise reads ~1.5 s more of the stream to estimate a
                // frame rate we never use for live sources; it halves (re)connect time.
                FfmpegOptionsLease lease(config.rtsp_transport == RtspTransport::kUdp
                                             ? "rtsp_transport;udp|fpsprobesize;0"
                                             : "rtsp_transport;tcp|fpsprobesize;0");
                opened = capture->open(config.uri, cv::CAP_FFMPEG, params);
            } else {
                opened = capture->open(config.uri, cv::CAP_FFMPEG, params);
            }
        }
    } catch (const cv::Exception& e) {
        return Unavailable("cannot open " + what + ": " + e.what());
    }
    if (!opened || !capture->isOpened()) {
        if (kind == SourceKind::kFile) {
            return InvalidArgument(
                "cannot open " + what +
                ": not a video FFmpeg can decode (corrupt, truncated or unsupported)");
        }
        return Unavailable("cannot open " + what + ": unreachable, refused or no answer within " +
                           std::to_string(config.open_timeout.count()) + " ms");
    }
    return std::unique_ptr<FrameReader>(new CaptureReader(std::move(capture), IsLive(kind), what));
}

}  // namespace

std::string RedactUri(const std::string& uri) {
    const auto scheme = uri.find("://");
    if (scheme == std::string::npos) {
        return uri;
    }
    const auto authority = scheme + 3;
    const auto slash = uri.find('/', authority);
    const auto at = uri.rfind('@', slash == std::string::npos ? uri.size() : slash);
    if (at == std::string::npos || at < authority) {
        return uri;
    }
    return uri.substr(0, authority) + "***" + uri.substr(at);
}

Result<std::unique_ptr<FrameReader>> OpenReader(const SourceConfig& config, SourceKind kind) {
    switch (kind) {
        case SourceKind::kImageFolder: return OpenFolder(config);
        case SourceKind::kFile: {
            std::error_code ec;
            if (!fs::is_regular_file(config.uri, ec)) {
                return NotFound("video file not found: " + config.uri);
            }
            return OpenCapture(config, kind);
        }
        case SourceKind::kRtsp:
        case SourceKind::kHttp:
        case SourceKind::kDevice: return OpenCapture(config, kind);
        case SourceKind::kAuto: break;
    }
    return Internal("source kind not resolved");
}

}  // namespace fg::stream::internal
