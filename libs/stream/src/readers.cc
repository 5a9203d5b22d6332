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
#include "fg/image/image_io.h"

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
    CaptureReader(std::unique_ptr<cv::VideoCapture> capture, bool live, std::string what,
                  std::uint64_t max_pixels)
        : capture_(std::move(capture)), live_(live), what_(std::move(what)), max_pixels_(max_pixels) {
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
        if (ok && !image.empty() && image.total() > max_pixels_) {
            result.outcome = ReadOutcome::kError;
            result.message = what_ + ": frame of " + std::to_string(image.cols) + "x" +
                             std::to_string(image.rows) + " exceeds max_frame_pixels (" +
                             std::to_string(max_pixels_) + ")";
            image.release();
            return result;
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
    std::uint64_t max_pixels_;
    double fps_ = 0.0;
};

class FolderReader final : public FrameReader {
  public:
    FolderReader(std::vector<fs::path> files, double fps, std::uint64_t max_pixels)
        : files_(std::move(files)), fps_(fps), max_pixels_(max_pixels) {}

    ReadResult Read(cv::Mat& image) override {
        ReadResult result;
        if (next_ >= files_.size()) {
            result.outcome = ReadOutcome::kEnd;
            return result;
        }
        const std::size_t index = next_++;
        const fs::path& path = files_[index];
        // The same guarded decoder as single images: size checked from the header before
        // decoding, EXIF orientation, every pixel format to BGR, never an exception.
        Result<cv::Mat> loaded = LoadImage(path, {.max_pixels = max_pixels_});
        if (!loaded.ok()) {
            image.release();
            result.outcome = ReadOutcome::kSkipped;
            result.message = "skipping '" + path.string() + "': " + loaded.status().message();
            return result;
        }
        image = std::move(*loaded);
        result.outcome = ReadOutcome::kFrame;
        result.media_time =
            std::chrono::microseconds(static_cast<std::int64_t>(index * 1e6 / fps_));
        return result;
    }

    double fps() const override { return fps_; }

  private:
    std::vector<fs::path> files_;
    double fps_;
    std::uint64_t max_pixels_;
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
    return std::unique_ptr<FrameReader>(
        new FolderReader(std::move(files), config.folder_fps, config.max_frame_pixels));
}

/// FFmpeg options per source kind. The protocol whitelist keeps a source to what its kind
/// needs: a "file" (a playlist, a crafted container) cannot make FFmpeg open http://, a
/// camera URL cannot read local files. TLS sources verify the server's certificate unless
/// verify_tls is off.
std::string FfmpegOptionsFor(const SourceConfig& config, SourceKind kind) {
    const bool tls = config.uri.rfind("https://", 0) == 0 || config.uri.rfind("rtsps://", 0) == 0;
    std::string o;
    switch (kind) {
        case SourceKind::kRtsp:
            // fpsprobesize 0: FFmpeg otherwise reads ~1.5 s more of the stream to estimate a
            // frame rate we never use for live sources; it halves (re)connect time.
            o = "protocol_whitelist;rtsp,rtsps,rtp,srtp,udp,tcp,tls|fpsprobesize;0|rtsp_transport;";
            o += config.rtsp_transport == RtspTransport::kUdp ? "udp" : "tcp";
            break;
        case SourceKind::kHttp: o = "protocol_whitelist;http,https,tcp,tls,crypto"; break;
        default: o = "protocol_whitelist;file"; break;
    }
    if (tls) o += config.verify_tls ? "|tls_verify;1|ca_file;/etc/ssl/certs/ca-certificates.crt" : "|tls_verify;0";
    return o;
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
            FfmpegOptionsLease lease(FfmpegOptionsFor(config, kind));
            opened = capture->open(config.uri, cv::CAP_FFMPEG, params);
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
    return std::unique_ptr<FrameReader>(
        new CaptureReader(std::move(capture), IsLive(kind), what, config.max_frame_pixels));
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
