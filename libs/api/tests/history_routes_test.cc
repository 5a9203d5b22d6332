// SPDX-License-Identifier: Apache-2.0
// The history and strangers routes in process over a real SQLite gallery and history: paging,
// filters, bad ranges (400 naming the field), crops, name/merge/dismiss a stranger, a gallery
// deletion erasing the subject's history through the change log, and search by face's default
// min_score following the live threshold (with a stub worker: no model in a unit test).
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "../src/runtime.h"  // to lend the route's worker pool a stub worker
#include "api_test_util.h"
#include "fg/api/api.h"
#include "fg/gallery/gallery.h"
#include "fg/history/history.h"
#include "fg/testing/testing.h"

namespace fg::api {
namespace {

using nlohmann::json;
using testing::ErrorCode;
using testing::Invoke;
using testing::Json;

std::vector<float> Unit(int hot, float jitter = 0) {
    std::vector<float> v(8, 0.f);
    v[hot] = 1.f;
    v[(hot + 1) % 8] = jitter;
    const float n = std::sqrt(1.f + jitter * jitter);
    for (float& x : v) x /= n;
    return v;
}

class HistoryRoutesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto key = gallery::ParseKey(std::string(64, 'b'));
        ASSERT_TRUE(key.ok());
        keys_ = std::make_shared<gallery::KeyRing>(*key);
        auto g = gallery::Gallery::Open({.location = (dir_ / "g.db").string(), .keys = keys_});
        ASSERT_TRUE(g.ok()) << g.status().message();
        ctx_.gallery = std::move(*g);
        ctx_.gallery_configured = true;
        ctx_.events = std::make_shared<EventHub>(4);
        history::HistoryOptions o;
        o.path = history::DefaultHistoryPath((dir_ / "g.db").string());
        o.keys = keys_;
        o.model_id = "m8";
        o.dim = 8;
        o.stranger_threshold = 0.8f;
        o.gallery = ctx_.gallery;
        auto h = history::HistoryStore::Open(o);
        ASSERT_TRUE(h.ok()) << h.status().ToString();
        ctx_.history = std::move(*h);
        AddRoutes(router_, ctx_);
    }
    history::Sighting Record(std::int64_t t, const std::string& stream, history::Outcome o, int person,
                             const std::string& subject = "") {
        history::SightingInput in;
        in.time_ms = t;
        in.stream = stream;
        in.track = t;
        in.outcome = o;
        in.subject_id = subject;
        in.score = 0.5f;
        in.quality = 0.6f;
        in.embedding = Unit(person, 0.05f);
        in.crop_jpeg = {0xff, 0xd8, 0xff, 0xd9};
        auto s = ctx_.history->Record(in);
        EXPECT_TRUE(s.ok()) << s.status().ToString();
        return s.ok() ? *s : history::Sighting{};
    }
    server::Response Get(const std::string& path, std::map<std::string, std::string> query = {}) {
        return Invoke(router_, {.path = path, .query = std::move(query)});
    }
    server::Response PostJson(const std::string& path, const json& j) {
        return Invoke(router_, {.method = "POST", .path = path, .body = j.dump(), .content_type = "application/json"});
    }

    fg::testing::TmpDir dir_;
    std::shared_ptr<gallery::KeyRing> keys_;
    ApiContext ctx_;
    server::Router router_;
};

TEST_F(HistoryRoutesTest, ListsFiltersAndPages) {
    for (int i = 0; i < 5; ++i) Record(1000 + i, i % 2 ? "gate" : "door", history::Outcome::kKnown, 0, "alice");
    Record(2000, "door", history::Outcome::kUnknown, 3);
    auto r = Get("/v1/history", {{"limit", "2"}});
    ASSERT_EQ(r.status, 200) << r.body;
    json j = Json(r);
    ASSERT_EQ(j["items"].size(), 2u);
    EXPECT_EQ(j["items"][0]["time_ms"], 2000);
    EXPECT_EQ(j["items"][0]["outcome"], "unknown");
    EXPECT_TRUE(j["items"][0]["stranger_id"].is_number_integer());
    EXPECT_EQ(j["items"][0]["time"], "1970-01-01T00:00:02.000Z");
    ASSERT_TRUE(j["next_cursor"].is_string());
    int total = 2;
    std::string cursor = j["next_cursor"];
    while (!cursor.empty()) {
        r = Get("/v1/history", {{"limit", "2"}, {"cursor", cursor}});
        ASSERT_EQ(r.status, 200);
        j = Json(r);
        total += int(j["items"].size());
        cursor = j["next_cursor"].is_null() ? "" : j["next_cursor"].get<std::string>();
    }
    EXPECT_EQ(total, 6);
    r = Get("/v1/history", {{"stream", "gate"}, {"outcome", "known"}, {"subject", "alice"}});
    EXPECT_EQ(Json(r)["items"].size(), 2u);
    r = Get("/v1/history", {{"from", "1970-01-01T00:00:01.002Z"}, {"to", "1003"}});
    EXPECT_EQ(Json(r)["items"].size(), 2u);
    const std::int64_t id = Json(Get("/v1/history"))["items"][0]["id"];
    r = Get("/v1/history/" + std::to_string(id));
    EXPECT_EQ(r.status, 200);
    r = Get("/v1/history/" + std::to_string(id) + "/crop.jpg");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "image/jpeg");
    EXPECT_EQ(r.body, std::string("\xff\xd8\xff\xd9", 4));
}

