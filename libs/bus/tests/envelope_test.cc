// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/envelope.h"

#include <string>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "fg/bus/bus.h"
#include "fg/bus/messages.h"
#include "fg/gallery/crypto.h"

namespace fg::bus {
namespace {

gallery::KeyRing Keys(char fill) {
    auto key = gallery::ParseKey(std::string(64, fill));
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    return gallery::KeyRing(*key);
}

Envelope Sample() {
    RecognitionResult r{.item_id = "cam1/0/7/42", .stream_id = "cam1", .track_id = 7, .frame_index = 42,
                        .capture_unix_ms = 1733000000000, .decision = "known", .subject_id = "alice",
                        .score = 0.75f, .worker_id = "w1"};
    auto env = ResultEnvelope(r, "eu-west", "cam1", 1733000000123);
    EXPECT_TRUE(env.ok()) << env.status().ToString();
    return *env;
}

TEST(BusEnvelope, PlainRoundTrip) {
    const Envelope env = Sample();
    auto bytes = EncodeEnvelope(env);
    ASSERT_TRUE(bytes.ok());
    auto back = DecodeEnvelope(*bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->major, kEnvelopeMajor);
    EXPECT_EQ(back->type, MessageType::kResult);
    EXPECT_EQ(back->id, env.id);
    EXPECT_EQ(back->region, "eu-west");
    EXPECT_EQ(back->camera, "cam1");
    EXPECT_EQ(back->sent_unix_ms, 1733000000123);
    auto r = ResultFromEnvelope(*back);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->subject_id, "alice");
    EXPECT_EQ(r->decision, "known");
    EXPECT_FLOAT_EQ(r->score, 0.75f);
    EXPECT_EQ(r->track_id, 7u);
}

TEST(BusEnvelope, SealedPayloadIsEncryptedAndBoundToTheId) {
    const gallery::KeyRing keys = Keys('a');
    const Envelope env = Sample();
    auto bytes = EncodeEnvelope(env, &keys);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(bytes->find("alice"), std::string::npos) << "the payload must not be readable";
    auto back = DecodeEnvelope(*bytes, &keys);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->payload, env.payload);

    // No key: a clear refusal, not a misread.
    auto no_key = DecodeEnvelope(*bytes);
    EXPECT_EQ(no_key.status().code(), StatusCode::kFailedPrecondition);
    // Another key: not in the ring.
    const gallery::KeyRing other = Keys('b');
    EXPECT_EQ(DecodeEnvelope(*bytes, &other).status().code(), StatusCode::kFailedPrecondition);
    // The sealed body moved to another message id fails authentication.
    std::string moved = *bytes;
    moved.replace(moved.find(env.id), env.id.size(), "cam1/0/7/43");
    EXPECT_EQ(DecodeEnvelope(moved, &keys).status().code(), StatusCode::kDataLoss);
}

TEST(BusEnvelope, NewerMajorIsRefusedWhateverElseItHolds) {
    auto newer = DecodeEnvelope(R"({"v":2,"type":"hologram","id":"x","payload":{}})");
    ASSERT_FALSE(newer.ok());
    EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(newer.status().message().find("major version 2"), std::string::npos)
        << newer.status().message();
    // A newer minor is read (additions only), unknown fields ignored.
    auto minor = DecodeEnvelope(
        R"({"v":1,"minor":7,"type":"result","id":"x","payload":{},"future_field":[1,2]})");
    ASSERT_TRUE(minor.ok()) << minor.status().ToString();
    EXPECT_EQ(minor->minor, 7);
}

TEST(BusEnvelope, MalformedInputGetsAClearError) {
    struct Case {
        std::string bytes;
        std::string expect;
    };
    const Case cases[] = {
        {"", "not JSON"},
        {"{", "not JSON"},
        {"[1]", "not a JSON object"},
        {R"({"type":"result","id":"x","payload":{}})", "missing 'v'"},
        {R"({"v":"1","type":"result","id":"x","payload":{}})", "'v' must be an integer"},
        {R"({"v":0,"type":"result","id":"x","payload":{}})", "'v' must be >= 1"},
        {R"({"v":1,"type":"teleport","id":"x","payload":{}})", "unknown message type"},
        {R"({"v":1,"type":"result","payload":{}})", "missing 'id'"},
        {R"({"v":1,"type":"result","id":"","payload":{}})", "empty 'id'"},
        {R"({"v":1,"type":"result","id":"x"})", "exactly one of"},
        {R"({"v":1,"type":"result","id":"x","payload":{},"sealed":{}})", "exactly one of"},
        {R"({"v":1,"type":"result","id":"x","sealed":[]})", "'sealed' must be an object"},
    };
    for (const Case& c : cases) {
        auto r = DecodeEnvelope(c.bytes);
        ASSERT_FALSE(r.ok()) << c.bytes;
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.bytes;
        EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
            << c.bytes << " -> " << r.status().message();
    }
    EXPECT_EQ(DecodeEnvelope(std::string(kMaxEnvelopeBytes + 1, ' ')).status().code(),
              StatusCode::kInvalidArgument);
}

