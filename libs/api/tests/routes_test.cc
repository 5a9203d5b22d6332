// SPDX-License-Identifier: Apache-2.0
// The handlers in process, without models: bad input, subjects and faces CRUD over a real
// SQLite gallery, identify/verify with embeddings, SSE, health.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "api_test_util.h"
#include "fg/api/api.h"
#include "fg/audit/audit_log.h"
#include "fg/events/event.h"
#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"

namespace fg::api {
namespace {

using nlohmann::json;
using testing::Call;
using testing::ErrorCode;
using testing::Invoke;
using testing::Json;

std::vector<float> Unit(int dim, int hot) {
    std::vector<float> v(dim, 0.f);
    v[hot] = 1.f;
    return v;
}

class RoutesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto key = gallery::ParseKey(std::string(64, 'a'));
        ASSERT_TRUE(key.ok());
        auto g = gallery::Gallery::Open({.location = (dir_ / "g.db").string(),
                                         .keys = std::make_shared<gallery::KeyRing>(*key)});
        ASSERT_TRUE(g.ok()) << g.status().message();
        ctx_.gallery = std::move(*g);
        ctx_.gallery_configured = true;
        ctx_.events = std::make_shared<EventHub>(4);
        ctx_.options.heartbeat = std::chrono::milliseconds(50);
        AddRoutes(router_, ctx_);
    }
    server::Response Post(const std::string& path, const std::string& body, const std::string& type,
                          std::map<std::string, std::string> query = {}) {
        return Invoke(router_, {.method = "POST", .path = path, .body = body, .content_type = type, .query = query});
    }
    server::Response PostJson(const std::string& path, const json& j) {
        return Post(path, j.dump(), "application/json");
    }
    void Enroll(const std::string& id, int hot) {
        const std::vector<gallery::NewFace> faces = {{Unit(8, hot), 0.9f, "test", {}}};
        ASSERT_TRUE(ctx_.gallery->Enroll(id, {.model_id = "m8", .display_name = id}, faces).ok());
    }

    fg::testing::TmpDir dir_;
    ApiContext ctx_;
    server::Router router_;
};

TEST_F(RoutesTest, HealthAndReadiness) {
    auto r = Invoke(router_, {.path = "/healthz"});
    EXPECT_EQ(r.status, 200);
    r = Invoke(router_, {.path = "/readyz"});
    EXPECT_EQ(r.status, 503);  // no engine
    EXPECT_EQ(Json(r)["gallery"], "open");
    EXPECT_FALSE(Json(r)["models"].get<bool>());
    r = Invoke(router_, {.path = "/v1/openapi.json"});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(Json(r)["openapi"], "3.0.3");
}