TEST_F(HistoryRoutesTest, BadInputIs4xxNamingTheField) {
    struct Case {
        std::string path;
        std::map<std::string, std::string> query;
        int status;
        std::string field;
    };
    const std::vector<Case> cases = {
        {"/v1/history", {{"from", "2026-12-05T03:00:00Z"}, {"to", "2026-12-04T03:00:00Z"}}, 400, "from"},
        {"/v1/history", {{"from", "yesterday"}}, 400, "from"},
        {"/v1/history", {{"to", "2026-13-45T00:00:00Z"}}, 400, "to"},
        {"/v1/history", {{"outcome", "maybe"}}, 400, "outcome"},
        {"/v1/history", {{"stranger", "x"}}, 400, "stranger"},
        {"/v1/history", {{"cursor", "garbage"}}, 400, "cursor"},
        {"/v1/history", {{"limit", "0"}}, 400, "limit"},
        {"/v1/history/abc", {}, 400, "id"},
        {"/v1/history/-3", {}, 400, "id"},
        {"/v1/history/99", {}, 404, ""},
        {"/v1/history/99/crop.jpg", {}, 404, ""},
        {"/v1/strangers", {{"since", "soon"}}, 400, "since"},
        {"/v1/strangers", {{"cursor", "1"}}, 400, "cursor"},
        {"/v1/strangers/7", {}, 404, ""},
    };
    for (const Case& c : cases) {
        auto r = Get(c.path, c.query);
        EXPECT_EQ(r.status, c.status) << c.path << " " << r.body;
        if (!c.field.empty()) {
            EXPECT_EQ(Json(r)["error"].value("field", ""), c.field) << c.path << " " << r.body;
        }
    }
    EXPECT_EQ(PostJson("/v1/strangers/1/merge", {{"into", "x"}}).status, 400);
    EXPECT_EQ(PostJson("/v1/strangers/1/enroll", json::object()).status, 400);
    EXPECT_EQ(Invoke(router_, {.method = "DELETE", .path = "/v1/strangers/5"}).status, 404);
}

TEST_F(HistoryRoutesTest, NameMergeAndDismissStrangers) {
    const auto a1 = Record(1000, "door", history::Outcome::kUnknown, 2);
    const auto a2 = Record(2000, "gate", history::Outcome::kUnknown, 2);
    const auto b = Record(3000, "door", history::Outcome::kUnknown, 5);
    const auto c = Record(4000, "door", history::Outcome::kUnknown, 6);
    ASSERT_TRUE(a1.stranger_id && b.stranger_id && c.stranger_id);
    EXPECT_EQ(a1.stranger_id, a2.stranger_id);
    auto r = Get("/v1/strangers");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(Json(r)["items"].size(), 3u);
    r = Get("/v1/strangers/" + std::to_string(*a1.stranger_id));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(Json(r)["sightings"].size(), 2u);
    EXPECT_EQ(Json(r)["streams"], json({"door", "gate"}));

    r = PostJson("/v1/strangers/" + std::to_string(*b.stranger_id) + "/merge", {{"into", *a1.stranger_id}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["sightings"], 3);

    r = PostJson("/v1/strangers/" + std::to_string(*a1.stranger_id) + "/enroll",
                 {{"subject_id", "dora"}, {"display_name", "Dora"}});
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(Json(r)["subject_id"], "dora");
    EXPECT_EQ(Json(r)["faces_enrolled"], 3);
    auto id = ctx_.gallery->Identify(Embedding{"m8", Unit(2)});
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id->subject_id, "dora");
    EXPECT_EQ(Get("/v1/strangers/" + std::to_string(*a1.stranger_id)).status, 404);
    EXPECT_EQ(Json(Get("/v1/history", {{"subject", "dora"}}))["items"].size(), 3u);

    EXPECT_EQ(Invoke(router_, {.method = "DELETE", .path = "/v1/strangers/" + std::to_string(*c.stranger_id)}).status, 204);
    EXPECT_EQ(Json(Get("/v1/strangers"))["items"].size(), 0u);

    // Deleting the subject from the gallery erases its history (followed from the change log).
    ASSERT_TRUE(ctx_.gallery->DeleteSubject("dora").ok());
    auto applied = ctx_.history->FollowGallery();
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    EXPECT_EQ(*applied, 1);
    EXPECT_EQ(Json(Get("/v1/history", {{"subject", "dora"}}))["items"].size(), 0u);
    EXPECT_EQ(ctx_.history->count(), 1);  // only the dismissed stranger's sighting is left
}

