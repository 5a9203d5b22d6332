// SPDX-License-Identifier: Apache-2.0
// A small blocking HTTP/1.1 client for the server tests (plain or TLS). Every operation has a
// bounded wait (asynchronous ops on a private io_context run with run_for), so no test hangs.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fg::server::testing {

struct Reply {
    int status = 0;  ///< 0 = no reply (connection closed or timed out)
    std::map<std::string, std::string> headers;  ///< lower-case names
    std::string body;
    std::string Header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() ? "" : it->second;
    }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class Client {
  public:
    /// Connects to 127.0.0.1:port (TLS without certificate checks when `tls`).
    explicit Client(int port, bool tls = false);
    ~Client();
    bool connected() const;
    /// One request on this (keep-alive) connection and its reply.
    Reply Do(const std::string& method, const std::string& target, const std::string& body = "",
             const Headers& headers = {}, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    bool SendRaw(const std::string& bytes);
    /// Reads one response (e.g. after SendRaw).
    Reply ReadReply(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    /// Reads raw bytes until `needle` shows up (true) or the timeout / close (false).
    bool ReadUntil(const std::string& needle, std::chrono::milliseconds timeout);
    /// True when the server closes the connection within `timeout` (data read meanwhile is dropped).
    bool WaitClosed(std::chrono::milliseconds timeout);
    /// Half-close: the server sees EOF.
    void ShutdownSend();
    void Close();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// A fresh connection, one request, the reply.
Reply Fetch(int port, const std::string& method, const std::string& target, const std::string& body = "",
            const Headers& headers = {}, bool tls = false);

}  // namespace fg::server::testing
