// SPDX-License-Identifier: Apache-2.0
// A video source decoding on its own thread into a small bounded queue, with reconnects.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fg/base/status.h"
#include "fg/stream/frame.h"

namespace fg::stream {

/// What `SourceConfig::uri` names. kAuto infers it: rtsp:// or rtsps:// -> kRtsp,
/// http:// or https:// -> kHttp (MJPEG or any stream FFmpeg reads), /dev/video* or a plain
/// integer -> kDevice, an existing directory -> kImageFolder, anything else -> kFile.
enum class SourceKind { kAuto, kFile, kRtsp, kHttp, kDevice, kImageFolder };

/// RTSP lower transport. UDP needs the server to reach us on UDP ports (fine on loopback and
/// LANs); TCP (interleaved) passes NAT and firewalls and never loses packets.
enum class RtspTransport { kTcp, kUdp };

/// Lifecycle of a source:
///   kConnecting -> kLive -> (kStalled -> kConnecting -> kLive)* -> kEnded | kFailed | kStopped
/// kStalled: no frame for `stall_timeout`, or a read error; the source keeps retrying.
/// kFailed: gave up (max_attempts reached, or a file/folder that cannot be opened or decoded);
/// kEnded: a finite file or folder finished (and `loop` is off). kFailed, kEnded and kStopped
/// are terminal.
enum class SourceState { kConnecting, kLive, kStalled, kFailed, kEnded, kStopped };

std::string_view SourceStateName(SourceState state);  ///< "connecting", "live", ...
std::string_view SourceKindName(SourceKind kind);     ///< "auto", "file", "rtsp", ...

/// Exponential backoff between reconnect attempts: min, min*multiplier, ... capped at max.
struct BackoffConfig {
    std::chrono::milliseconds min{250};
    std::chrono::milliseconds max{2000};  ///< keeps reconnect within ~5 s of a camera's return
    double multiplier = 2.0;
    /// Consecutive failed attempts (open failure, or read failure before any frame) after which
    /// the source goes kFailed; 0 retries forever.
    int max_attempts = 0;
    bool operator==(const BackoffConfig&) const = default;
};

struct SourceConfig {
    std::string id;   ///< unique within a StreamManager; copied into every Frame
    std::string uri;  ///< file path, rtsp://..., http://..., /dev/videoN or "N", folder path
    SourceKind kind = SourceKind::kAuto;
    RtspTransport rtsp_transport = RtspTransport::kTcp;

    /// Frames buffered between the decoder and the consumer. When full, a live source drops the
    /// oldest frame (the consumer always gets the newest, never a backlog) and counts it.
    std::size_t queue_depth = 1;
    /// Files and folders only: the decoder blocks when the queue is full instead of dropping, so
    /// every frame is processed (benchmarks, offline jobs). Rejected for live sources.
    bool process_every_frame = false;
    /// Files and folders only: deliver frames at the native rate (container fps, or
    /// `folder_fps`) to simulate a camera; otherwise decode as fast as possible.
    bool pace_native_fps = false;
    /// Files and folders only: restart from the beginning at the end instead of ending.
    bool loop = false;
    /// Frame rate assumed for image folders (media_time = index / folder_fps, pacing).
    double folder_fps = 25.0;

    /// Limits for FFmpeg's blocking open and read (CAP_PROP_OPEN/READ_TIMEOUT_MSEC): a dead
    /// server cannot hold the decoder thread longer than this.
    std::chrono::milliseconds open_timeout{5000};
    std::chrono::milliseconds read_timeout{5000};
    /// No frame for this long while live -> kStalled (reported even if the read is still
    /// blocked). Raise it for cameras that deliver very few frames.
    std::chrono::milliseconds stall_timeout{3000};
    BackoffConfig reconnect;

    /// V4L2 only: requested capture size and rate (0 = driver default).
    int device_width = 0;
    int device_height = 0;
    double device_fps = 0.0;

