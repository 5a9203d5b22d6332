// SPDX-License-Identifier: Apache-2.0
#include "fg/stream/source.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "frame_pool.h"
#include "readers.h"

namespace fg::stream {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string_view SourceStateName(SourceState state) {
    switch (state) {
        case SourceState::kConnecting: return "connecting";
        case SourceState::kLive: return "live";
        case SourceState::kStalled: return "stalled";
        case SourceState::kFailed: return "failed";
        case SourceState::kEnded: return "ended";
        case SourceState::kStopped: return "stopped";
    }
    return "unknown";
}

std::string_view SourceKindName(SourceKind kind) {
    switch (kind) {
        case SourceKind::kAuto: return "auto";
        case SourceKind::kFile: return "file";
        case SourceKind::kRtsp: return "rtsp";
        case SourceKind::kHttp: return "http";
        case SourceKind::kDevice: return "device";
        case SourceKind::kImageFolder: return "folder";
    }
    return "unknown";
}

namespace {

bool StartsWith(const std::string& s, std::string_view prefix) {
    if (s.size() < prefix.size()) {
        return false;
    }
    return std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
    });
}

bool IsTerminal(SourceState s) {
    return s == SourceState::kFailed || s == SourceState::kEnded || s == SourceState::kStopped;
}

}  // namespace

SourceKind ResolveKind(const SourceConfig& config) {
    if (config.kind != SourceKind::kAuto) {
        return config.kind;
    }
    const std::string& uri = config.uri;
    if (StartsWith(uri, "rtsp://") || StartsWith(uri, "rtsps://")) {
        return SourceKind::kRtsp;
    }
    if (StartsWith(uri, "http://") || StartsWith(uri, "https://")) {
        return SourceKind::kHttp;
    }
    if (StartsWith(uri, "/dev/video") ||
        (!uri.empty() &&
         std::all_of(uri.begin(), uri.end(), [](unsigned char c) { return std::isdigit(c); }))) {
        return SourceKind::kDevice;
    }
    std::error_code ec;
    if (std::filesystem::is_directory(uri, ec)) {
        return SourceKind::kImageFolder;
    }
    return SourceKind::kFile;
}

bool IsLive(SourceKind kind) {
    return kind == SourceKind::kRtsp || kind == SourceKind::kHttp || kind == SourceKind::kDevice;
}

Status SourceConfig::Validate() const {
    const std::string where = "source '" + id + "': ";
    if (id.empty()) {
        return InvalidArgument("source: id must not be empty");
    }
    if (uri.empty()) {
        return InvalidArgument(where + "uri must not be empty");
    }
    if (queue_depth < 1) {
        return InvalidArgument(where + "queue_depth must be >= 1");
    }
    const SourceKind resolved = ResolveKind(*this);
    if (IsLive(resolved) && (process_every_frame || pace_native_fps || loop)) {
        return InvalidArgument(where +
                               (process_every_frame ? "process_every_frame"
                                : pace_native_fps   ? "pace_native_fps"
                                                    : "loop") +
                               " applies to files and image folders only, not to " +
                               std::string(SourceKindName(resolved)) + " sources");
    }
    if (max_frame_pixels == 0) {
        return InvalidArgument(where + "max_frame_pixels must be > 0");
    }
    if (!(folder_fps > 0 && folder_fps <= 1000)) {
        return InvalidArgument(where + "folder_fps must be in (0, 1000]");
    }
    if (open_timeout.count() <= 0) {
        return InvalidArgument(where + "open_timeout must be > 0");
    }
    if (read_timeout.count() <= 0) {
        return InvalidArgument(where + "read_timeout must be > 0");
    }
    if (stall_timeout.count() <= 0) {
        return InvalidArgument(where + "stall_timeout must be > 0");
    }
    if (reconnect.min.count() < 0 || reconnect.max < reconnect.min) {
        return InvalidArgument(where + "reconnect.min must be >= 0 and <= reconnect.max");
    }
    if (!(reconnect.multiplier >= 1.0)) {
        return InvalidArgument(where + "reconnect.multiplier must be >= 1");
    }
    if (reconnect.max_attempts < 0) {
        return InvalidArgument(where + "reconnect.max_attempts must be >= 0 (0 = forever)");
    }
    if (device_width < 0 || device_height < 0 || device_fps < 0) {
        return InvalidArgument(where + "device_width, device_height and device_fps must be >= 0");
    }
    return Status::Ok();
}

