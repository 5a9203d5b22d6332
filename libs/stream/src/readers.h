// SPDX-License-Identifier: Apache-2.0
// Frame readers behind Source: OpenCV VideoCapture (FFmpeg, V4L2) and image folders.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <opencv2/core.hpp>

#include "fg/base/status.h"
#include "fg/stream/source.h"

namespace fg::stream::internal {

enum class ReadOutcome {
    kFrame,    ///< `image` holds a BGR CV_8UC3 frame
    kSkipped,  ///< an unreadable item (folder file) was skipped; `message` says which
    kEnd,      ///< a finite source finished
    kError,    ///< a live source failed or timed out; `message` says why
};

struct ReadResult {
    ReadOutcome outcome = ReadOutcome::kError;
    std::optional<std::chrono::microseconds> media_time;
    std::string message;
};

/// Not thread-safe: owned and used by one decoder thread.
class FrameReader {
  public:
    virtual ~FrameReader() = default;
    /// Blocks until a frame, the end or an error; bounded by the configured read timeout for
    /// FFmpeg sources. `image` may come in holding a free buffer of the FramePool: a reader
    /// that can decode into it (same size and type) must, and may replace it otherwise.
    virtual ReadResult Read(cv::Mat& image) = 0;
    /// Native frame rate, 0 when unknown.
    virtual double fps() const = 0;
};

/// Opens the reader for a resolved kind. May block up to config.open_timeout (FFmpeg).
/// NotFound / InvalidArgument for files and folders that cannot be used, Unavailable for live
/// sources that cannot be reached (worth retrying).
Result<std::unique_ptr<FrameReader>> OpenReader(const SourceConfig& config, SourceKind kind);

/// `uri` with any user:password replaced by "***", for logs and errors.
std::string RedactUri(const std::string& uri);

}  // namespace fg::stream::internal
