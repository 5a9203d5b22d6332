// SPDX-License-Identifier: Apache-2.0
// Event sinks: where stream events go. JSON-lines (file or stdout), webhook (HTTP POST with a
// bounded buffer and retries), fan-out, and an in-memory sink for tests. The service and the
// message bus attach later through the same interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/events/event.h"

namespace fg::events {

using Deadline = std::chrono::steady_clock::time_point;

/// Counters since creation. published = accepted by Publish; delivered = written or
/// acknowledged (2xx); dropped = lost (buffer overflow, rejected by the server, or left over at
/// shutdown); failed_attempts = failed writes/requests (each retry counts).
struct SinkStats {
    std::uint64_t published = 0;
    std::uint64_t delivered = 0;
    std::uint64_t dropped = 0;
    std::uint64_t failed_attempts = 0;
};

/// Destination of events.
/// Thread-safety: every implementation is thread-safe; Publish is called from several stream
/// threads at once. Publish never blocks on the network (buffering sinks return at once).
class Sink {
  public:
    virtual ~Sink() = default;

    /// Hands one event over. An error means this event was not accepted (it is also counted).
    virtual Status Publish(const Event& event) = 0;
    /// Waits until everything published so far is delivered or `deadline` passes;
    /// DeadlineExceeded then, with the number still pending in the message.
    virtual Status Flush(Deadline deadline) = 0;
    virtual SinkStats stats() const = 0;
    /// Short description for logs and stats, e.g. "jsonl:/var/log/events.jsonl".
    virtual std::string name() const = 0;
};

/// Convenience: Flush with a timeout from now.
Status FlushFor(Sink& sink, std::chrono::milliseconds timeout);

struct JsonLinesSinkConfig {
    /// File to append to (created 0600 if missing); "-" or empty = stdout.
    std::string path = "-";
    /// Events waiting for the writer thread; when full, the oldest is dropped (counted, logged).
    std::size_t max_queued = 10000;
    Status Validate() const;
};

/// One JSON object per line, written by its own thread from a bounded queue, so a slow disk or
/// a stdout nobody reads never stalls a stream thread (Publish only enqueues). Each line is
/// flushed (fflush) when written: a crash loses at most what was queued. Files are opened in append mode.
Result<std::unique_ptr<Sink>> CreateJsonLinesSink(const JsonLinesSinkConfig& config);

struct WebhookSinkConfig {
    /// "http[s]://[user:password@]host[:port]/path" (https when cpp-httplib has OpenSSL, as
    /// Debian's does). Credentials are sent as basic auth and never appear in logs or names.
    std::string url;
    /// Extra request headers, e.g. {"Authorization", "Bearer ..."}.
    std::vector<std::pair<std::string, std::string>> headers;
    /// Events waiting for delivery (not counting the one being sent); when full, the oldest
    /// waiting one is dropped and counted. Bounds memory while the server is down.
    std::size_t max_buffered = 1000;
    std::chrono::milliseconds connect_timeout{2000};
    /// Read/write timeout of one request (each socket operation).
    std::chrono::milliseconds request_timeout{5000};
    /// Overall deadline of one request, connection to last byte: a receiver that answers one
    /// byte at a time cannot hold the sender. Aborted requests are retried like timeouts.
    std::chrono::milliseconds request_deadline{15000};
    /// Response bodies are read up to this size and discarded; a longer one aborts the request.
    std::size_t max_response_bytes = 64 * 1024;
    /// Backoff after a failed attempt (connection error, timeout, 5xx or 429): initial, then
    /// multiplied by backoff_multiplier up to max_backoff; reset after a success.
    std::chrono::milliseconds initial_backoff{200};
    std::chrono::milliseconds max_backoff{30000};
    double backoff_multiplier = 2.0;
    /// Attempts per event before it is dropped; 0 = retry until delivered or pushed out of the
    /// buffer by newer events. Other 4xx answers drop the event at once (retrying cannot help).
    int max_attempts = 0;
    /// Upper bound on how long the destructor waits for the sender thread.
    std::chrono::milliseconds stop_timeout{2000};

    Status Validate() const;
};

/// HTTP POST of each event's JSON (Content-Type: application/json) from one background thread,
/// in publish order. Publish only enqueues. The destructor does not drain: call Flush first;
/// it aborts any request in flight and returns within stop_timeout, counting what is left as
/// dropped.
Result<std::unique_ptr<Sink>> CreateWebhookSink(const WebhookSinkConfig& config);

/// Publishes to every child; Publish/Flush return the first error after trying all children.
/// stats() sums the children; child_stats() gives each one by name.
class MultiSink : public Sink {
  public:
    explicit MultiSink(std::vector<std::unique_ptr<Sink>> children);
    Status Publish(const Event& event) override;
    Status Flush(Deadline deadline) override;
    SinkStats stats() const override;
    std::string name() const override;
    std::vector<std::pair<std::string, SinkStats>> child_stats() const;

  private:
    std::vector<std::unique_ptr<Sink>> children_;
};

/// Keeps every event in memory (tests, and the pipeline's own bookkeeping).
class MemorySink : public Sink {
  public:
    Status Publish(const Event& event) override;
    Status Flush(Deadline deadline) override;
    SinkStats stats() const override;
    std::string name() const override { return "memory"; }
    std::vector<Event> events() const;

  private:
    mutable std::mutex mu_;
    std::vector<Event> events_;
};

/// Builds a sink from its config object (as in `facegate run` config files):
///   {"type": "jsonl", "path": "-"}
///   {"type": "webhook", "url": "http://...", "headers": {"K": "V"}, "max_buffered": 1000,
///    "connect_timeout_ms": 2000, "request_timeout_ms": 5000, "initial_backoff_ms": 200,
///    "max_backoff_ms": 30000, "max_attempts": 0}
/// Unknown keys and bad values are errors naming the key (prefixed by `where`, e.g. "sinks[1]").
Result<std::unique_ptr<Sink>> CreateSinkFromJson(const nlohmann::json& config,
                                                 const std::string& where = "sink");

}  // namespace fg::events