// Shared between the Source handle and its threads: a decoder thread abandoned by Stop()
// keeps it alive until its blocking call returns.
struct Source::Impl {
    SourceConfig config;
    SourceKind kind = SourceKind::kAuto;

    std::mutex callback_mu;  // serialises callbacks (ordered transitions) and their disabling
    Callbacks callbacks;
    bool callbacks_enabled = true;

    mutable std::mutex mu;
    std::condition_variable frame_cv;  // consumer: a frame or a terminal state
    std::condition_variable space_cv;  // producer in process_every_frame mode
    std::condition_variable stop_cv;   // sleeps (backoff, pacing, watchdog) and worker_done
    std::deque<Frame> queue;
    SourceState state = SourceState::kConnecting;
    bool stop_requested = false;
    bool stop_called = false;
    bool worker_done = false;
    SourceStats stats;
    std::uint64_t next_sequence = 0;
    Clock::time_point fps_window_start{};
    std::uint64_t fps_window_frames = 0;

    std::thread worker;
    std::thread watchdog;

    void Run();
    void RunChecked();
    void Watch();

    /// Moves to `next` unless the state is terminal; fires the callback outside `mu`.
    /// `only_if_quiet`: the watchdog's transition, re-checked under the lock.
    void SetState(SourceState next, const std::string& error, bool only_if_quiet = false);
    void RecordError(const std::string& error) {
        std::lock_guard lock(mu);
        stats.last_error = error;
    }
    bool Stopping() const {
        std::lock_guard lock(mu);
        return stop_requested;
    }
    /// False when stopped while sleeping.
    bool SleepUntil(Clock::time_point deadline) {
        std::unique_lock lock(mu);
        return !stop_cv.wait_until(lock, deadline, [&] { return stop_requested; });
    }
    /// False when stopped before the frame could be queued.
    bool Push(Frame frame);
};

void Source::Impl::SetState(SourceState next, const std::string& error, bool only_if_quiet) {
    std::lock_guard callback_lock(callback_mu);
    StateChange change;
    {
        std::lock_guard lock(mu);
        if (only_if_quiet && (state != SourceState::kLive ||
                              Clock::now() - stats.last_frame_time < config.stall_timeout)) {
            return;
        }
        if (!error.empty()) {
            stats.last_error = error;
        }
        if (IsTerminal(state) || state == next) {
            return;
        }
        change = {config.id, state, next, error};
        state = next;
        stats.state = next;
    }
    if (IsTerminal(next)) {
        frame_cv.notify_all();
    }
    if (next == SourceState::kLive || next == SourceState::kEnded ||
        next == SourceState::kStopped) {
        spdlog::info("source '{}': {} -> {}", config.id, SourceStateName(change.previous),
                     SourceStateName(next));
    } else {
        spdlog::warn("source '{}': {} -> {}{}{}", config.id, SourceStateName(change.previous),
                     SourceStateName(next), error.empty() ? "" : ": ", error);
    }
    if (callbacks_enabled && callbacks.on_state) {
        callbacks.on_state(change);
    }
}

bool Source::Impl::Push(Frame frame) {
    bool became_live = false;
    {
        std::unique_lock lock(mu);
        if (config.process_every_frame) {
            space_cv.wait(lock,
                          [&] { return stop_requested || queue.size() < config.queue_depth; });
        }
        if (stop_requested) {
            return false;
        }
        while (queue.size() >= config.queue_depth) {
            queue.pop_front();  // the consumer wants the newest frame, not a backlog
            ++stats.frames_dropped;
        }
        const auto now = frame.capture_time;
        ++stats.frames_decoded;
        stats.last_frame_time = now;
        stats.width = frame.image.cols;
        stats.height = frame.image.rows;
        if (fps_window_frames == 0) {
            fps_window_start = now;
        }
        ++fps_window_frames;
        const auto window = now - fps_window_start;
        if (window >= std::chrono::seconds(1)) {
            stats.fps = (fps_window_frames - 1) / std::chrono::duration<double>(window).count();
            fps_window_start = now;
            fps_window_frames = 1;
        }
        queue.push_back(std::move(frame));
        became_live = state != SourceState::kLive;
    }
    frame_cv.notify_one();
    if (became_live) {
        SetState(SourceState::kLive, "");
    }
    std::lock_guard callback_lock(callback_mu);
    if (callbacks_enabled && callbacks.on_frame) {
        callbacks.on_frame();
    }
    return true;
}

