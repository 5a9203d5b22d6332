// SPDX-License-Identifier: Apache-2.0
// The server over loopback: routing, keep-alive, limits, malformed input, slow clients, the
// compute pool, authentication, rate limits, CORS, handler failures.
#include <thread>

#include "server_fixture.h"

namespace fg::server::testing {
namespace {

using namespace std::chrono_literals;
const Headers kRead = {{"Authorization", "Bearer read-key"}};

TEST_F(ServerFixture, RoutesWithParamsAndQuery) {
    auto r = Fetch(port_, "GET", "/v1/items/a%20b?q=x+y%21", "", kRead);
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["id"], "a b");
    EXPECT_EQ(j["q"], "x y!");
    EXPECT_EQ(j["key"], "k1");
    EXPECT_EQ(r.Header("content-type"), "application/json");
}

TEST_F(ServerFixture, NotFoundAndMethodNotAllowedAreJson) {
    auto r = Fetch(port_, "GET", "/nope");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(ErrorCode(r), "not_found");
    r = Fetch(port_, "PUT", "/v1/items/1", "{}", kRead);
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(ErrorCode(r), "method_not_allowed");
    EXPECT_EQ(r.Header("allow"), "DELETE, GET");
}

TEST_F(ServerFixture, KeepAliveServesManyRequestsOnOneConnection) {
    Client c(port_);
    for (int i = 0; i < 5; ++i) {
        auto r = c.Do("GET", "/healthz");
        ASSERT_EQ(r.status, 200) << i;
    }
    EXPECT_EQ(server_->open_connections(), 1u);
    // Pipelined: two requests in one write, two answers in order.
    ASSERT_TRUE(c.SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(c.ReadReply().status, 200);
    EXPECT_EQ(c.ReadReply().status, 404);
}

TEST_F(ServerFixture, Http10ClosesAfterTheResponse) {
    Client c(port_);
    ASSERT_TRUE(c.SendRaw("GET /healthz HTTP/1.0\r\n\r\n"));
    EXPECT_EQ(c.ReadReply().status, 200);
    EXPECT_TRUE(c.WaitClosed(2s));
}

TEST_F(ServerFixture, IdleKeepAliveIsClosed) {
    Client c(port_);
    ASSERT_EQ(c.Do("GET", "/healthz").status, 200);
    EXPECT_TRUE(c.WaitClosed(3s));  // idle_timeout is 500 ms
}

TEST_F(ServerFixture, HugeHeaderIs431) {
    auto r = Fetch(port_, "GET", "/healthz", "", {{"X-Big", std::string(8000, 'a')}});
    EXPECT_EQ(r.status, 431);
    EXPECT_EQ(ErrorCode(r), "header_too_large");
    ExpectHealthy();
}

TEST_F(ServerFixture, HugeBodyIs413) {
    // Declared too large: answered before the body is read.
    Client c(port_);
    ASSERT_TRUE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc"));
    auto r = c.ReadReply();
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(ErrorCode(r), "payload_too_large");
    // Sent in full (fits the socket buffers): still 413.
    r = Fetch(port_, "POST", "/echo", std::string(100 * 1024, 'x'));
    EXPECT_EQ(r.status, 413);
    // Chunked past the limit.
    Client chunked(port_);
    std::string body = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 20; ++i) body += "1000\r\n" + std::string(4096, 'y') + "\r\n";
    ASSERT_TRUE(chunked.SendRaw(body));
    EXPECT_EQ(chunked.ReadReply().status, 413);
    // At the limit: fine.
    r = Fetch(port_, "POST", "/echo", std::string(64 * 1024, 'x'), {{"Content-Type", "text/plain"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(nlohmann::json::parse(r.body)["size"], 64 * 1024);
}

TEST_F(ServerFixture, ExpectContinueIsHonoured) {
    Client c(port_);
    ASSERT_TRUE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    ASSERT_TRUE(c.ReadUntil("100 Continue", 2s));
    ASSERT_TRUE(c.SendRaw("abc"));
    EXPECT_EQ(c.ReadReply().status, 200);
}

TEST_F(ServerFixture, TruncatedBodyIsCutOff) {
    Client eof(port_);  // the client gives up mid-body
    ASSERT_TRUE(eof.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a bit"));
    eof.ShutdownSend();
    EXPECT_TRUE(eof.WaitClosed(2s));
    Client stalled(port_);  // the client stalls mid-body: body_timeout
    ASSERT_TRUE(stalled.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a bit"));
    EXPECT_TRUE(stalled.WaitClosed(3s));
    ExpectHealthy();
}

TEST_F(ServerFixture, MalformedRequestsAre400) {
    for (const std::string raw : {"GARBAGE\r\n\r\n", "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                                  "GET /x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                                  "GET /x HTTP/1.1\r\nBad Header\r\n\r\n", "GET relative HTTP/1.1\r\n\r\n",
                                  "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
        Client c(port_);
        ASSERT_TRUE(c.SendRaw(raw));
        auto r = c.ReadReply();
        EXPECT_EQ(r.status, 400) << raw;
        EXPECT_EQ(ErrorCode(r), "bad_request") << raw;
    }
    ExpectHealthy();
}

TEST_F(ServerFixture, SlowlorisIsCutOffAfterHeaderTimeout) {
    Client slow(port_);
    ASSERT_TRUE(slow.SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    const auto t0 = std::chrono::steady_clock::now();
    // Trickle a header line every 100 ms: the head as a whole must arrive within 300 ms.
    bool closed = false;
    for (int i = 0; i < 30 && !closed; ++i) {
        if (!slow.SendRaw("X-Drip: " + std::to_string(i) + "\r\n")) break;
        closed = slow.WaitClosed(100ms);
    }
    closed = closed || slow.WaitClosed(2s);
    EXPECT_TRUE(closed);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
    // A connection that sends nothing at all is cut off too.
    Client silent(port_);
    EXPECT_TRUE(silent.WaitClosed(2s));
    ExpectHealthy();
}

TEST_F(ServerFixture, HandlerThatThrowsIs500AndServerStaysUp) {
    auto r = Fetch(port_, "GET", "/throw");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(ErrorCode(r), "internal");
    r = Fetch(port_, "GET", "/bad-status");  // a status Beast cannot send
    EXPECT_EQ(r.status, 500);
    ExpectHealthy();
}

TEST_F(ServerFixture, ComputePoolFullIs503WithRetryAfter) {
    // One compute thread, one queue slot: the third concurrent request is refused.
    Client a(port_), b(port_), c(port_);
    ASSERT_TRUE(a.SendRaw("POST /compute HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
    ASSERT_TRUE(gate_.WaitForWaiters(1));
    ASSERT_TRUE(b.SendRaw("POST /compute HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
    for (int i = 0; i < 200 && server_->compute_queue_depth() < 1; ++i) std::this_thread::sleep_for(5ms);
    ASSERT_EQ(server_->compute_queue_depth(), 1u);
    auto r = c.Do("POST", "/compute");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(ErrorCode(r), "overloaded");
    EXPECT_EQ(r.Header("retry-after"), "1");
    ExpectHealthy();  // IO is not blocked by the compute pool
    // A cheap request of the same route does not wait for the full pool (inline_if).
    r = c.Do("POST", "/compute?cheap=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"inline":true})");
    gate_.Open();
    EXPECT_EQ(a.ReadReply().status, 200);
    EXPECT_EQ(b.ReadReply().status, 200);
}

TEST_F(ServerFixture, AuthenticationAndScopes) {
    auto r = Fetch(port_, "GET", "/v1/items/1");
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(ErrorCode(r), "unauthorized");
    EXPECT_EQ(r.Header("www-authenticate"), "Bearer");
    EXPECT_EQ(Fetch(port_, "GET", "/v1/items/1", "", {{"Authorization", "Bearer wrong"}}).status, 401);
    EXPECT_EQ(Fetch(port_, "GET", "/v1/items/1", "", {{"X-API-Key", "read-key"}}).status, 200);
    r = Fetch(port_, "DELETE", "/v1/items/1", "", kRead);
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(ErrorCode(r), "forbidden");
    EXPECT_EQ(Fetch(port_, "DELETE", "/v1/items/1", "", {{"X-API-Key", "admin-key"}}).status, 200);
    EXPECT_EQ(Fetch(port_, "GET", "/v1/items/1", "", {{"X-API-Key", "admin-key"}}).status, 200);
    // Public routes need no key, and a wrong key does not lock anyone out of them.
    EXPECT_EQ(Fetch(port_, "GET", "/healthz", "", {{"X-API-Key", "wrong"}}).status, 200);
}

TEST_F(ServerFixture, ObserverSeesEveryResponse) {
    Fetch(port_, "GET", "/v1/items/1", "", kRead);
    Fetch(port_, "GET", "/nope");
    for (int i = 0; i < 100; ++i) {
        std::lock_guard lock(observed_mu_);
        if (observed_.size() >= 2) break;
        std::this_thread::sleep_for(5ms);
    }
    std::lock_guard lock(observed_mu_);
    ASSERT_EQ(observed_.size(), 2u);
    EXPECT_EQ(observed_[0].route, "item");
    EXPECT_EQ(observed_[0].status, 200);
    EXPECT_EQ(observed_[1].route, "unmatched");
    EXPECT_EQ(observed_[1].status, 404);
}

TEST_F(ServerFixture, CorsPreflightAndHeaders) {
    Client c(port_);
    auto r = c.Do("OPTIONS", "/v1/items/1", "",
                  {{"Origin", "https://console.example"}, {"Access-Control-Request-Method", "GET"},
                   {"Access-Control-Request-Headers", "authorization"}});
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.Header("access-control-allow-origin"), "https://console.example");
    EXPECT_EQ(r.Header("access-control-allow-methods"), "DELETE, GET");
    EXPECT_NE(r.Header("access-control-allow-headers").find("Authorization"), std::string::npos);
    r = c.Do("GET", "/v1/items/1", "", {{"Origin", "https://console.example"}, {"X-API-Key", "read-key"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Header("access-control-allow-origin"), "https://console.example");
    r = c.Do("GET", "/v1/items/1", "", {{"Origin", "https://console.example"}});  // errors carry CORS too
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.Header("access-control-allow-origin"), "https://console.example");
    r = c.Do("OPTIONS", "/v1/items/1", "", {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}});
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.Header("access-control-allow-origin"), "");
    EXPECT_EQ(c.Do("OPTIONS", "/nope").status, 404);
}

class RateLimitTest : public ServerFixture {
  protected:
    void SetUp() override {
        auto c = TestConfig();
        c.rate_limit_per_key = 1;  // burst of 2
        StartServer(c);
    }
};

TEST_F(RateLimitTest, EmptyBucketIs429WithRetryAfter) {
    Client c(port_);
    EXPECT_EQ(c.Do("GET", "/v1/items/1", "", kRead).status, 200);
    EXPECT_EQ(c.Do("GET", "/v1/items/1", "", kRead).status, 200);
    auto r = c.Do("GET", "/v1/items/1", "", kRead);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(ErrorCode(r), "rate_limited");
    EXPECT_EQ(r.Header("retry-after"), "1");
    // Another key has its own bucket.
    EXPECT_EQ(c.Do("GET", "/v1/items/1", "", {{"X-API-Key", "admin-key"}}).status, 200);
}

class MaxConnectionsTest : public ServerFixture {
  protected:
    void SetUp() override {
        auto c = TestConfig();
        c.max_connections = 2;
        c.idle_timeout = std::chrono::seconds(5);
        StartServer(c);
    }
};

TEST_F(MaxConnectionsTest, ConnectionsPastTheLimitGet503) {
    Client a(port_), b(port_);
    ASSERT_EQ(a.Do("GET", "/healthz").status, 200);
    ASSERT_EQ(b.Do("GET", "/healthz").status, 200);
    auto r = Fetch(port_, "GET", "/healthz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(ErrorCode(r), "overloaded");
    a.Close();
    for (int i = 0; i < 200 && server_->open_connections() > 1; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_EQ(Fetch(port_, "GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace fg::server::testing
