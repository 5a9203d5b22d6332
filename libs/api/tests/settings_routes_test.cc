// SPDX-License-Identifier: Apache-2.0
// GET/PATCH /v1/settings and GET /v1/calibration in process over a real SQLite gallery: read,
// change (audited), a bad value is 400 naming the field, the scopes, 409 without a gallery, and
// the calibration 404 until one is saved.
#include <gtest/gtest.h>

#include "api_test_util.h"
#include "fg/api/api.h"
#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"

namespace fg::api {
namespace {

using nlohmann::json;
using testing::ErrorCode;
using testing::Invoke;
using testing::Json;

class SettingsRoutesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto key = gallery::ParseKey(std::string(64, 'c'));
        ASSERT_TRUE(key.ok());
        auto g = gallery::Gallery::Open(
            {.location = (dir_ / "g.db").string(), .keys = std::make_shared<gallery::KeyRing>(*key)});
        ASSERT_TRUE(g.ok()) << g.status().message();
        ctx_.gallery = std::move(*g);
        ctx_.gallery_configured = true;
        ctx_.audit = [this](const server::Principal&, const std::string& action, const std::string& target,
                            const std::string& result) { audited_.push_back(action + " " + target + " " + result); };
        AddRoutes(router_, ctx_);
    }
    server::Response Patch(const std::string& body) {
        return Invoke(router_, {.method = "PATCH", .path = "/v1/settings", .body = body,
                                .content_type = "application/json"});
    }
    fg::testing::TmpDir dir_;
    ApiContext ctx_;
    server::Router router_;
    std::vector<std::string> audited_;
};

TEST_F(SettingsRoutesTest, GetAndPatch) {
    auto r = Invoke(router_, {.path = "/v1/settings"});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r), ctx_.gallery->settings().ToJson());
    r = Patch(R"({"threshold": 0.55, "top_k": 3})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_FLOAT_EQ(Json(r)["threshold"].get<float>(), 0.55f);
    EXPECT_FLOAT_EQ(ctx_.gallery->settings().threshold, 0.55f);
    EXPECT_EQ(ctx_.gallery->settings().top_k, 3);
    ASSERT_EQ(audited_.size(), 1u);
    EXPECT_EQ(audited_[0].rfind("settings ", 0), 0u) << audited_[0];
}

TEST_F(SettingsRoutesTest, BadValuesAre400NamingTheFieldAndChangeNothing) {
    const float before = ctx_.gallery->settings().threshold;
    for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
             {R"({"threshold": 0.5, "top_k": "many"})", "top_k"},
             {R"({"threshold": 7})", "threshold"},
             {R"({"index": "btree"})", "index"},
             {R"({"colour": "red"})", "colour"}}) {
        auto r = Patch(body);
        EXPECT_EQ(r.status, 400) << body << " " << r.body;
        EXPECT_EQ(Json(r)["error"].value("field", ""), field) << body << " " << r.body;
    }
    EXPECT_EQ(Patch("[1]").status, 400);
    EXPECT_EQ(Patch("{}").status, 400);
    EXPECT_EQ(Patch("{not json").status, 400);
    EXPECT_FLOAT_EQ(ctx_.gallery->settings().threshold, before);
    EXPECT_TRUE(audited_.empty());
}

TEST_F(SettingsRoutesTest, Scopes) {
    EXPECT_EQ(router_.Find("GET", "/v1/settings").options->scope, "read");
    EXPECT_EQ(router_.Find("PATCH", "/v1/settings").options->scope, "admin");
    EXPECT_EQ(router_.Find("GET", "/v1/calibration").options->scope, "read");
}

TEST_F(SettingsRoutesTest, CalibrationIs404UntilSaved) {
    auto r = Invoke(router_, {.path = "/v1/calibration"});
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(ErrorCode(r), "not_found");
    const json curve = {{"curve", {{{"threshold", 0.3}, {"tar", 0.99}, {"far", 0.01}},
                                   {{"threshold", 0.5}, {"tar", 0.9}, {"far", 0.0}}}},
                        {"source", "faces"},
                        {"created", "2026-12-05T04:00:00Z"}};
    ASSERT_TRUE(ctx_.gallery->SaveCalibration(curve).ok());
    r = Invoke(router_, {.path = "/v1/calibration"});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r), curve);
}

TEST(SettingsRoutesNoGallery, Are409) {
    ApiContext ctx;
    server::Router router;
    AddRoutes(router, ctx);
    for (const char* path : {"/v1/settings", "/v1/calibration"}) {
        auto r = Invoke(router, {.path = path});
        EXPECT_EQ(r.status, 409) << path;
        EXPECT_EQ(ErrorCode(r), "no_gallery");
    }
    auto r = Invoke(router, {.method = "PATCH", .path = "/v1/settings", .body = R"({"top_k": 2})",
                             .content_type = "application/json"});
    EXPECT_EQ(r.status, 409);
}

}  // namespace
}  // namespace fg::api
