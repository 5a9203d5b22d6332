// SPDX-License-Identifier: Apache-2.0
// The API through a real socket (fg::server) with the real default pack: the bad-input
// catalogue, keys and scopes, a face detected and identified, an enrollment refused with a
// reason, SSE, and /readyz still healthy at the end.
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "fg/api/api.h"
#include "fg/events/event.h"
#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "fg/vision/engine.h"
#include "test_client.h"

namespace fg::api {
namespace {

using server::testing::Fetch;
using server::testing::Headers;
using server::testing::Reply;

std::string ReadFile(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

class ApiE2eTest : public ::testing::Test {
  protected:
    void SetUp() override {
        FG_REQUIRE_PATH(ModelsDir());
        FG_REQUIRE_PATH(DlibExamplesDir() / "faces");
        auto engine = vision::Engine::Create({.pack = "default"});
        ASSERT_TRUE(engine.ok()) << engine.status().message();
        ctx_.engine = *engine;
        auto key = gallery::ParseKey(std::string(64, 'b'));
        auto g = gallery::Gallery::Open({.location = (dir_ / "g.db").string(),
                                         .keys = std::make_shared<gallery::KeyRing>(*key)});
        ASSERT_TRUE(g.ok()) << g.status().message();
        ctx_.gallery = std::move(*g);
        ctx_.gallery_configured = true;
        ctx_.events = std::make_shared<EventHub>(16);
        ctx_.options.heartbeat = std::chrono::milliseconds(200);
        server::Router router;
        AddRoutes(router, ctx_);
        // Two keys: an admin and a read-only one.
        auto auth = [](const server::Request& r) -> Result<server::Principal> {
            const std::string k = r.Header("X-API-Key");
            if (k.empty()) return server::Principal{};
            if (k == "admin-key") return server::Principal{"a1", "admin", {"admin"}};
            if (k == "read-key") return server::Principal{"r1", "reader", {"read"}};
            return InvalidArgument("wrong key");
        };
        auto srv = server::Server::Create({.port = 0, .max_body_bytes = 4 * 1024 * 1024}, std::move(router), auth);
        ASSERT_TRUE(srv.ok()) << srv.status().message();
        server_ = std::move(*srv);
        ASSERT_TRUE(server_->Start().ok());
        port_ = server_->port();
        via_ = port_;
    }
    void TearDown() override {
        if (server_) server_->Stop();
    }
    Reply Call(const std::string& method, const std::string& target, const std::string& body = "",
               const std::string& type = "", const std::string& key = "admin-key") {
        Headers h;
        if (!key.empty()) h.emplace_back("X-API-Key", key);
        if (!type.empty()) h.emplace_back("Content-Type", type);
        Reply r = Fetch(via_, method, target, body, h);
        if (via_ != port_) CheckViolations(method + " " + target, r);
        return r;
    }
    /// Through `prism proxy` every reply carries the contract violations it found in an
    /// `sl-violations` header. A request violation is the point of a bad-input case; a response
    /// violation is a bug (ours or the file's).
    static void CheckViolations(const std::string& what, const Reply& r) {
        const std::string v = r.Header("sl-violations");
        if (v.empty()) return;
        const auto j = nlohmann::json::parse(v, nullptr, false);
        ASSERT_TRUE(j.is_array()) << what << ": " << v;
        for (const auto& x : j) {
            if (x.contains("location") && x["location"].is_array() && !x["location"].empty() &&
                x["location"][0] == "response") {
                ADD_FAILURE() << what << " -> " << r.status << ": response violates api/openapi.json: " << x.dump();
            }
        }
    }
    void Walk();
    static std::string Code(const Reply& r) {
        const auto j = nlohmann::json::parse(r.body, nullptr, false);
        return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
    }

    fg::testing::TmpDir dir_;
    ApiContext ctx_;  // outlives the server (declared first)
    std::unique_ptr<server::Server> server_;
    int port_ = 0;
    int via_ = 0;  // port_, or prism's port in front of it
};

void ApiE2eTest::Walk() {
    const bool direct = via_ == port_;
    const auto faces = DlibExamplesDir() / "faces";
    const std::string one_face = ReadFile(faces / "Tom_Cruise_avp_2014_4.jpg");
    const std::string many = ReadFile(faces / "bald_guys.jpg");
    ASSERT_FALSE(one_face.empty());

    EXPECT_EQ(Call("GET", "/healthz", "", "", "").status, 200);
    EXPECT_EQ(Call("GET", "/readyz", "", "", "").status, 200);
    EXPECT_EQ(Call("GET", "/v1/subjects", "", "", "").status, 401);
    EXPECT_EQ(Call("GET", "/v1/subjects", "", "", "wrong").status, 401);
    EXPECT_EQ(Call("POST", "/v1/subjects", R"({"id":"x"})", "application/json", "read-key").status, 403);

    // Bad input: each a 4xx with its code (prism may answer a malformed request itself).
    auto expect_code = [&](const Reply& r, const std::string& code) {
        if (direct) {
            EXPECT_EQ(Code(r), code) << r.body;
        } else {
            EXPECT_TRUE(r.status >= 400 && r.status < 500) << code << ": " << r.status << " " << r.body;
        }
    };
    expect_code(Call("POST", "/v1/detect", "abc", "text/plain"), "unsupported_media_type");
    expect_code(Call("POST", "/v1/detect", "{\"image\":\"%%%\"}", "application/json"), "invalid_base64");
    if (direct) {  // broken and binary bodies test our parsers, not the contract (prism does not
                   // answer malformed JSON, and mangles binary bodies)
        expect_code(Call("POST", "/v1/detect", "{\"image\":", "application/json"), "invalid_json");
        expect_code(Call("POST", "/v1/detect", one_face.substr(0, 300), "image/jpeg"), "invalid_image");
        const std::string mp = "--XX\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n" + one_face.substr(0, 1000);
        expect_code(Call("POST", "/v1/detect", mp, "multipart/form-data; boundary=XX"), "invalid_multipart");
        // Over max_body_bytes: 413 (or the connection cut while the client is still sending).
        const int huge = Call("POST", "/v1/detect", std::string(5 * 1024 * 1024, 'x'), "image/jpeg").status;
        EXPECT_TRUE(huge == 413 || huge == 0) << huge;
    }
    EXPECT_EQ(Code(Call("GET", "/v1/subjects/nobody")), "not_found");
    EXPECT_EQ(Code(Call("GET", "/v1/cluster")), "no_cluster");  // no `cluster` section here

    // Images go raw and as multipart directly, as base64 JSON through the proxy (prism does not
    // forward binary bodies byte for byte).
    auto send = [&](const std::string& target, const std::string& bytes, const std::string& type, bool multipart = false) {
        if (!direct) {
            const std::vector<std::uint8_t> v(bytes.begin(), bytes.end());
            return Call("POST", target, nlohmann::json{{"image", events::Base64Encode(v)}}.dump(), "application/json");
        }
        if (!multipart) return Call("POST", target, bytes, type);
        const std::string body = "--XX\r\nContent-Disposition: form-data; name=\"image\"; filename=\"t\"\r\n"
                                 "Content-Type: " + type + "\r\n\r\n" + bytes + "\r\n--XX--\r\n";
        return Call("POST", target, body, "multipart/form-data; boundary=XX");
    };
    // A face, detected, enrolled (multipart) and identified.
    Reply r = send("/v1/detect?attributes=false", one_face, "image/jpeg");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["faces"].size(), 1u);
    ASSERT_EQ(Call("POST", "/v1/subjects", R"({"id":"tom"})", "application/json").status, 201);
    r = send("/v1/subjects/tom/faces", one_face, "image/jpeg", true);
    ASSERT_EQ(r.status, 201) << r.body;
    r = send("/v1/identify", one_face, "image/jpeg");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["faces"][0]["subject_id"], "tom");
    EXPECT_EQ(Call("GET", "/v1/subjects?limit=1").status, 200);
    EXPECT_EQ(Call("GET", "/v1/subjects/tom/faces").status, 200);
    // Every face of a crowd is answered; enrolling a crowd photo is refused with a reason.
    r = send("/v1/identify", many, "image/jpeg");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_GT(nlohmann::json::parse(r.body)["faces"].size(), 5u);
    r = send("/v1/subjects/tom/faces", many, "image/jpeg");
    EXPECT_EQ(r.status, 422);
    EXPECT_EQ(Code(r), "enrollment_rejected");
    // A photo with no face: 200 and zero faces for identify; 422 for enroll.
    std::vector<std::uint8_t> blank;
    cv::imencode(".png", cv::Mat(240, 320, CV_8UC3, cv::Scalar(90, 90, 90)), blank);
    const std::string blank_s(blank.begin(), blank.end());
    r = send("/v1/identify", blank_s, "image/png");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(nlohmann::json::parse(r.body)["faces"].empty());
    EXPECT_EQ(send("/v1/subjects/tom/faces", blank_s, "image/png").status, 422);
    EXPECT_EQ(Call("DELETE", "/v1/subjects/tom").status, 200);