TEST_F(RoutesTest, BadInputCatalogue) {
    struct Case {
        std::string path, body, type, code;
        int status;
    };
    const std::string jpeg_magic_garbage = "\xff\xd8\xff\xe0garbage";
    const std::vector<Case> cases = {
        {"/v1/detect", "", "image/jpeg", "missing_image", 400},
        {"/v1/detect", "abc", "text/plain", "unsupported_media_type", 415},
        {"/v1/detect", "abc", "", "unsupported_media_type", 415},
        {"/v1/detect", "{\"image\": ", "application/json", "invalid_json", 400},
        {"/v1/detect", "[1,2]", "application/json", "invalid_json", 400},
        {"/v1/detect", "{\"image\": \"!!!notbase64\"}", "application/json", "invalid_base64", 400},
        {"/v1/detect", "{\"image\": 5}", "application/json", "bad_request", 400},
        {"/v1/detect", "{}", "application/json", "missing_image", 400},
        {"/v1/detect", "{\"image\": \"aGVsbG8=\"}", "application/json", "invalid_image", 400},
        {"/v1/detect", jpeg_magic_garbage, "image/jpeg", "invalid_image", 400},
        {"/v1/detect", "--B\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nxx", "multipart/form-data; boundary=B",
         "invalid_multipart", 400},
        {"/v1/detect", "--B--", "multipart/form-data", "invalid_multipart", 400},
        {"/v1/identify", "{\"embedding\": [1, \"x\"]}", "application/json", "invalid_embedding", 400},
        {"/v1/identify", "{\"embedding\": []}", "application/json", "invalid_embedding", 400},
        {"/v1/identify", "{\"embedding\": [0, 0]}", "application/json", "invalid_embedding", 400},
        {"/v1/identify", "{\"embedding\": [1e999]}", "application/json", "invalid_json", 400},
        {"/v1/verify", "{\"embedding1\": [1, 0]}", "application/json", "missing_image", 400},
        {"/v1/subjects", "{\"id\": 5}", "application/json", "bad_request", 400},
        {"/v1/subjects", "{\"id\": \"\"}", "application/json", "bad_request", 400},
        {"/v1/subjects", "{\"id\": \"a\", \"metadata\": [1]}", "application/json", "bad_request", 400},
        {"/v1/subjects", "{\"id\": \"a\", \"extra\": 1}", "application/json", "bad_request", 400},
        {"/v1/subjects", "id=a", "application/x-www-form-urlencoded", "unsupported_media_type", 415},
        {"/v1/subjects/nobody/faces", "{\"image\": \"aGVsbG8=\"}", "application/json", "not_found", 404},
        {"/v1/subjects/nobody/merge", "{\"into\": \"x\"}", "application/json", "not_found", 404},
    };
    for (const Case& c : cases) {
        const auto r = Post(c.path, c.body, c.type);
        EXPECT_EQ(r.status, c.status) << c.path << " " << c.body << " -> " << r.body;
        EXPECT_EQ(ErrorCode(r), c.code) << c.path << " " << c.body << " -> " << r.body;
    }
    // Query parameters.
    auto r = Post("/v1/identify", "{\"embedding\": [1]}", "application/json", {{"top_k", "zero"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(Json(r)["error"]["field"], "top_k");
    r = Invoke(router_, {.path = "/v1/subjects", .query = {{"limit", "-1"}}});
    EXPECT_EQ(r.status, 400);
    r = Invoke(router_, {.path = "/v1/events", .query = {{"type", "nope"}}});
    EXPECT_EQ(r.status, 400);
    // No engine: a decodable image still gets a clear 503, not a crash.
    std::vector<std::uint8_t> png;
    cv::imencode(".png", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)), png);
    r = Post("/v1/detect", std::string(png.begin(), png.end()), "image/png");
    EXPECT_EQ(r.status, 503) << r.body;
    // Streams without a pipeline.
    EXPECT_EQ(Invoke(router_, {.path = "/v1/streams"}).status, 409);
    EXPECT_EQ(Invoke(router_, {.path = "/v1/streams/x/frame.jpg"}).status, 409);
}

TEST_F(RoutesTest, SubjectsAndFaces) {
    auto r = PostJson("/v1/subjects", {{"id", "alice"}, {"display_name", "Alice"}, {"metadata", {{"team", "a"}}}});
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(Json(r)["metadata"]["team"], "a");
    EXPECT_EQ(PostJson("/v1/subjects", {{"id", "alice"}}).status, 409);
    for (const char* id : {"bob", "carol", "dave"}) ASSERT_EQ(PostJson("/v1/subjects", {{"id", id}}).status, 201);

    // Cursor paging.
    r = Invoke(router_, {.path = "/v1/subjects", .query = {{"limit", "3"}}});
    ASSERT_EQ(r.status, 200);
    auto page = Json(r);
    ASSERT_EQ(page["items"].size(), 3u);
    ASSERT_TRUE(page["next"].is_string());
    r = Invoke(router_, {.path = "/v1/subjects", .query = {{"limit", "3"}, {"after", page["next"]}}});
    page = Json(r);
    ASSERT_EQ(page["items"].size(), 1u);
    EXPECT_EQ(page["items"][0]["id"], "dave");
    EXPECT_TRUE(page["next"].is_null());

    r = Invoke(router_, {.method = "PATCH", .path = "/v1/subjects/bob", .body = R"({"display_name": "Bobby"})",
                         .content_type = "application/json"});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["display_name"], "Bobby");
    r = Invoke(router_, {.method = "PATCH", .path = "/v1/subjects/nobody", .body = R"({"display_name": "x"})",
                         .content_type = "application/json"});
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(Invoke(router_, {.path = "/v1/subjects/nobody"}).status, 404);

    Enroll("alice", 0);
    Enroll("bob", 1);
    r = Invoke(router_, {.path = "/v1/subjects/alice/faces"});
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(Json(r)["items"].size(), 1u);
    const std::int64_t alice_face = Json(r)["items"][0]["face_id"];

    // Identify by embedding: known, unknown, wrong model, wrong length.
    r = PostJson("/v1/identify", {{"embedding", Unit(8, 0)}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["faces"][0]["decision"], "known");
    EXPECT_EQ(Json(r)["faces"][0]["subject_id"], "alice");
    r = PostJson("/v1/identify", {{"embedding", Unit(8, 5)}});
    EXPECT_EQ(Json(r)["faces"][0]["decision"], "unknown");
    r = PostJson("/v1/identify", {{"embedding", Unit(8, 0)}, {"model_id", "other"}});
    EXPECT_EQ(ErrorCode(r), "model_mismatch");
    r = PostJson("/v1/identify", {{"embedding", Unit(4, 0)}});
    EXPECT_EQ(r.status, 400) << r.body;

    // Verify: two embeddings, embedding + subject.
    r = PostJson("/v1/verify", {{"embedding1", Unit(8, 0)}, {"embedding2", Unit(8, 0)}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["decision"], "same");
    r = PostJson("/v1/verify", {{"embedding", Unit(8, 1)}, {"subject_id", "alice"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["decision"], "different");
    r = PostJson("/v1/verify", {{"embedding", Unit(8, 1)}, {"subject_id", "nobody"}});
    EXPECT_EQ(r.status, 404) << r.body;

    // Merge bob into alice; delete a face; delete a subject.
    r = PostJson("/v1/subjects/bob/merge", {{"into", "alice"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["face_count"], 2);
    EXPECT_EQ(Invoke(router_, {.path = "/v1/subjects/bob"}).status, 404);
    EXPECT_EQ(Invoke(router_, {.method = "DELETE", .path = "/v1/subjects/carol/faces/" + std::to_string(alice_face)}).status, 404);
    EXPECT_EQ(Invoke(router_, {.method = "DELETE", .path = "/v1/subjects/alice/faces/abc"}).status, 400);
    r = Invoke(router_, {.method = "DELETE", .path = "/v1/subjects/alice/faces/" + std::to_string(alice_face)});
    ASSERT_EQ(r.status, 200) << r.body;
    r = Invoke(router_, {.method = "DELETE", .path = "/v1/subjects/alice"});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Invoke(router_, {.method = "DELETE", .path = "/v1/subjects/alice"}).status, 404);
    // Erased: the embedding no longer identifies anyone.
    r = PostJson("/v1/identify", {{"embedding", Unit(8, 0)}});
    EXPECT_EQ(Json(r)["faces"][0]["decision"], "unknown");
}

TEST_F(RoutesTest, AuditHookSeesChangesWithoutBiometrics) {
    std::vector<std::string> log;
    ctx_.audit = [&](const server::Principal& p, const std::string& action, const std::string& target,
                     const std::string& result) { log.push_back(p.key_id + " " + action + " " + target + " " + result); };
    ASSERT_EQ(PostJson("/v1/subjects", {{"id", "eve"}}).status, 201);
    Enroll("eve", 2);
    ASSERT_EQ(PostJson("/v1/identify", {{"embedding", Unit(8, 2)}}).status, 200);
    ASSERT_EQ(Invoke(router_, {.method = "DELETE", .path = "/v1/subjects/eve"}).status, 200);
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[0], "test create_subject eve ok");
    EXPECT_EQ(log[1], "test identify eve known");
    EXPECT_EQ(log[2], "test delete eve ok");
}

// With the asynchronous hook (serve), identify and verify answer once their record is durable
// (deferred, many requests sharing a commit) and 503 audit_unavailable when it cannot be
// written; the other audited routes block on it and answer 503 too: never a 2xx unrecorded.
TEST_F(RoutesTest, AuditedRecognitionAnswersOnlyWhenRecorded) {
    Enroll("eve", 2);
    audit::AuditKey key{};
    key.fill(3);
    auto opened = audit::AuditLog::Open(dir_ / "audit.db", key);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::shared_ptr<audit::AuditLog> log = std::move(*opened);
    ctx_.audit_async = [log](const server::Principal& p, const std::string& action, const std::string& target,
                             const std::string& result, std::function<void(Status)> done) {
        audit::Record r;
        r.who = p.key_id;
        r.action = action;
        r.target = target;
        r.details = {{"outcome", result}};
        log->AppendAsync(std::move(r), [done](Result<audit::Record> w) { done(w.status()); });
    };
    constexpr int kThreads = 8;
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            auto r = PostJson("/v1/identify", {{"embedding", Unit(8, 2)}});
            EXPECT_EQ(r.status, 200) << r.body;
            ok += r.status == 200;
        });
    }
    for (auto& th : threads) th.join();
    auto v = PostJson("/v1/verify", {{"embedding", Unit(8, 2)}, {"subject_id", "eve"}});
    EXPECT_EQ(v.status, 200) << v.body;
    auto report = log->Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->records, ok.load() + 1);  // every 200 has its record

    ctx_.audit_async = [](const server::Principal&, const std::string&, const std::string&, const std::string&,
                          std::function<void(Status)> done) { done(Unavailable("disk full")); };
    auto r = PostJson("/v1/identify", {{"embedding", Unit(8, 2)}});
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(ErrorCode(r), "audit_unavailable");
    r = PostJson("/v1/verify", {{"embedding", Unit(8, 2)}, {"subject_id", "eve"}});
    EXPECT_EQ(r.status, 503);
    // A router made with only the async hook derives the blocking one for the other routes.
    ctx_.audit = nullptr;
    server::Router router;
    AddRoutes(router, ctx_);
    r = Invoke(router, {.method = "POST", .path = "/v1/subjects", .body = json{{"id", "zed"}}.dump(),
                        .content_type = "application/json"});
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(ErrorCode(r), "audit_unavailable");
}