// One face whose embedding is fixed: what search by face does with a worker's answer is tested
// without a model.
class StubWorker final : public vision::Worker {
  public:
    explicit StubWorker(std::vector<float> e) : e_(std::move(e)) {}
    Result<std::vector<vision::FaceDetection>> Detect(const cv::Mat&) override { return std::vector<vision::FaceDetection>{}; }
    Result<std::vector<vision::Face>> Analyze(const cv::Mat&, const vision::AnalyzeOptions&) override {
        vision::Face f;
        f.detection.box = {10, 10, 40, 40};
        f.embedding = Embedding{"m8", e_};
        return std::vector<vision::Face>{f};
    }
    Status Embed(const cv::Mat&, std::span<const vision::FaceDetection>, std::vector<Embedding>&) override {
        return Unimplemented("stub");
    }
    Status EmbedAligned(std::span<const cv::Mat>, std::vector<Embedding>&) override { return Unimplemented("stub"); }

  private:
    std::vector<float> e_;
};

TEST_F(HistoryRoutesTest, SearchDefaultMinScoreFollowsTheLiveThreshold) {
    // The history opened with 0.8 (the threshold at start-up); one sighting at cosine 0.707 of
    // the probe.
    history::SightingInput in;
    in.time_ms = 1000;
    in.stream = "door";
    in.outcome = history::Outcome::kKnown;
    in.subject_id = "alice";
    in.embedding = Unit(0, 1.f);
    ASSERT_TRUE(ctx_.history->Record(in).ok());
    { Pool<vision::Worker>::Lease lend(&ctx_.runtime->workers, std::make_unique<StubWorker>(Unit(0))); }
    std::vector<std::uint8_t> png;
    ASSERT_TRUE(cv::imencode(".png", cv::Mat(64, 64, CV_8UC3, cv::Scalar(90, 90, 90)), png));
    const std::string image(png.begin(), png.end());
    auto matches = [&](std::map<std::string, std::string> query) {
        auto r = Invoke(router_, {.method = "POST", .path = "/v1/history/search", .body = image,
                                  .content_type = "image/png", .query = std::move(query)});
        EXPECT_EQ(r.status, 200) << r.body;
        const json j = Json(r);
        return j["faces"].size() == 1 ? j["faces"][0]["matches"].size() : 99u;
    };
    auto threshold = [&](double t) {
        auto r = Invoke(router_, {.method = "PATCH", .path = "/v1/settings", .body = json{{"threshold", t}}.dump(),
                                  .content_type = "application/json"});
        ASSERT_EQ(r.status, 200) << r.body;
    };
    threshold(0.6);  // changed at runtime, below the sighting's 0.707
    EXPECT_EQ(matches({}), 1u);
    threshold(0.75);  // above it
    EXPECT_EQ(matches({}), 0u);
    EXPECT_EQ(matches({{"min_score", "0.7"}}), 1u);  // an explicit min_score still wins
}

TEST_F(HistoryRoutesTest, WithoutHistoryTheRoutesSayWhy) {
    ApiContext ctx;
    server::Router router;
    ctx.events = std::make_shared<EventHub>(4);
    AddRoutes(router, ctx);
    auto r = Invoke(router, {.path = "/v1/history"});
    EXPECT_EQ(r.status, 409);
    EXPECT_EQ(ErrorCode(r), "no_history");
}

}  // namespace
}  // namespace fg::api