    /// Frames with more pixels are refused (the stream fails with a message): a forged or
    /// misconfigured stream must not make every frame cost gigabytes. 8K UHD by default.
    std::uint64_t max_frame_pixels = 7680ull * 4320ull;
    /// Check the server certificate of https:// and rtsps:// sources against the system's CAs.
    bool verify_tls = true;

    /// Names the offending field, e.g. "source 'cam1': queue_depth must be >= 1".
    Status Validate() const;
    bool operator==(const SourceConfig&) const = default;
};

/// Resolves kAuto (see SourceKind). Pure.
SourceKind ResolveKind(const SourceConfig& config);
/// True for RTSP, HTTP and devices (frames are dropped, reconnects retried forever).
bool IsLive(SourceKind kind);

/// A point-in-time copy of a source's counters.
struct SourceStats {
    std::string id;
    SourceKind kind = SourceKind::kAuto;  ///< resolved kind
    SourceState state = SourceState::kConnecting;
    std::uint64_t frames_decoded = 0;  ///< frames that left the decoder
    std::uint64_t frames_dropped = 0;  ///< evicted from a full queue before the consumer took them
    std::uint64_t frames_delivered = 0;  ///< taken by the consumer
    std::uint64_t files_skipped = 0;     ///< image folders: unreadable files skipped
    std::uint64_t reconnects = 0;        ///< successful opens after the first
    std::uint64_t open_attempts = 0;     ///< every open tried, successful or not
    double fps = 0.0;                    ///< measured decode rate over roughly the last second
    int width = 0;                       ///< of the last decoded frame
    int height = 0;
    std::string last_error;  ///< empty when none yet; kept after recovery
    std::chrono::steady_clock::time_point last_frame_time{};  ///< epoch if none yet
};

/// A state transition, reported through the state callback.
struct StateChange {
    std::string source_id;
    SourceState previous = SourceState::kConnecting;
    SourceState state = SourceState::kConnecting;
    std::string error;  ///< why (for kStalled, kConnecting after a loss, kFailed); may be empty
};

using StateCallback = std::function<void(const StateChange&)>;

/// One source with its decoder thread.
///
/// Lifecycle: Create() validates the config and starts decoding at once (state kConnecting);
/// the consumer pops frames; Stop() or the destructor ends it.
/// Thread-safety: every method may be called from any thread concurrently.
/// Callbacks run on the source's internal threads; they must be quick and must not call
/// Stop() or destroy this source (nor StreamManager::Remove of it). No callback runs after
/// Stop() has returned.
/// Stop() is bounded: it waits up to `stop_grace` for the decoder thread; a thread stuck inside
/// a blocking FFmpeg open/read is then left to finish on its own (it holds only shared state
/// and exits once the call returns, within open_timeout/read_timeout).
class Source {
  public:
    struct Callbacks {
        StateCallback on_state;          ///< every state transition
        std::function<void()> on_frame;  ///< a frame was queued (wake a consumer)
    };

    static Result<std::unique_ptr<Source>> Create(SourceConfig config, Callbacks callbacks = {});
    ~Source();
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    const SourceConfig& config() const;
    SourceState state() const;
    SourceStats Stats() const;

    /// The oldest queued frame, or nullopt if the queue is empty.
    std::optional<Frame> TryPop();
    /// Waits up to `timeout` for a frame; nullopt on timeout, or at once when the source is
    /// stopped/terminal and its queue empty.
    std::optional<Frame> WaitPop(std::chrono::milliseconds timeout);
    /// True when the source is terminal (ended, failed, stopped) and its queue is empty:
    /// no frame will ever come again.
    bool Exhausted() const;

    /// Stops decoding (state kStopped unless already terminal) and discards queued frames.
    /// Idempotent; returns within about `stop_grace`.
    void Stop(std::chrono::milliseconds stop_grace = std::chrono::milliseconds(500));
    /// Asks the decoder to stop and returns at once; Stop() completes it. Lets a caller stop
    /// many sources within one grace period.
    void RequestStop();

    struct Impl;

  private:
    explicit Source(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;
};

}  // namespace fg::stream
