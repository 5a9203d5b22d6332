// SPDX-License-Identifier: Apache-2.0
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "fg/events/sink.h"

namespace fg::events {
namespace {

struct ParsedUrl {
    std::string scheme_host_port;  // what httplib::Client takes
    std::string path;
    std::string user, password;    // userinfo, sent as basic auth
    std::string redacted;          // the URL for logs: credentials replaced by ***
};

Result<ParsedUrl> ParseUrl(const std::string& url) {
    const auto sep = url.find("://");
    if (sep == std::string::npos) {
        return InvalidArgument("webhook url: expected http://host[:port]/path, got '" + url + "'");
    }
    const std::string scheme = url.substr(0, sep);
    if (scheme != "http" && scheme != "https") {
        return InvalidArgument("webhook url: scheme must be http or https, got '" + scheme + "'");
    }
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
    if (scheme == "https") {
        return InvalidArgument("webhook url: https needs cpp-httplib built with OpenSSL");
    }
#endif
    const auto host_begin = sep + 3;
    const auto slash = url.find('/', host_begin);
    std::string host_port =
        url.substr(host_begin, slash == std::string::npos ? std::string::npos : slash - host_begin);
    ParsedUrl out;
    out.path = slash == std::string::npos ? "/" : url.substr(slash);
    out.redacted = url;
    if (const auto at = host_port.rfind('@'); at != std::string::npos) {
        const std::string userinfo = host_port.substr(0, at);
        const auto colon = userinfo.find(':');
        out.user = userinfo.substr(0, colon);
        out.password = colon == std::string::npos ? "" : userinfo.substr(colon + 1);
        host_port = host_port.substr(at + 1);
        out.redacted = scheme + "://***@" + host_port + out.path;
    }
    if (host_port.empty() || host_port.front() == ':') {
        return InvalidArgument("webhook url: missing host in '" + out.redacted + "'");
    }
    out.scheme_host_port = scheme + "://" + host_port;
    return out;
}

enum class Outcome { kDelivered, kRetry, kReject };

// Everything the sender thread touches. Shared with the thread so that, in the worst case
// (a request that ignores the abort), the destructor can detach instead of hanging.
struct State {
    State(WebhookSinkConfig c, ParsedUrl u) : config(std::move(c)), url(std::move(u)) {}

    const WebhookSinkConfig config;
    const ParsedUrl url;
    std::unique_ptr<httplib::Client> client;  // used by the sender; stop() from the destructor

    struct Item {
        std::uint64_t seq;
        std::shared_ptr<const std::string> body;
        int attempts;
    };

    std::mutex mu;
    std::condition_variable wake;     // sender: new item or stop
    std::condition_variable changed;  // Flush/destructor: progress or exit
    std::deque<Item> queue;           // front is the item being sent (or retried)
    std::uint64_t next_seq = 0;
    bool in_flight = false;
    bool stop = false;
    bool exited = false;
    std::optional<std::chrono::steady_clock::time_point> request_started;  // guarded by mu
    std::atomic<bool> deadline_hit{false};
    std::chrono::steady_clock::time_point last_drop_log{};  // guarded by mu

    std::atomic<std::uint64_t> published{0};
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> failed{0};

    Outcome Send(const std::string& body, std::string& why) {
        httplib::Request req;
        req.method = "POST";
        req.path = url.path;
        for (const auto& [k, v] : config.headers) req.headers.emplace(k, v);
        req.headers.emplace("Content-Type", "application/json");
        req.body = body;
        std::size_t received = 0;
        bool too_large = false;
        // Read the answer only up to the cap: a receiver must not make us buffer a huge body.
        req.content_receiver = [&](const char*, std::size_t n, std::uint64_t, std::uint64_t) {
            received += n;
            too_large = received > config.max_response_bytes;
            return !too_large;
        };
        httplib::Response res;
        httplib::Error error = httplib::Error::Success;
        {
            std::lock_guard lock(mu);
            request_started = std::chrono::steady_clock::now();
        }
        const bool ok = client->send(req, res, error);
        {
            std::lock_guard lock(mu);
            request_started.reset();
        }
        if (deadline_hit.exchange(false)) {
            why = "no answer within request_deadline_ms";
            return Outcome::kRetry;
        }
        if (!ok && !too_large) {
            why = httplib::to_string(error);
            return Outcome::kRetry;
        }
        const int status = res.status;
        why = "HTTP " + std::to_string(status) + (too_large ? " (response body over the cap, discarded)" : "");
        if (status >= 200 && status < 300) {
            return Outcome::kDelivered;
        }
        // Server trouble or rate limiting may pass; other client errors will not.
        if (status >= 500 || status == 429 || status == 408 || status <= 0) {
            return Outcome::kRetry;
        }
        return Outcome::kReject;
    }