// The embedding body's own parser (routes_recognition.cc ParseProbeFast) answers exactly as the
// general JSON parser: the same body sent as application/vnd.x+json takes the general path.
TEST_F(RoutesTest, FastEmbeddingParserMatchesTheGeneralParser) {
    Enroll("eve", 2);
    Enroll("bob", 5);
    const std::vector<std::string> bodies = {
        R"({"embedding": [0, 0, 1, 0, 0, 0, 0, 0]})",
        R"( { "model_id" : "m8" , "embedding" : [ 0.0 , -0 , 1e0 , 0.5E-1 , 0, 0, 0, 0.25 ] } )",
        R"({"embedding": [0, 0, 0, 0, 0, 1, 0, 0], "model_id": "other"})",
        R"({"embedding": [0, 0, 0, 0, 0, 0, 0, 0]})",
        R"({"embedding": [1, 2, 3]})",
        R"({"embedding": [1e999, 0, 0, 0, 0, 0, 0, 0]})",
        R"({"embedding": [01, 0, 0, 0, 0, 0, 0, 0]})",
        R"({"embedding": [1, 0, 0, 0, 0, 0, 0, 0,]})",
        R"({"embedding": [1, 0, 0, 0, 0, 0, 0, 0]} x)",
        R"({"embedding": [1, 0, 0, 0, 0, 0, 0, 0], "embedding": [0, 1, 0, 0, 0, 0, 0, 0]})",
        R"({"embedding": [.5, 0, 0, 0, 0, 0, 0, 0]})",
        R"({"embedding": [nan, 0, 0, 0, 0, 0, 0, 0]})",
        R"({"embedding": []})",
        R"({"embedding": [1, 0, 0, 0, 0, 0, 0, 0], "extra": 1})",
    };
    for (const auto& b : bodies) {
        const auto fast = Post("/v1/identify", b, "application/json");
        const auto general = Post("/v1/identify", b, "application/vnd.x+json");
        EXPECT_EQ(fast.status, general.status) << b;
        EXPECT_EQ(fast.body, general.body) << b;
    }
}

