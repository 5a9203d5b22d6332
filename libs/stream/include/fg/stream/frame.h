// SPDX-License-Identifier: Apache-2.0
// One decoded video frame as it leaves a source.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <opencv2/core.hpp>

namespace fg::stream {

/// A decoded frame. Value type; the pixel buffer is reference-counted (cv::Mat), so copies are
/// cheap and share pixels: treat `image` as read-only or clone it before writing.
struct Frame {
    std::string source_id;  ///< SourceConfig::id of the source that produced it
    cv::Mat image;  ///< BGR, CV_8UC3; the size may change between frames (resolution change)
    /// Per-source decode counter starting at 0; it counts every decoded frame, so a gap between
    /// two frames a consumer receives is the number of frames dropped in between.
    std::uint64_t sequence = 0;
    /// When the frame left the decoder (steady clock): the start of the latency budget.
    std::chrono::steady_clock::time_point capture_time{};
    /// Position in the media (file position, RTSP stream time, folder index / fps) when known.
    /// Restarts from 0 after a reconnect or a loop; use `sequence` for ordering.
    std::optional<std::chrono::microseconds> media_time;
    /// 0 for the first successful open; +1 for each later (re)open or file loop, so a consumer
    /// can reset per-stream state (e.g. the tracker) when the stream was interrupted.
    std::uint32_t generation = 0;
};

}  // namespace fg::stream
