// SPDX-License-Identifier: Apache-2.0
// Per-open FFmpeg capture options through OpenCV's process-wide environment variable.
#pragma once

#include <string>

namespace fg::stream::internal {

/// OpenCV 4.6 takes FFmpeg demuxer options (the RTSP transport among them) only from the
/// environment variable OPENCV_FFMPEG_CAPTURE_OPTIONS, read once at the start of each open.
/// A lease sets the variable to `options` and keeps it unchanged until released, so concurrent
/// opens that want the same options proceed together and an open that wants different options
/// waits only until the opens in flight finish. Any value the variable had when first used is
/// kept in front of ours (later keys win in FFmpeg's parser).
/// Thread-safety: leases may be taken and released from any thread.
class FfmpegOptionsLease {
  public:
    explicit FfmpegOptionsLease(const std::string& options);  ///< "key;value|key;value"
    ~FfmpegOptionsLease();
    FfmpegOptionsLease(const FfmpegOptionsLease&) = delete;
    FfmpegOptionsLease& operator=(const FfmpegOptionsLease&) = delete;
};

}  // namespace fg::stream::internal
