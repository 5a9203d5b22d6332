// SPDX-License-Identifier: Apache-2.0
// Helpers for the stream tests: synthetic videos, loopback servers, child processes.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include <opencv2/core.hpp>

namespace fg::stream::test {

/// A frame with a white square at a position depending on `index` (so frames differ).
cv::Mat PatternFrame(int index, cv::Size size = {320, 240});

/// Writes `frames` pattern frames as MJPEG in an AVI (FFmpeg backend). False on failure.
bool WriteTestVideo(const std::filesystem::path& path, int frames, double fps = 25.0,
                    cv::Size size = {320, 240});

/// Polls until 127.0.0.1:port accepts a connection or `timeout` passes.
bool WaitForPort(int port, std::chrono::milliseconds timeout);

/// Polls `pred` every 10 ms until true or `timeout`; returns the last value.
bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

/// A child process (fork + exec), killed with SIGKILL by the destructor if still running.
class ChildProcess {
  public:
    explicit ChildProcess(std::vector<std::string> argv);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    bool started() const { return pid_ > 0; }
    void Kill9();

  private:
    pid_t pid_ = -1;
};

/// A loopback TCP server. kSilent accepts and never answers (an open that hangs);
/// kMjpeg serves an endless multipart/x-mixed-replace JPEG stream to each client.
class LoopbackServer {
  public:
    enum class Mode { kSilent, kMjpeg };
    /// kMjpeg sends a frame every `frame_interval` to every client.
    explicit LoopbackServer(Mode mode,
                            std::chrono::milliseconds frame_interval = std::chrono::milliseconds(40));
    ~LoopbackServer();  ///< closes the socket and every connection
    LoopbackServer(const LoopbackServer&) = delete;
    LoopbackServer& operator=(const LoopbackServer&) = delete;
    int port() const { return port_; }
    void Close();

  private:
    void Serve();
    Mode mode_;
    std::chrono::milliseconds frame_interval_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace fg::stream::test
