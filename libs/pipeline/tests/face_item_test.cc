// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/face_item.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace fg::pipeline {
namespace {

FaceItem Sample() {
    FaceItem item;
    item.item_id = "door/0/7/123";
    item.stream_id = "door";
    item.track_id = 7;
    item.frame_index = 123;
    item.stream_ms = 4920;
    item.capture_unix_ms = 1764892800123;
    item.box = {10.5f, 20.f, 64.f, 80.f};
    item.detection_score = 0.93f;
    for (int i = 0; i < 5; ++i) item.landmarks[static_cast<std::size_t>(i)] = {30.f + i, 40.f + 2 * i};
    item.quality = 0.71f;
    item.aligned = cv::Mat(112, 112, CV_8UC3);
    cv::randu(item.aligned, 0, 255);
    cv::GaussianBlur(item.aligned, item.aligned, {0, 0}, 3);  // photo-like, so JPEG keeps it close
    item.liveness = {.checked = true, .live = true, .spoof = false, .score = 0.8f, .threshold = 0.5f};
    return item;
}

TEST(FaceItem, RoundTripsThroughJson) {
    const FaceItem in = Sample();
    auto j = FaceItemToJson(in);
    ASSERT_TRUE(j.ok());
    // A serialised item is small: the crop, never the frame.
    EXPECT_LT(j->dump().size(), 16000u);
    auto out = FaceItemFromJson(nlohmann::json::parse(j->dump()));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->item_id, in.item_id);
    EXPECT_EQ(out->stream_id, in.stream_id);
    EXPECT_EQ(out->track_id, in.track_id);
    EXPECT_EQ(out->frame_index, in.frame_index);
    EXPECT_EQ(out->stream_ms, in.stream_ms);
    EXPECT_EQ(out->capture_unix_ms, in.capture_unix_ms);
    EXPECT_FLOAT_EQ(out->box.x, in.box.x);
    EXPECT_FLOAT_EQ(out->box.height, in.box.height);
    EXPECT_FLOAT_EQ(out->landmarks[4].y, in.landmarks[4].y);
    EXPECT_FLOAT_EQ(out->quality, in.quality);
    EXPECT_TRUE(out->embed);
    EXPECT_TRUE(out->liveness.checked);
    EXPECT_TRUE(out->liveness.live);
    EXPECT_FLOAT_EQ(out->liveness.score, 0.8f);
    ASSERT_EQ(out->aligned.size(), in.aligned.size());
    ASSERT_EQ(out->aligned.type(), CV_8UC3);
    EXPECT_LT(cv::norm(out->aligned, in.aligned, cv::NORM_L1) / double(in.aligned.total() * 3), 4.0);
}

TEST(FaceItem, ALivenessOnlyItemNeedsNoCrop) {
    FaceItem in = Sample();
    in.embed = false;
    in.aligned.release();
    in.liveness.spoof = true;
    auto out = FaceItemFromJson(*FaceItemToJson(in));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_FALSE(out->embed);
    EXPECT_TRUE(out->aligned.empty());
    EXPECT_TRUE(out->liveness.spoof);
}

TEST(FaceItem, ANewerMajorVersionIsRefusedNotMisread) {
    nlohmann::json j = *FaceItemToJson(Sample());
    j["v"] = kFaceItemVersion + 1;
    const Status st = FaceItemFromJson(j).status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("newer"), std::string::npos);
}

TEST(FaceItem, BadInputNamesTheField) {
    const nlohmann::json good = *FaceItemToJson(Sample());
    auto message = [](const nlohmann::json& j) { return FaceItemFromJson(j).status().message(); };
    EXPECT_EQ(FaceItemFromJson(nlohmann::json::array()).status().code(), StatusCode::kInvalidArgument);
    nlohmann::json j = good;
    j.erase("track_id");
    EXPECT_NE(message(j).find("track_id"), std::string::npos);
    j = good;
    j["box"] = {1, 2, 3};
    EXPECT_NE(message(j).find("box"), std::string::npos);
    j = good;
    j["landmarks"] = nlohmann::json::array();
    EXPECT_NE(message(j).find("landmarks"), std::string::npos);
    j = good;
    j["crop_jpeg"] = "not base64!";
    EXPECT_NE(message(j).find("crop_jpeg"), std::string::npos);
    j = good;
    j["crop_jpeg"] = "AAAA";  // valid base64, not an image
    EXPECT_NE(message(j).find("crop_jpeg"), std::string::npos);
    j = good;
    j.erase("crop_jpeg");
    EXPECT_NE(message(j).find("crop_jpeg"), std::string::npos);  // embed needs a crop
    j = good;
    j["quality"] = "high";
    EXPECT_NE(message(j).find("quality"), std::string::npos);
}

TEST(FaceItem, IntegerFieldsRefuseFractionsAndHugeNumbers) {
    // Found by fg_fuzz_face_item: {"v": 1.4e75} converted a double to int with undefined
    // behaviour (UBSan). Integer fields now take integers only.
    const nlohmann::json good = *FaceItemToJson(Sample());
    for (const char* field : {"v", "track_id", "frame_index", "stream_ms", "capture_unix_ms"}) {
        SCOPED_TRACE(field);
        for (double bad : {1.4e75, 1.5, -1e300}) {
            nlohmann::json j = good;
            j[field] = bad;
            auto item = FaceItemFromJson(j);
            ASSERT_FALSE(item.ok());
            EXPECT_NE(item.status().message().find(field), std::string::npos) << item.status().message();
        }
    }
}

TEST(FaceItem, NumbersBeyondAFloatAreRefused) {
    // Found by fg_fuzz_face_item: 1e300 (or 1e999 in the text) reads as an infinite float, which
    // was accepted, could not be written back (JSON has no inf) and would poison alignment.
    const nlohmann::json good = *FaceItemToJson(Sample());
    for (const char* field : {"landmarks", "detection_score", "quality", "liveness"}) {
        SCOPED_TRACE(field);
        nlohmann::json j = good;
        if (std::string(field) == "landmarks") {
            j["landmarks"][2][1] = 1e300;
        } else if (std::string(field) == "liveness") {
            j["liveness"]["score"] = -1e300;
        } else {
            j[field] = 1e300;
        }
        auto item = FaceItemFromJson(j);
        ASSERT_FALSE(item.ok());
        EXPECT_EQ(item.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(item.status().message().find(field), std::string::npos) << item.status().message();
    }
}

}  // namespace
}  // namespace fg::pipeline
