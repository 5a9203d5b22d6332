// SPDX-License-Identifier: Apache-2.0
// The webhook sink against a real cpp-httplib server on loopback (random port).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "fg/events/sink.h"

namespace fg::events {
namespace {

using namespace std::chrono_literals;

// A scriptable webhook receiver: can fail the next N requests, or hold requests until released.
class TestServer {
  public:
    /// Binds 127.0.0.1 on a random port, or on `port` when non-zero.
    explicit TestServer(int port = 0) {
        server_.Post("/events", [this](const httplib::Request& req, httplib::Response& res) {
            std::unique_lock lock(mu_);
            ++requests_;
            authorization_ = req.get_header_value("Authorization");
            content_type_ = req.get_header_value("Content-Type");
            cv_.notify_all();
            // Bounded so a broken test cannot hang the server forever.
            cv_.wait_for(lock, 60s, [&] { return !blocked_ || stopping_; });
            if (fail_next_ > 0) {
                --fail_next_;
                res.status = fail_status_;
                return;
            }
            bodies_.push_back(nlohmann::json::parse(req.body));
            res.status = 204;
            cv_.notify_all();
        });
        // Answers 200 with a 4 MB body: the sink must read at most max_response_bytes of it.
        server_.Post("/big", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock(mu_);
            ++requests_;
            authorization_ = req.get_header_value("Authorization");
            res.status = 200;
            res.set_content(std::string(4 << 20, 'x'), "text/plain");
        });
        server_.set_tcp_nodelay(true);
        // stop() waits for idle kept-alive connections up to this timeout.
        server_.set_keep_alive_timeout(1);
        if (port == 0) {
            port_ = server_.bind_to_any_port("127.0.0.1");
        } else {
            port_ = server_.bind_to_port("127.0.0.1", port) ? port : -1;
        }
        EXPECT_GT(port_, 0);
        // The socket listens from bind on; accepting starts here.
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        // Server::stop() is a no-op until the accept loop runs, so wait for it (bounded).
        for (int i = 0; i < 5000 && !server_.is_running(); ++i) {
            std::this_thread::sleep_for(1ms);
        }
        EXPECT_TRUE(server_.is_running());
    }
    ~TestServer() { Stop(); }

    void Stop() {
        if (!thread_.joinable()) {
            return;
        }
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        server_.stop();
        thread_.join();
    }

    int port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/events"; }

    void FailNext(int n, int status = 500) {
        std::lock_guard lock(mu_);
        fail_next_ = n;
        fail_status_ = status;
    }
    void Block() {
        std::lock_guard lock(mu_);
        blocked_ = true;
    }
    void Release() {
        {
            std::lock_guard lock(mu_);
            blocked_ = false;
        }
        cv_.notify_all();
    }
    bool WaitForRequests(int n) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, 30s, [&] { return requests_ >= n; });
    }
    int requests() {
        std::lock_guard lock(mu_);
        return requests_;
    }
    // track_id of each accepted event, in arrival order.
    std::vector<std::uint64_t> track_ids() {
        std::lock_guard lock(mu_);
        std::vector<std::uint64_t> ids;
        for (const auto& b : bodies_) {
            EXPECT_TRUE(ValidateEventJson(b).ok()) << b.dump();
            ids.push_back(b["track_id"].get<std::uint64_t>());
        }
        return ids;
    }
    std::string authorization() {
        std::lock_guard lock(mu_);
        return authorization_;
    }
    std::string content_type() {
        std::lock_guard lock(mu_);
        return content_type_;
    }

  private:
    httplib::Server server_;
    std::thread thread_;
    int port_ = -1;
    std::mutex mu_;
    std::condition_variable cv_;
    int requests_ = 0;
    int fail_next_ = 0;
    int fail_status_ = 500;
    bool blocked_ = false;
    bool stopping_ = false;
    std::vector<nlohmann::json> bodies_;
    std::string authorization_;
    std::string content_type_;
};