    /// Aborts the request in flight once it has run past request_deadline (on its own thread:
    /// the sender is blocked inside the request).
    void Watch() {
        std::unique_lock lock(mu);
        while (!exited) {
            changed.wait_for(lock, std::chrono::milliseconds(50));
            if (request_started &&
                std::chrono::steady_clock::now() - *request_started > config.request_deadline) {
                request_started.reset();
                deadline_hit = true;
                lock.unlock();
                client->stop();
                lock.lock();
            }
        }
    }

    void NoteDropped(std::uint64_t n) {
        dropped.fetch_add(n);
        const auto now = std::chrono::steady_clock::now();
        if (now - last_drop_log >= std::chrono::seconds(10)) {
            last_drop_log = now;
            spdlog::warn("webhook {}: {} event(s) dropped so far", url.redacted, dropped.load());
        }
    }

    void Run() {
        auto backoff = config.initial_backoff;
        bool failing = false;
        std::unique_lock lock(mu);
        while (true) {
            wake.wait(lock, [&] { return stop || !queue.empty(); });
            if (stop) {
                break;
            }
            const Item item = queue.front();
            in_flight = true;
            lock.unlock();
            std::string why;
            const Outcome outcome = Send(*item.body, why);
            lock.lock();
            in_flight = false;
            // Publish never evicts the item in flight, so it is still at the front.
            const bool at_front = !queue.empty() && queue.front().seq == item.seq;
            if (outcome == Outcome::kDelivered) {
                delivered.fetch_add(1);
                if (at_front) {
                    queue.pop_front();
                }
                if (failing) {
                    spdlog::info("webhook {}: delivering again", url.redacted);
                    failing = false;
                }
                backoff = config.initial_backoff;
                changed.notify_all();
                continue;
            }
            if (stop) {
                break;  // aborted by the destructor; not a delivery failure
            }
            failed.fetch_add(1);
            if (outcome == Outcome::kReject) {
                spdlog::warn("webhook {}: event rejected ({}), dropped", url.redacted, why);
                if (at_front) {
                    queue.pop_front();
                    NoteDropped(1);
                }
                changed.notify_all();
                continue;
            }
            if (!failing) {
                spdlog::warn("webhook {}: delivery failing ({}), retrying with backoff",
                             url.redacted, why);
                failing = true;
            }
            if (at_front) {
                Item& front = queue.front();
                ++front.attempts;
                if (config.max_attempts > 0 && front.attempts >= config.max_attempts) {
                    queue.pop_front();
                    NoteDropped(1);
                    changed.notify_all();
                }
            }
            wake.wait_for(lock, backoff, [&] { return stop; });
            backoff = std::min(
                config.max_backoff,
                std::chrono::milliseconds(static_cast<std::int64_t>(
                    std::ceil(static_cast<double>(backoff.count()) * config.backoff_multiplier))));
        }
        dropped.fetch_add(queue.size());
        queue.clear();
        exited = true;
        changed.notify_all();
    }
};

class WebhookSink : public Sink {
  public:
    explicit WebhookSink(std::shared_ptr<State> state) : state_(std::move(state)) {
        thread_ = std::thread([s = state_] { s->Run(); });
        watchdog_ = std::thread([s = state_] { s->Watch(); });
    }

    ~WebhookSink() override {
        const auto deadline = std::chrono::steady_clock::now() + state_->config.stop_timeout;
        {
            std::lock_guard lock(state_->mu);
            state_->stop = true;
        }
        state_->wake.notify_all();
        std::unique_lock lock(state_->mu);
        // Abort a request in flight; repeated because the sender may start one between our
        // stop flag and its own check.
        while (!state_->exited && std::chrono::steady_clock::now() < deadline) {
            lock.unlock();
            state_->client->stop();
            lock.lock();
            state_->changed.wait_until(
                lock, std::min(deadline, std::chrono::steady_clock::now() +
                                             std::chrono::milliseconds(20)),
                [&] { return state_->exited; });
        }
        const bool exited = state_->exited;
        lock.unlock();
        // The watchdog ends once the sender has (it holds the state, so detaching is safe).
        watchdog_.detach();
        if (exited) {
            thread_.join();
        } else {
            spdlog::warn("webhook {}: sender did not stop within {} ms; detached",
                         state_->url.redacted, state_->config.stop_timeout.count());
            thread_.detach();  // it owns a reference to the state and exits on its own
        }
    }