    EXPECT_EQ(Call("GET", "/readyz", "", "", "").status, 200);
    if (!direct) return;  // the proxy may buffer streams
    // SSE through the socket: a published event arrives with its id.
    server::testing::Client sse(port_);
    ASSERT_TRUE(sse.SendRaw("GET /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: admin-key\r\n\r\n"));
    ASSERT_TRUE(sse.ReadUntil("retry: 3000", std::chrono::seconds(5)));
    const events::Event e = events::MakeEvent("cam", events::StreamState{"live", ""});
    for (int i = 0; i < 50 && ctx_.events->subscribers() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(ctx_.events->Publish(e).ok());
    EXPECT_TRUE(sse.ReadUntil("id: " + e.event_id, std::chrono::seconds(5)));
    EXPECT_TRUE(sse.ReadUntil(": heartbeat", std::chrono::seconds(5)));
    sse.Close();  // vanishes mid-stream

    EXPECT_EQ(Call("GET", "/readyz", "", "", "").status, 200);
}

TEST_F(ApiE2eTest, WalksTheCatalogueAndStaysHealthy) { Walk(); }

TEST_F(ApiE2eTest, OpenApiFileLints) {
    const auto redocly = std::filesystem::path(FG_SOURCE_DIR) / "tools/api/node_modules/.bin/redocly";
    FG_REQUIRE_PATH(redocly);
    // no-path-trailing-slash: GET /console/ is the console's address (docs/console.md) on purpose.
    const std::string cmd = "timeout 120 " + redocly.string() + " lint --skip-rule no-path-trailing-slash " +
                            FG_SOURCE_DIR + "/api/openapi.json > " + (dir_ / "lint.txt").string() + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadFile(dir_ / "lint.txt");
}

/// The same walk through `prism proxy api/openapi.json`: every request and response the tests
/// make is checked against the file by a validator we did not write.
TEST_F(ApiE2eTest, ThroughPrismProxy) {
    const auto prism = std::filesystem::path(FG_SOURCE_DIR) / "tools/api/node_modules/.bin/prism";
    FG_REQUIRE_PATH(prism);
    const int proxy_port = fg::testing::FreeLoopbackPort();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::setpgid(0, 0);
        const std::string log = (dir_ / "prism.log").string();
        std::freopen(log.c_str(), "w", stdout);
        std::freopen(log.c_str(), "a", stderr);
        const std::string spec = std::string(FG_SOURCE_DIR) + "/api/openapi.json";
        const std::string upstream = "http://127.0.0.1:" + std::to_string(port_);
        const std::string p = std::to_string(proxy_port);
        ::execl(prism.c_str(), "prism", "proxy", spec.c_str(), upstream.c_str(), "--host", "127.0.0.1",
                "--port", p.c_str(), static_cast<char*>(nullptr));
        std::_Exit(127);
    }
    struct Reap {
        pid_t pid;
        ~Reap() {
            ::kill(-pid, SIGTERM);
            ::kill(pid, SIGTERM);
            for (int i = 0; i < 50 && ::waitpid(pid, nullptr, WNOHANG) == 0; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reap{pid};
    bool up = false;
    for (int i = 0; i < 600 && !up; ++i) {  // node starts slowly on a busy box: up to 60 s
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        up = Fetch(proxy_port, "GET", "/healthz").status == 200;
    }
    ASSERT_TRUE(up) << "prism did not start: " << ReadFile(dir_ / "prism.log");
    via_ = proxy_port;
    Walk();
}

}  // namespace
}  // namespace fg::api