void Source::Impl::Watch() {
    // Catches stalls while the decoder is blocked in a read (V4L2 has no read timeout, and
    // FFmpeg's may be longer than stall_timeout).
    const milliseconds interval =
        std::clamp(std::chrono::duration_cast<milliseconds>(config.stall_timeout / 4),
                   milliseconds(20), milliseconds(500));
    for (;;) {
        {
            std::unique_lock lock(mu);
            if (stop_cv.wait_for(lock, interval,
                                 [&] { return stop_requested || IsTerminal(state); })) {
                return;
            }
            if (state != SourceState::kLive ||
                Clock::now() - stats.last_frame_time < config.stall_timeout) {
                continue;
            }
        }
        SetState(SourceState::kStalled,
                 "no frame for " + std::to_string(config.stall_timeout.count()) + " ms", true);
    }
}

void Source::Impl::RunChecked() {
    try {
        Run();
    } catch (const std::exception& e) {
        SetState(SourceState::kFailed, std::string("internal error: ") + e.what());
    }
    {
        std::lock_guard lock(mu);
        worker_done = true;
    }
    stop_cv.notify_all();
}

void Source::Impl::Run() {
    const bool live = IsLive(kind);
    const BackoffConfig& rc = config.reconnect;
    milliseconds backoff = rc.min;
    const auto next_backoff = [&] {
        backoff = std::min(
            rc.max, milliseconds(static_cast<std::int64_t>(backoff.count() * rc.multiplier)));
        if (backoff.count() == 0) {
            backoff = std::min(rc.max, milliseconds(1));
        }
    };
    int failures = 0;  // consecutive attempts without a frame
    bool opened_once = false;
    bool looping = false;  // reopening a finite source for `loop`, not a reconnect
    // Paced loops: when the first frame of the next pass is due. Without it the first frame
    // of a pass followed the last one of the previous pass at once, and a camera simulated
    // by a looped file delivered two frames in one interval at every loop (one dropped).
    std::optional<Clock::time_point> loop_due;
    std::uint32_t generation = 0;
    // Decoded frames live in the queue (queue_depth), with the consumer (one, usually) and in
    // the reader (one); a little slack for a consumer that holds a frame a moment longer.
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer cannot see the consumers' side of the pool's hand-off (cv::Mat drops a
    // reference with an atomic inside libopencv_core, which is not instrumented), so every reuse
    // would be reported as a race: under TSan the reader allocates each frame (pool of 0).
    internal::FramePool pool(0);
#else
    internal::FramePool pool(std::min<std::size_t>(config.queue_depth, 16) + 3);
#endif

    {
        // The first report: consumers learn the source exists and is connecting.
        std::lock_guard callback_lock(callback_mu);
        if (callbacks_enabled && callbacks.on_state) {
            callbacks.on_state({config.id, SourceState::kConnecting, SourceState::kConnecting, ""});
        }
    }

    while (!Stopping()) {
        if (!looping) {
            SetState(SourceState::kConnecting, "");
        }
        {
            std::lock_guard lock(mu);
            ++stats.open_attempts;
        }
        auto reader = internal::OpenReader(config, kind);
        if (Stopping()) {
            return;
        }
        if (!reader.ok()) {
            const std::string error = reader.status().message();
            if (!live) {
                SetState(SourceState::kFailed, error);
                return;
            }
            ++failures;
            if (rc.max_attempts > 0 && failures >= rc.max_attempts) {
                SetState(SourceState::kFailed,
                         error + " (gave up after " + std::to_string(failures) + " attempts)");
                return;
            }
            RecordError(error);
            spdlog::debug("source '{}': {}; retrying in {} ms", config.id, error, backoff.count());
            if (!SleepUntil(Clock::now() + backoff)) {
                return;
            }
            next_backoff();
            continue;
        }
        if (opened_once) {
            ++generation;
            if (!looping) {
                std::lock_guard lock(mu);
                ++stats.reconnects;
            }
        }
        opened_once = true;
        looping = false;

        internal::FrameReader& r = **reader;
        const double fps = r.fps() > 0 ? r.fps() : 0.0;
        std::uint64_t frames_this_open = 0;
        std::uint64_t index_this_open = 0;
        Clock::time_point pace_start{};
        Clock::time_point last_due{};
        std::chrono::microseconds last_offset{0};
        std::chrono::microseconds pace_base{0};
        internal::ReadResult result;
        for (;;) {
            cv::Mat image = pool.Acquire();
            result = r.Read(image);
            if (result.outcome == internal::ReadOutcome::kFrame) pool.Keep(image);
            if (Stopping()) {
                return;
            }
            if (result.outcome == internal::ReadOutcome::kSkipped) {
                spdlog::warn("source '{}': {}", config.id, result.message);
                std::lock_guard lock(mu);
                ++stats.files_skipped;
                ++index_this_open;
                continue;
            }
            if (result.outcome != internal::ReadOutcome::kFrame) {
                break;
            }
            if (config.pace_native_fps) {
                std::chrono::microseconds offset{0};
                if (result.media_time) {
                    offset = *result.media_time;
                } else if (fps > 0) {
                    offset = std::chrono::microseconds(
                        static_cast<std::int64_t>(index_this_open * 1e6 / fps));
                }
                // FFmpeg gives the frames it drains at the end of a file with B-frames
                // position 0: paced by that, they came in a burst (and a looped pass after
                // them too). Positions never go back within a pass: step one frame on.
                if (frames_this_open > 0 && offset <= last_offset) {
                    offset = last_offset + std::chrono::microseconds(static_cast<std::int64_t>(
                                               1e6 / (fps > 0 ? fps : config.folder_fps)));
                }
                last_offset = offset;
                if (frames_this_open == 0) {
                    pace_start = loop_due ? *loop_due : Clock::now();
                    pace_base = offset;
                    loop_due.reset();
                }
                const Clock::time_point due = pace_start + (offset - pace_base);
                if (due > Clock::now() && !SleepUntil(due)) {
                    return;
                }
                last_due = due;
            }
            Frame frame;
            frame.source_id = config.id;
            frame.image = std::move(image);
            frame.capture_time = Clock::now();
            frame.media_time = result.media_time;
            frame.generation = generation;
            {
                std::lock_guard lock(mu);
                frame.sequence = next_sequence++;
            }
            if (!Push(std::move(frame))) {
                return;
            }
            ++frames_this_open;
            ++index_this_open;
            failures = 0;
            backoff = rc.min;
        }

        if (result.outcome == internal::ReadOutcome::kEnd) {
            if (frames_this_open == 0) {
                SetState(SourceState::kFailed, std::string(SourceKindName(kind)) + " '" +
                                                   config.uri + "': no decodable frame");
                return;
            }
            if (config.loop) {
                looping = true;
                if (config.pace_native_fps && last_due != Clock::time_point{}) {
                    loop_due = last_due + std::chrono::microseconds(static_cast<std::int64_t>(
                                              1e6 / (fps > 0 ? fps : config.folder_fps)));
                }
                continue;
            }
            SetState(SourceState::kEnded, "");
            return;
        }
        // A file or folder that errors (a frame above max_frame_pixels) will do it again.
        if (!IsLive(kind)) {
            SetState(SourceState::kFailed, result.message);
            return;
        }
        // A live source lost its stream: report it, then reconnect after the backoff.
        if (frames_this_open == 0) {
            ++failures;
            if (rc.max_attempts > 0 && failures >= rc.max_attempts) {
                SetState(SourceState::kFailed, result.message + " (gave up after " +
                                                   std::to_string(failures) + " attempts)");
                return;
            }
        }
        SetState(SourceState::kStalled, result.message);
        if (!SleepUntil(Clock::now() + backoff)) {
            return;
        }
        next_backoff();
    }
}

Result<std::unique_ptr<Source>> Source::Create(SourceConfig config, Callbacks callbacks) {
    FG_RETURN_IF_ERROR(config.Validate());
    auto impl = std::make_shared<Impl>();
    impl->kind = ResolveKind(config);
    impl->config = std::move(config);
    impl->callbacks = std::move(callbacks);
    impl->stats.id = impl->config.id;
    impl->stats.kind = impl->kind;
    impl->stats.state = SourceState::kConnecting;
    // Each thread holds the Impl, so an abandoned decoder never touches freed memory.
    impl->worker = std::thread([impl] { impl->RunChecked(); });
    impl->watchdog = std::thread([impl] { impl->Watch(); });
    return std::unique_ptr<Source>(new Source(std::move(impl)));
}

Source::Source(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Source::~Source() {
    Stop();
}

const SourceConfig& Source::config() const {
    return impl_->config;
}

SourceState Source::state() const {
    std::lock_guard lock(impl_->mu);
    return impl_->state;
}

SourceStats Source::Stats() const {
    std::lock_guard lock(impl_->mu);
    SourceStats stats = impl_->stats;
    // The window rate is only refreshed by new frames; a silent source has no rate.
    if (stats.frames_decoded == 0 ||
        Clock::now() - stats.last_frame_time > std::chrono::seconds(2)) {
        stats.fps = 0.0;
    }
    return stats;
}

std::optional<Frame> Source::TryPop() {
    std::optional<Frame> frame;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->queue.empty()) {
            return std::nullopt;
        }
        frame = std::move(impl_->queue.front());
        impl_->queue.pop_front();
        ++impl_->stats.frames_delivered;
    }
    impl_->space_cv.notify_one();
    return frame;
}