TEST_F(RoutesTest, AuditLogIsReadableFilteredAndPaged) {
    auto r = Invoke(router_, {.path = "/v1/audit"});
    EXPECT_EQ(r.status, 409);  // no log configured
    EXPECT_EQ(ErrorCode(r), "no_audit_log");
    audit::AuditKey key{};
    key.fill(7);
    auto log = audit::AuditLog::Open(dir_ / "audit.db", key);
    ASSERT_TRUE(log.ok()) << log.status().message();
    ctx_.audit_log = std::move(*log);
    for (int i = 0; i < 5; ++i) {
        audit::Record rec;
        rec.who = i % 2 ? "cli:alice" : "k1";
        rec.action = i < 3 ? "identify" : "delete";
        rec.target = "s" + std::to_string(i);
        ASSERT_TRUE(ctx_.audit_log->Append(rec).ok());
    }
    r = Invoke(router_, {.path = "/v1/audit", .query = {{"limit", "2"}}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["items"].size(), 2u);
    EXPECT_EQ(Json(r)["items"][0]["seq"], 1);
    const std::string next = Json(r)["next"];
    r = Invoke(router_, {.path = "/v1/audit", .query = {{"limit", "10"}, {"after", next}}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(Json(r)["items"].size(), 3u);
    EXPECT_TRUE(Json(r)["next"].is_null());
    r = Invoke(router_, {.path = "/v1/audit", .query = {{"action", "identify"}, {"principal", "cli:alice"}}});
    ASSERT_EQ(Json(r)["items"].size(), 1u);
    EXPECT_EQ(Json(r)["items"][0]["target"], "s1");
    r = Invoke(router_, {.path = "/v1/audit", .query = {{"since", "1h"}, {"until", "2999-01-01T00:00:00Z"}}});
    EXPECT_EQ(Json(r)["items"].size(), 5u);
    r = Invoke(router_, {.path = "/v1/audit", .query = {{"since", "1999-01-01T00:00:00Z"}, {"until", "2000"}}});
    EXPECT_EQ(Json(r)["items"].size(), 0u);
    for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
             {"since", "yesterday"}, {"until", "x"}, {"after", "abc"}, {"after", "-3"}, {"limit", "0"}}) {
        r = Invoke(router_, {.path = "/v1/audit", .query = {{name, value}}});
        EXPECT_EQ(r.status, 400) << name << "=" << value;
        EXPECT_EQ(Json(r)["error"]["field"], name) << name << "=" << value;
    }
}

TEST_F(RoutesTest, ServerSentEvents) {
    std::vector<events::Event> evs;
    for (int i = 0; i < 6; ++i) {
        evs.push_back(events::MakeEvent(i % 2 ? "cam2" : "cam1", events::StreamState{"live", ""}));
        ASSERT_TRUE(ctx_.events->Publish(evs.back()).ok());
    }
    // Resume after evs[3] (in the backlog of 4), filtered to cam2: evs[5] only.
    auto r = Invoke(router_, {.path = "/v1/events", .query = {{"stream", "cam2"}},
                              .headers = {{"Last-Event-ID", evs[3].event_id}}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/event-stream");
    ASSERT_TRUE(r.stream);
    auto w = std::make_shared<testing::FakeWriter>();
    r.stream(w);
    std::string d = w->Data();
    EXPECT_NE(d.find("id: " + evs[5].event_id + "\nevent: stream_state\ndata: {"), std::string::npos) << d;
    EXPECT_EQ(d.find(evs[4].event_id), std::string::npos);
    EXPECT_EQ(d.find(evs[3].event_id), std::string::npos);
    // Live events arrive; heartbeats follow.
    const events::Event live = events::MakeEvent("cam2", events::StreamState{"stalled", ""});
    ASSERT_TRUE(ctx_.events->Publish(live).ok());
    EXPECT_NE(w->Data().find(live.event_id), std::string::npos);
    for (int i = 0; i < 100 && w->Data().find(": heartbeat") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(w->Data().find(": heartbeat"), std::string::npos);
    // A client that vanished is dropped.
    w->Close();
    ASSERT_TRUE(ctx_.events->Publish(live).ok());
    EXPECT_EQ(ctx_.events->subscribers(), 0u);

    // An id that fell out of the backlog: a comment, then the backlog from the oldest.
    r = Invoke(router_, {.path = "/v1/events", .headers = {{"Last-Event-ID", evs[0].event_id}}});
    auto w2 = std::make_shared<testing::FakeWriter>();
    r.stream(w2);
    d = w2->Data();
    const auto gap = d.find(": last-event-id " + evs[0].event_id + " is not in the backlog");
    ASSERT_NE(gap, std::string::npos) << d;
    EXPECT_LT(gap, d.find("id: " + evs[3].event_id));
}

}  // namespace
}  // namespace fg::api