    Status Publish(const Event& event) override {
        auto body = std::make_shared<const std::string>(ToJsonLine(event));
        std::lock_guard lock(state_->mu);
        state_->published.fetch_add(1);
        if (state_->stop) {
            state_->dropped.fetch_add(1);
            return FailedPrecondition(name() + ": stopped");
        }
        // The event being sent does not count against the buffer and is never evicted, so
        // a delivery in flight is never also counted as dropped.
        const std::size_t sending = state_->in_flight ? 1 : 0;
        if (state_->queue.size() - sending >= state_->config.max_buffered) {
            // Newest events matter most: evict the oldest waiting one and count the loss.
            state_->queue.erase(state_->queue.begin() + static_cast<std::ptrdiff_t>(sending));
            state_->NoteDropped(1);
        }
        state_->queue.push_back({state_->next_seq++, std::move(body), 0});
        state_->wake.notify_one();
        return Status::Ok();
    }

    Status Flush(Deadline deadline) override {
        std::unique_lock lock(state_->mu);
        const bool drained = state_->changed.wait_until(lock, deadline, [&] {
            return state_->exited || (state_->queue.empty() && !state_->in_flight);
        });
        if (!drained || !state_->queue.empty()) {
            return Status(StatusCode::kDeadlineExceeded,
                          name() + ": " + std::to_string(state_->queue.size()) +
                              " events still pending");
        }
        return Status::Ok();
    }

    SinkStats stats() const override {
        return {state_->published.load(), state_->delivered.load(), state_->dropped.load(),
                state_->failed.load()};
    }

    std::string name() const override { return "webhook:" + state_->url.redacted; }

  private:
    std::shared_ptr<State> state_;
    std::thread watchdog_;
    std::thread thread_;
};

}  // namespace

Status WebhookSinkConfig::Validate() const {
    FG_RETURN_IF_ERROR(ParseUrl(url).status());
    if (max_buffered < 1) {
        return InvalidArgument("webhook: max_buffered must be >= 1");
    }
    if (connect_timeout.count() < 1) {
        return InvalidArgument("webhook: connect_timeout must be >= 1 ms");
    }
    if (request_timeout.count() < 1) {
        return InvalidArgument("webhook: request_timeout must be >= 1 ms");
    }
    if (request_deadline < request_timeout) {
        return InvalidArgument("webhook: request_deadline must be >= request_timeout");
    }
    if (max_response_bytes < 1) {
        return InvalidArgument("webhook: max_response_bytes must be >= 1");
    }
    if (initial_backoff.count() < 1) {
        return InvalidArgument("webhook: initial_backoff must be >= 1 ms");
    }
    if (max_backoff < initial_backoff) {
        return InvalidArgument("webhook: max_backoff must be >= initial_backoff");
    }
    if (!std::isfinite(backoff_multiplier) || backoff_multiplier < 1) {
        return InvalidArgument("webhook: backoff_multiplier must be >= 1");
    }
    if (max_attempts < 0) {
        return InvalidArgument("webhook: max_attempts must be >= 0 (0 = unlimited)");
    }
    if (stop_timeout.count() < 0) {
        return InvalidArgument("webhook: stop_timeout must be >= 0 ms");
    }
    return Status::Ok();
}

Result<std::unique_ptr<Sink>> CreateWebhookSink(const WebhookSinkConfig& config) {
    FG_RETURN_IF_ERROR(config.Validate());
    FG_ASSIGN_OR_RETURN(ParsedUrl url, ParseUrl(config.url));
    auto state = std::make_shared<State>(config, url);
    state->client = std::make_unique<httplib::Client>(url.scheme_host_port);
    if (!state->client->is_valid()) {
        return InvalidArgument("webhook url: cannot use '" + url.redacted + "'");
    }
    if (!url.user.empty()) state->client->set_basic_auth(url.user, url.password);
    state->client->set_connection_timeout(config.connect_timeout);
    state->client->set_read_timeout(config.request_timeout);
    state->client->set_write_timeout(config.request_timeout);
    state->client->set_keep_alive(true);
    // Without it, Nagle + delayed ACK add ~40 ms to every small POST on a kept-alive socket.
    state->client->set_tcp_nodelay(true);
    return std::unique_ptr<Sink>(std::make_unique<WebhookSink>(std::move(state)));
}

}  // namespace fg::events
