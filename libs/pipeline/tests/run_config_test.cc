// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/run_config.h"

#include <fstream>

#include <gtest/gtest.h>

#include "fg/testing/testing.h"

namespace fg::pipeline {
namespace {

using nlohmann::json;

std::string Error(const json& j) {
    auto r = ParseRunConfig(j, "/etc/fg");
    return r.ok() ? std::string() : r.status().message();
}

TEST(RunConfig, MinimalConfigTakesEveryDefault) {
    auto r = ParseRunConfig(json::parse(R"({"streams":[{"id":"door","uri":"cam.mp4"}]})"), "/etc/fg");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->engine.pack, "default");
    EXPECT_EQ(r->pipeline.detect_interval, 2);
    ASSERT_EQ(r->pipeline.streams.size(), 1u);
    EXPECT_EQ(r->pipeline.streams[0].source.uri, "/etc/fg/cam.mp4");  // relative to the file
    EXPECT_TRUE(r->pipeline.streams[0].motion_gate);
    EXPECT_EQ(r->gallery.db, "");
    ASSERT_EQ(r->sinks.size(), 1u);
    EXPECT_EQ(r->sinks[0]["type"], "jsonl");
    EXPECT_EQ(r->pipeline.track_timeout, std::chrono::milliseconds(3000));
    // Faces are what the engine's threshold says; the tracker also sees weaker detections.
    EXPECT_FLOAT_EQ(r->pipeline.face_score_threshold, 0.5f);
    EXPECT_LT(r->pipeline.tracker.low_thresh, r->pipeline.face_score_threshold);
}

TEST(RunConfig, TrackTimeoutAndFaceThresholdFollowTheFile) {
    auto r = ParseRunConfig(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4"}],
        "track_timeout_ms": 0, "engine": {"score_threshold": 0.7}})"), "/etc/fg");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->pipeline.track_timeout.count(), 0);
    EXPECT_FLOAT_EQ(r->pipeline.face_score_threshold, 0.7f);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4"}],"track_timeout_ms":-1})"))
                  .find("track_timeout_ms"),
              std::string::npos);
}

TEST(RunConfig, EveryErrorNamesItsOption) {
    EXPECT_NE(Error(json::parse(R"({})")).find("streams"), std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"uri":"a.mp4"}]})")).find("streams[0].id"),
              std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4","motion":{"width":"x"}}]})"))
                  .find("streams[0].motion.width"),
              std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4"}],"detect_interval":0})"))
                  .find("detect_interval"),
              std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4"}],"tracker":{"min_hits":0}})"))
                  .find("tracker.min_hits"),
              std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4"}],"recognition":{"max_embedings":3}})"))
                  .find("recognition.max_embedings"),
              std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4"},{"id":"a","uri":"b.mp4"}]})"))
                  .find("used twice"),
              std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"rtsp://h/x","transport":"quic"}]})"))
                  .find("streams[0].transport"),
              std::string::npos);
    EXPECT_NE(Error(json::parse(R"({"streams":[{"id":"a","uri":"a.mp4"}],"engine":{"backend":"cuda"}})"))
                  .find("engine.backend"),
              std::string::npos);
}

TEST(RunConfig, ASinkWithANonStringTypeIsNotACrash) {
    // Found by fg_fuzz_run_config: json::value("type", "") threw on a number and ended the
    // process. The sink list is passed on as written (the sink factory names the bad field).
    for (const char* sink : {R"({"type": 1, "path": "x"})", R"({"type": null})", R"([1])", R"("jsonl")"}) {
        SCOPED_TRACE(sink);
        const json j = json::parse(std::string(R"({"streams":[{"id":"a","uri":"a.mp4"}],"events":{"sinks":[)") +
                                   sink + "]}}");
        auto r = ParseRunConfig(j, "/etc/fg");
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(r->sinks[0], j["events"]["sinks"][0]);
    }
}

TEST(RunConfig, FileErrors) {
    testing::TmpDir tmp;
    EXPECT_EQ(LoadRunConfig(tmp.path() / "missing.json").status().code(), StatusCode::kNotFound);
    std::ofstream(tmp.path() / "bad.json") << "{ not json";
    auto r = LoadRunConfig(tmp.path() / "bad.json");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos);
    // Comments are allowed: people annotate their configs.
    std::ofstream(tmp.path() / "ok.json") << "// door camera\n{\"streams\":[{\"id\":\"a\",\"uri\":\"rtsp://h/x\"}]}";
    auto ok = LoadRunConfig(tmp.path() / "ok.json");
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_EQ(ok->pipeline.streams[0].source.uri, "rtsp://h/x");
}

}  // namespace
}  // namespace fg::pipeline