std::optional<Frame> Source::WaitPop(std::chrono::milliseconds timeout) {
    std::optional<Frame> frame;
    {
        std::unique_lock lock(impl_->mu);
        impl_->frame_cv.wait_for(lock, timeout, [&] {
            return !impl_->queue.empty() || IsTerminal(impl_->state) || impl_->stop_requested;
        });
        if (impl_->queue.empty()) {
            return std::nullopt;
        }
        frame = std::move(impl_->queue.front());
        impl_->queue.pop_front();
        ++impl_->stats.frames_delivered;
    }
    impl_->space_cv.notify_one();
    return frame;
}

bool Source::Exhausted() const {
    std::lock_guard lock(impl_->mu);
    return IsTerminal(impl_->state) && impl_->queue.empty();
}

void Source::RequestStop() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stop_requested = true;
    }
    impl_->stop_cv.notify_all();
    impl_->space_cv.notify_all();
    impl_->frame_cv.notify_all();
}

void Source::Stop(std::chrono::milliseconds stop_grace) {
    Impl& impl = *impl_;
    {
        std::lock_guard lock(impl.mu);
        if (impl.stop_called) {
            return;
        }
        impl.stop_called = true;
    }
    RequestStop();

    bool done = false;
    {
        std::unique_lock lock(impl.mu);
        done = impl.stop_cv.wait_for(lock, stop_grace, [&] { return impl.worker_done; });
    }
    if (done) {
        impl.worker.join();
    } else {
        // Blocked inside FFmpeg/V4L2; it returns within open/read_timeout and then exits.
        spdlog::warn(
            "source '{}': decoder still blocked after {} ms; leaving it to exit on its own",
            impl.config.id, stop_grace.count());
        impl.worker.detach();
    }
    impl.watchdog.join();  // never blocks for long: it only sleeps on stop_cv

    impl.SetState(SourceState::kStopped, "");
    {
        std::lock_guard callback_lock(impl.callback_mu);
        impl.callbacks_enabled = false;
        impl.callbacks = {};
    }
    {
        std::lock_guard lock(impl.mu);
        impl.queue.clear();
    }
    impl.frame_cv.notify_all();
}

}  // namespace fg::stream
