// SPDX-License-Identifier: Apache-2.0
// Deferred responses (Response::Deferred): the handler returns at once and the response is sent
// later from another thread (serve: once the audit record is durable).
#include <thread>

#include <gtest/gtest.h>

#include "server_fixture.h"

namespace fg::server::testing {
namespace {

// On a keep-alive connection the deferred answer comes first, then the pipelined next request:
// the connection reads nothing further until the deferred response is written.
TEST_F(ServerFixture, DeferredResponseOnKeepAliveKeepsOrder) {
    Client c(port_);
    ASSERT_TRUE(c.SendRaw("GET /deferred HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto responder = deferreds_.WaitTake(0);
    ASSERT_TRUE(responder);
    std::thread other([r = std::move(responder)] {
        r->Send(Response::Json(200, {{"late", true}}));
        r->Send(Response::Json(500, {}));  // a second Send is ignored
    });
    other.join();
    auto first = c.ReadReply();
    EXPECT_EQ(first.status, 200);
    EXPECT_NE(first.body.find("late"), std::string::npos) << first.body;
    EXPECT_EQ(c.ReadReply().status, 200);
    // And again on the same connection: the session went back to reading.
    std::thread later([this] {
        auto r = deferreds_.WaitTake(1);
        if (r) r->Send(Response::Error(503, "audit_unavailable", "the audit log failed"));
    });
    auto third = c.Do("GET", "/deferred");
    later.join();
    EXPECT_EQ(third.status, 503);
    EXPECT_EQ(ErrorCode(third), "audit_unavailable");
    EXPECT_EQ(server_->open_connections(), 1u);
}

// The client is gone when the response is ready: nothing breaks, the server still answers.
TEST_F(ServerFixture, DeferredResponseAfterTheClientLeft) {
    {
        Client c(port_);
        ASSERT_TRUE(c.SendRaw("GET /deferred HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto r = deferreds_.WaitTake(0);
        ASSERT_TRUE(r);
        c.Close();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        r->Send(Response::Json(200, {{"late", true}}));
    }
    ExpectHealthy();
}

// A responder dropped without Send answers 500 instead of leaving the client hanging.
TEST_F(ServerFixture, DroppedResponderIs500) {
    Client c(port_);
    std::thread drop([this] { deferreds_.WaitTake(0).reset(); });
    auto r = c.Do("GET", "/deferred");
    drop.join();
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(ErrorCode(r), "internal");
}

// The server stops while a response is still deferred; a Send afterwards is dropped safely.
TEST_F(ServerFixture, DeferredResponseAfterStopIsDropped) {
    Client c(port_);
    ASSERT_TRUE(c.SendRaw("GET /deferred HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = deferreds_.WaitTake(0);
    ASSERT_TRUE(r);
    server_->Stop();
    r->Send(Response::Json(200, {}));
    r.reset();
    EXPECT_TRUE(c.WaitClosed(std::chrono::seconds(2)));
}

}  // namespace
}  // namespace fg::server::testing
