// SPDX-License-Identifier: Apache-2.0
// A test server with a handful of routes (plain, parameters, echo, throwing, compute, stream)
// and an authenticator with three keys.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fg/server/http.h"
#include "test_client.h"

namespace fg::server::testing {

/// Compute handlers wait here until Open().
class Gate {
  public:
    void Wait() {
        std::unique_lock lock(mu_);
        ++waiting_;
        cv_.notify_all();
        cv_.wait_for(lock, std::chrono::seconds(10), [&] { return open_; });
    }
    void Open() {
        std::lock_guard lock(mu_);
        open_ = true;
        cv_.notify_all();
    }
    bool WaitForWaiters(int n) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return waiting_ >= n; });
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    int waiting_ = 0;
    bool open_ = false;
};

/// Writers of the /events subscribers, for a producer in the test.
struct Subscribers {
    std::mutex mu;
    std::vector<std::shared_ptr<StreamWriter>> writers;
    void Add(std::shared_ptr<StreamWriter> w) {
        std::lock_guard lock(mu);
        writers.push_back(std::move(w));
    }
    std::size_t size() {
        std::lock_guard lock(mu);
        return writers.size();
    }
    /// Writes to every writer; returns how many accepted.
    int Broadcast(const std::string& bytes) {
        std::lock_guard lock(mu);
        int ok = 0;
        for (auto& w : writers) ok += w->Write(bytes) ? 1 : 0;
        return ok;
    }
    bool WaitFor(std::size_t n) {
        for (int i = 0; i < 500 && size() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return size() >= n;
    }
};

inline Result<Principal> TestAuth(const Request& r) {
    std::string key = r.Header("X-API-Key");
    const std::string auth = r.Header("Authorization");
    if (auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
    if (key.empty()) return Principal{};
    if (key == "read-key") return Principal{.key_id = "k1", .name = "reader", .scopes = {"read"}};
    if (key == "admin-key") return Principal{.key_id = "k2", .name = "admin", .scopes = {"admin"}};
    return Unauthenticated("unknown API key");
}

/// Responders of the /deferred requests, for the test to answer later from its own thread.
struct Deferreds {
    std::mutex mu;
    std::vector<std::shared_ptr<Responder>> responders;
    void Add(std::shared_ptr<Responder> r) {
        std::lock_guard lock(mu);
        responders.push_back(std::move(r));
    }
    std::shared_ptr<Responder> WaitTake(std::size_t i) {
        for (int k = 0; k < 500; ++k) {
            {
                std::lock_guard lock(mu);
                if (responders.size() > i) return std::move(responders[i]);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return nullptr;
    }
};

struct ObservedRequest {
    std::string route;
    int status;
};

class ServerFixture : public ::testing::Test {
  protected:
    // Short timeouts and small limits so the slow-client tests take well under a second each.
    static ServerConfig TestConfig() {
        ServerConfig c;
        c.port = 0;
        c.compute_threads = 1;
        c.compute_queue = 1;
        c.max_header_bytes = 4096;
        c.max_body_bytes = 64 * 1024;
        c.header_timeout = std::chrono::milliseconds(300);
        c.body_timeout = std::chrono::milliseconds(300);
        c.idle_timeout = std::chrono::milliseconds(500);
        c.write_timeout = std::chrono::milliseconds(1000);
        c.stream_queue_bytes = 64 * 1024;
        c.cors_origins = {"https://console.example"};
        c.rate_limit_per_key = 0;
        return c;
    }

    Router MakeRouter() {
        Router router;
        router.Add("GET", "/healthz", {}, [](Request&) { return Response::Json(200, {{"ok", true}}); });
        router.Add("GET", "/v1/items/{id}", {.scope = "read", .name = "item"}, [](Request& r) {
            return Response::Json(200, {{"id", r.params.at("id")}, {"q", r.query.count("q") ? r.query.at("q") : ""},
                                        {"key", r.principal.key_id}});
        });
        router.Add("DELETE", "/v1/items/{id}", {.scope = "admin"}, [](Request&) { return Response::Json(200, {}); });
        router.Add("POST", "/echo", {}, [](Request& r) {
            return Response::Json(200, {{"size", r.body.size()}, {"ct", r.Header("content-type")}});
        });
        router.Add("GET", "/throw", {}, [](Request&) -> Response { throw std::runtime_error("boom"); });
        router.Add("GET", "/bad-status", {}, [](Request&) { return Response::Json(1234, {}); });
        // "?cheap=1": the fast path (RouteOptions::inline_if) answers on the IO thread.
        router.Add("POST", "/compute",
                   {.compute = true, .inline_if = [](const Request& r) { return r.query.count("cheap") > 0; }},
                   [this](Request& r) {
            if (r.query.count("cheap")) return Response::Json(200, {{"inline", true}});
            gate_.Wait();
            return Response::Json(200, {{"done", true}});
        });
        router.Add("GET", "/deferred", {}, [this](Request&) {
            return Response::Deferred([this](std::shared_ptr<Responder> r) { deferreds_.Add(std::move(r)); });
        });
        router.Add("GET", "/events", {}, [this](Request&) {
            return Response::Stream("text/event-stream", [this](std::shared_ptr<StreamWriter> w) {
                w->Write(": hello\n\n");
                subscribers_.Add(std::move(w));
            });
        });
        return router;
    }

    void StartServer(ServerConfig config) {
        auto server = Server::Create(std::move(config), MakeRouter(), TestAuth,
                                     [this](const std::string& route, int status, double) {
                                         std::lock_guard lock(observed_mu_);
                                         observed_.push_back({route, status});
                                     });
        ASSERT_TRUE(server.ok()) << server.status().ToString();
        server_ = std::move(*server);
        ASSERT_TRUE(server_->Start().ok());
        port_ = server_->port();
        ASSERT_GT(port_, 0);
    }
    void SetUp() override { StartServer(TestConfig()); }
    void TearDown() override {
        gate_.Open();
        if (server_) server_->Stop();
    }
    void ExpectHealthy() {
        auto r = Fetch(port_, "GET", "/healthz");
        EXPECT_EQ(r.status, 200) << "server no longer answers";
    }
    static std::string ErrorCode(const Reply& r) {
        auto j = nlohmann::json::parse(r.body, nullptr, false);
        if (j.is_discarded() || !j.contains("error")) return "<no JSON error>";
        return j["error"]["code"].get<std::string>();
    }

    Gate gate_;
    Subscribers subscribers_;
    Deferreds deferreds_;
    std::mutex observed_mu_;
    std::vector<ObservedRequest> observed_;
    std::unique_ptr<Server> server_;
    int port_ = 0;
};

}  // namespace fg::server::testing
