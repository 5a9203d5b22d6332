// SPDX-License-Identifier: Apache-2.0
#include "test_util.h"

#include <csignal>
#include <cstring>
#include <mutex>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

namespace fg::stream::test {

cv::Mat PatternFrame(int index, cv::Size size) {
    cv::Mat frame(size, CV_8UC3, cv::Scalar(40, 60, 80));
    const int side = size.height / 4;
    const int x = (index * 7) % std::max(1, size.width - side);
    cv::rectangle(frame, cv::Rect(x, size.height / 3, side, side), cv::Scalar(255, 255, 255),
                  cv::FILLED);
    return frame;
}

bool WriteTestVideo(const std::filesystem::path& path, int frames, double fps, cv::Size size) {
    cv::VideoWriter writer(path.string(), cv::CAP_FFMPEG,
                           cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, size);
    if (!writer.isOpened()) {
        return false;
    }
    for (int i = 0; i < frames; ++i) {
        writer.write(PatternFrame(i, size));
    }
    return true;
}

namespace {
sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}
}  // namespace

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
    return WaitFor(
        [port] {
            const int fd = socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in addr = Loopback(port);
            const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
            close(fd);
            return ok;
        },
        timeout);
}

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return pred();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

ChildProcess::ChildProcess(std::vector<std::string> argv) {
    std::vector<char*> args;
    for (auto& a : argv) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
        execv(args[0], args.data());
        _exit(127);
    }
}

ChildProcess::~ChildProcess() {
    Kill9();
}

void ChildProcess::Kill9() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
}

LoopbackServer::LoopbackServer(Mode mode, std::chrono::milliseconds frame_interval)
    : mode_(mode), frame_interval_(frame_interval) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Loopback(0);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
}

LoopbackServer::~LoopbackServer() {
    Close();
}

void LoopbackServer::Close() {
    stop_ = true;
    if (thread_.joinable()) {
        thread_.join();
    }
    if (listen_fd_ >= 0) {
        close(listen_fd_);
        listen_fd_ = -1;
    }
}

void LoopbackServer::Serve() {
    std::vector<int> clients;
    int index = 0;
    auto next_frame = std::chrono::steady_clock::now();
    while (!stop_) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
            const int fd = accept(listen_fd_, nullptr, nullptr);
            if (fd >= 0) {
                if (mode_ == Mode::kMjpeg) {
                    // Read the request head; a real server would parse it.
                    char buf[2048];
                    pollfd c{fd, POLLIN, 0};
                    if (poll(&c, 1, 1000) > 0) {
                        (void)!read(fd, buf, sizeof buf);
                    }
                    const std::string head =
                        "HTTP/1.0 200 OK\r\nContent-Type: "
                        "multipart/x-mixed-replace;boundary=fgframe\r\n\r\n";
                    (void)!send(fd, head.data(), head.size(), MSG_NOSIGNAL);
                }
                clients.push_back(fd);
            }
        }
        if (mode_ == Mode::kMjpeg && !clients.empty() &&
            std::chrono::steady_clock::now() >= next_frame) {
            next_frame = std::chrono::steady_clock::now() + frame_interval_;
            std::vector<uchar> jpeg;
            cv::imencode(".jpg", PatternFrame(index++), jpeg);
            const std::string part = "--fgframe\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                     std::to_string(jpeg.size()) + "\r\n\r\n";
            for (auto it = clients.begin(); it != clients.end();) {
                const bool ok = send(*it, part.data(), part.size(), MSG_NOSIGNAL) >= 0 &&
                                send(*it, jpeg.data(), jpeg.size(), MSG_NOSIGNAL) >= 0 &&
                                send(*it, "\r\n", 2, MSG_NOSIGNAL) >= 0;
                if (!ok) {
                    close(*it);
                    it = clients.erase(it);
                } else {
                    ++it;
                }
            }
        }
    }
    for (int fd : clients) {
        close(fd);
    }
}

}  // namespace fg::stream::test