Event Numbered(std::uint64_t track_id) {
    Event e = MakeEvent("cam", TrackStarted{.detection_score = 0.9f});
    e.track_id = track_id;
    return e;
}

WebhookSinkConfig FastConfig(const std::string& url) {
    return {.url = url,
            .connect_timeout = 1000ms,
            .request_timeout = 5000ms,
            .initial_backoff = 10ms,
            .max_backoff = 100ms,
            .stop_timeout = 2000ms};
}

std::unique_ptr<Sink> MakeSink(const WebhookSinkConfig& config) {
    auto sink = CreateWebhookSink(config);
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return std::move(sink).value();
}

// Waits (bounded) until `pred` holds; for states reached asynchronously. Not a timing assertion:
// the bound only turns a hang into a failure.
template <typename Pred>
bool Eventually(Pred pred) {
    for (int i = 0; i < 3000 && !pred(); ++i) {
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

TEST(WebhookSinkTest, DeliversInOrderWithHeaders) {
    TestServer server;
    WebhookSinkConfig config = FastConfig(server.url());
    config.headers = {{"Authorization", "Bearer s3cret"}};
    auto sink = MakeSink(config);
    for (std::uint64_t i = 1; i <= 20; ++i) {
        ASSERT_TRUE(sink->Publish(Numbered(i)).ok());
    }
    ASSERT_TRUE(FlushFor(*sink, 30s).ok());
    std::vector<std::uint64_t> expected;
    for (std::uint64_t i = 1; i <= 20; ++i) {
        expected.push_back(i);
    }
    EXPECT_EQ(server.track_ids(), expected);
    EXPECT_EQ(server.authorization(), "Bearer s3cret");
    EXPECT_EQ(server.content_type(), "application/json");
    const SinkStats s = sink->stats();
    EXPECT_EQ(s.published, 20u);
    EXPECT_EQ(s.delivered, 20u);
    EXPECT_EQ(s.dropped, 0u);
    EXPECT_EQ(s.failed_attempts, 0u);
}

TEST(WebhookSinkTest, RetriesAfterServerErrors) {
    TestServer server;
    server.FailNext(3, 500);
    auto sink = MakeSink(FastConfig(server.url()));
    ASSERT_TRUE(sink->Publish(Numbered(1)).ok());
    ASSERT_TRUE(FlushFor(*sink, 30s).ok());
    EXPECT_EQ(server.requests(), 4);
    EXPECT_EQ(server.track_ids(), std::vector<std::uint64_t>{1});
    const SinkStats s = sink->stats();
    EXPECT_EQ(s.delivered, 1u);
    EXPECT_EQ(s.failed_attempts, 3u);
    EXPECT_EQ(s.dropped, 0u);
}

TEST(WebhookSinkTest, ClientErrorDropsTheEventWithoutRetry) {
    TestServer server;
    server.FailNext(1, 400);
    auto sink = MakeSink(FastConfig(server.url()));
    ASSERT_TRUE(sink->Publish(Numbered(1)).ok());
    ASSERT_TRUE(sink->Publish(Numbered(2)).ok());
    ASSERT_TRUE(FlushFor(*sink, 30s).ok());
    EXPECT_EQ(server.requests(), 2);
    EXPECT_EQ(server.track_ids(), std::vector<std::uint64_t>{2});
    const SinkStats s = sink->stats();
    EXPECT_EQ(s.delivered, 1u);
    EXPECT_EQ(s.dropped, 1u);
    EXPECT_EQ(s.failed_attempts, 1u);
}

TEST(WebhookSinkTest, MaxAttemptsDropsAPoisonEvent) {
    TestServer server;
    server.FailNext(2, 503);
    WebhookSinkConfig config = FastConfig(server.url());
    config.max_attempts = 2;
    auto sink = MakeSink(config);
    ASSERT_TRUE(sink->Publish(Numbered(1)).ok());
    ASSERT_TRUE(sink->Publish(Numbered(2)).ok());
    ASSERT_TRUE(FlushFor(*sink, 30s).ok());
    EXPECT_EQ(server.track_ids(), std::vector<std::uint64_t>{2});
    const SinkStats s = sink->stats();
    EXPECT_EQ(s.dropped, 1u);
    EXPECT_EQ(s.failed_attempts, 2u);
    EXPECT_EQ(s.delivered, 1u);
}

TEST(WebhookSinkTest, ServerDownThenUp) {
    int port = 0;
    {
        TestServer probe;  // find a free port, then free it: the server is "down"
        port = probe.port();
    }
    auto sink = MakeSink(FastConfig("http://127.0.0.1:" + std::to_string(port) + "/events"));
    for (std::uint64_t i = 1; i <= 3; ++i) {
        ASSERT_TRUE(sink->Publish(Numbered(i)).ok());
    }
    ASSERT_TRUE(Eventually([&] { return sink->stats().failed_attempts >= 3; }));
    EXPECT_EQ(sink->stats().delivered, 0u);
    EXPECT_EQ(FlushFor(*sink, 1ms).code(), StatusCode::kDeadlineExceeded);

    TestServer server(port);  // back up on the same port
    ASSERT_TRUE(FlushFor(*sink, 30s).ok());
    EXPECT_EQ(server.track_ids(), (std::vector<std::uint64_t>{1, 2, 3}));
    const SinkStats s = sink->stats();
    EXPECT_EQ(s.delivered, 3u);
    EXPECT_EQ(s.dropped, 0u);
    sink.reset();  // closes its connection before the server stops
}

TEST(WebhookSinkTest, OverflowDropsOldestAndCounts) {
    TestServer server;
    server.Block();
    WebhookSinkConfig config = FastConfig(server.url());
    config.max_buffered = 3;
    auto sink = MakeSink(config);
    ASSERT_TRUE(sink->Publish(Numbered(1)).ok());
    ASSERT_TRUE(server.WaitForRequests(1));  // event 1 is in flight, held by the server
    for (std::uint64_t i = 2; i <= 6; ++i) {
        ASSERT_TRUE(sink->Publish(Numbered(i)).ok());
    }
    // Waiting: 2..6 into a buffer of 3 -> 2 and 3 dropped; the one in flight is kept.
    EXPECT_EQ(sink->stats().dropped, 2u);
    server.Release();
    ASSERT_TRUE(FlushFor(*sink, 30s).ok());
    EXPECT_EQ(server.track_ids(), (std::vector<std::uint64_t>{1, 4, 5, 6}));
    const SinkStats s = sink->stats();
    EXPECT_EQ(s.published, 6u);
    EXPECT_EQ(s.delivered, 4u);
    EXPECT_EQ(s.dropped, 2u);
    EXPECT_EQ(s.published, s.delivered + s.dropped);
}

TEST(WebhookSinkTest, FlushAndDestructorRespectDeadlinesWhenServerNeverAnswers) {
    TestServer server;
    server.Block();
    WebhookSinkConfig config = FastConfig(server.url());
    config.request_timeout = 60000ms;  // the request alone would outlive the test
    config.request_deadline = 60000ms;
    config.stop_timeout = 500ms;
    auto sink = MakeSink(config);
    ASSERT_TRUE(sink->Publish(Numbered(1)).ok());
    ASSERT_TRUE(sink->Publish(Numbered(2)).ok());
    ASSERT_TRUE(server.WaitForRequests(1));
    const Status flushed = FlushFor(*sink, 200ms);
    EXPECT_EQ(flushed.code(), StatusCode::kDeadlineExceeded);
    EXPECT_NE(flushed.message().find("2 events still pending"), std::string::npos)
        << flushed.ToString();
    sink.reset();  // must return (aborts the request in flight), not wait 60 s
    server.Release();
    // The held handler may still record event 1 once released (the client gave up on it);
    // event 2 was never sent.
    EXPECT_LE(server.track_ids().size(), 1u);
}

TEST(WebhookSinkTest, ConcurrentPublishers) {
    TestServer server;
    auto sink = MakeSink(FastConfig(server.url()));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                EXPECT_TRUE(sink->Publish(Numbered(static_cast<std::uint64_t>(t * 100 + i + 1))).ok());
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    ASSERT_TRUE(FlushFor(*sink, 60s).ok());
    EXPECT_EQ(server.track_ids().size(), 200u);
    EXPECT_EQ(sink->stats().delivered, 200u);
}

// Credentials in the URL go as basic auth and never into names or logs.
TEST(WebhookSinkTest, UrlCredentialsAreSentAsBasicAuthAndRedacted) {
    TestServer server;
    const std::string url = "http://alice:pa55@127.0.0.1:" + std::to_string(server.port()) + "/big";
    auto sink = MakeSink(FastConfig(url));
    EXPECT_EQ(sink->name().find("pa55"), std::string::npos) << sink->name();
    EXPECT_NE(sink->name().find("***@127.0.0.1"), std::string::npos) << sink->name();
    ASSERT_TRUE(sink->Publish(Numbered(1)).ok());
    ASSERT_TRUE(FlushFor(*sink, 30s).ok());
    EXPECT_EQ(server.authorization(), "Basic YWxpY2U6cGE1NQ==");  // alice:pa55
    // The 4 MB answer was cut at max_response_bytes; the 200 still counts as delivered.
    EXPECT_EQ(sink->stats().delivered, 1u);
    EXPECT_EQ(sink->stats().dropped, 0u);
}

// A receiver that answers one byte at a time never trips the per-read timeout; the overall
// request deadline aborts it and the event is retried like after a timeout.
TEST(WebhookSinkTest, ASlowDripReceiverIsCutOffByTheRequestDeadline) {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    ASSERT_EQ(listen(listener, 8), 0);
    std::atomic<bool> stop{false};
    std::thread drip([&] {
        while (!stop) {
            pollfd p{listener, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            const int c = accept(listener, nullptr, nullptr);
            if (c < 0) continue;
            char buf[4096];
            (void)recv(c, buf, sizeof buf, 0);
            const std::string head = "HTTP/1.1 200 OK\r\nX-Slow: ";
            for (std::size_t i = 0; !stop && i < 1000; ++i) {
                if (send(c, i < head.size() ? &head[i] : "a", 1, MSG_NOSIGNAL) != 1) break;
                std::this_thread::sleep_for(100ms);
            }
            close(c);
        }
    });
    WebhookSinkConfig config = FastConfig("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/events");
    config.request_timeout = 1000ms;
    config.request_deadline = 1500ms;
    {
        auto sink = MakeSink(config);
        ASSERT_TRUE(sink->Publish(Numbered(1)).ok());
        EXPECT_TRUE(Eventually([&] { return sink->stats().failed_attempts >= 1; }));
        EXPECT_EQ(sink->stats().delivered, 0u);
    }
    stop = true;
    drip.join();
    close(listener);
}

TEST(WebhookSinkConfigTest, Validation) {
    auto valid = [](WebhookSinkConfig c) { return c.Validate().ok(); };
    EXPECT_FALSE(valid({.url = "127.0.0.1:80/x"}));
    EXPECT_FALSE(valid({.url = "ftp://h/x"}));
    EXPECT_FALSE(valid({.url = "http:///x"}));
    EXPECT_TRUE(valid({.url = "http://h"}));
    EXPECT_FALSE(valid({.url = "http://h/", .max_buffered = 0}));
    EXPECT_FALSE(valid({.url = "http://h/", .initial_backoff = 100ms, .max_backoff = 10ms}));
    EXPECT_FALSE(valid({.url = "http://h/", .backoff_multiplier = 0.5}));
    EXPECT_FALSE(CreateWebhookSink({.url = "nope"}).ok());
}

}  // namespace
}  // namespace fg::events