TEST(BusMessages, FaceItemTravelsWithItsCrop) {
    pipeline::FaceItem item;
    item.item_id = "door-1/3/17/250";
    item.stream_id = "door-1";
    item.track_id = 17;
    item.frame_index = 250;
    item.quality = 0.8f;
    item.aligned = cv::Mat(112, 112, CV_8UC3, cv::Scalar(40, 120, 200));
    auto env = FaceItemEnvelope(item, "hq", "door-1", 99);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    auto bytes = EncodeEnvelope(*env);
    ASSERT_TRUE(bytes.ok());
    auto decoded = DecodeEnvelope(*bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    auto back = FaceItemFromEnvelope(*decoded);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->item_id, item.item_id);
    EXPECT_EQ(back->track_id, 17u);
    EXPECT_EQ(back->aligned.rows, 112);
    // Another message type is refused; so is a face item body from a newer major version.
    EXPECT_FALSE(ResultFromEnvelope(*decoded).ok());
    decoded->payload["v"] = pipeline::kFaceItemVersion + 1;
    EXPECT_FALSE(FaceItemFromEnvelope(*decoded).ok());
    // Route tokens are checked where the message is made.
    EXPECT_EQ(FaceItemEnvelope(item, "hq", "door.1", 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(BusMessages, ResultAndGalleryChangeValidate) {
    RecognitionResult r{.item_id = "x", .decision = "maybe"};
    EXPECT_EQ(ResultEnvelope(r, "eu", "c", 0).status().code(), StatusCode::kInvalidArgument);
    GalleryChange c{.seq = 5, .op = "upsert", .subject_id = "alice"};
    auto env = GalleryChangeEnvelope(c, "eu", 1);
    ASSERT_TRUE(env.ok());
    EXPECT_EQ(env->id, "gallery/5");
    auto back = GalleryChangeFromEnvelope(*env);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->subject_id, "alice");
    EXPECT_FALSE(GalleryChangeEnvelope({.seq = 0, .op = "upsert", .subject_id = "a"}, "eu", 0).ok());
    EXPECT_FALSE(GalleryChangeEnvelope({.seq = 1, .op = "rename", .subject_id = "a"}, "eu", 0).ok());
}

// fg_fuzz_bus_envelope: a result whose capture time was a number beyond int64 converted with
// undefined behaviour; numbers out of a field's range are refused.
TEST(BusMessages, NumbersOutOfRangeAreRefusedNotConverted) {
    RecognitionResult r{.item_id = "cam1/0/7/42", .stream_id = "cam1", .decision = "known", .subject_id = "alice"};
    auto env = ResultEnvelope(r, "eu", "cam1", 1);
    ASSERT_TRUE(env.ok());
    for (const char* bad : {"1.7333e22", "18446744073709551615", "-1e300", "\"1\""}) {
        SCOPED_TRACE(bad);
        Envelope e = *env;
        e.payload["capture_unix_ms"] = nlohmann::json::parse(bad);
        EXPECT_EQ(ResultFromEnvelope(e).status().code(), StatusCode::kInvalidArgument);
    }
}

TEST(BusRoutes, TokensSubjectsAndTopics) {
    EXPECT_TRUE(ValidToken("eu-west_1", "region").ok());
    for (const char* bad : {"", "a.b", "a*", ">", "a b", "ü"}) {
        EXPECT_EQ(ValidToken(bad, "region").code(), StatusCode::kInvalidArgument) << bad;
    }
    EXPECT_FALSE(ValidToken(std::string(65, 'a'), "camera").ok());
    const Route faces{.topic = Topic::kFaces, .region = "eu", .camera = "door-1"};
    EXPECT_EQ(NatsSubject(faces), "fg.faces.eu.door-1");
    EXPECT_EQ(KafkaTopic(faces), "fg.faces.eu");
    const Route results{.topic = Topic::kResults, .region = "eu", .camera = "door-1"};
    EXPECT_EQ(NatsSubject(results), "fg.results.eu.door-1");
    EXPECT_EQ(NatsSubject({.topic = Topic::kGalleryChanges}), "fg.gallery.changes");
    EXPECT_EQ(TopicOf(MessageType::kGalleryChange), Topic::kGalleryChanges);
}

}  // namespace
}  // namespace fg::bus
