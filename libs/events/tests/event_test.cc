// SPDX-License-Identifier: Apache-2.0
#include "fg/events/event.h"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

namespace fg::events {
namespace {

// A small interpreter for the JSON Schema keywords event.schema.json uses (type, const, enum,
// required, properties, additionalProperties, minimum, minLength, pattern, $ref, allOf,
// if/then), so produced events are checked against the schema file itself, not a copy of it.
class MiniSchema {
  public:
    explicit MiniSchema(nlohmann::json root) : root_(std::move(root)) {}

    // Empty string = valid; otherwise the first violation with its path.
    std::string Check(const nlohmann::json& v) const { return Check(root_, v, "$"); }

  private:
    const nlohmann::json& Resolve(const nlohmann::json& s) const {
        if (s.contains("$ref")) {
            const std::string ref = s["$ref"];
            const std::string prefix = "#/$defs/";
            return root_["$defs"][ref.substr(prefix.size())];
        }
        return s;
    }

    static bool HasType(const nlohmann::json& v, const std::string& t) {
        if (t == "object") return v.is_object();
        if (t == "string") return v.is_string();
        if (t == "integer") return v.is_number_integer();
        if (t == "number") return v.is_number();
        if (t == "boolean") return v.is_boolean();
        if (t == "array") return v.is_array();
        return false;
    }

    std::string Check(const nlohmann::json& schema, const nlohmann::json& v,
                      const std::string& path) const {
        const nlohmann::json& s = Resolve(schema);
        if (s.contains("type") && !HasType(v, s["type"])) {
            return path + ": not " + s["type"].get<std::string>();
        }
        if (s.contains("const") && v != s["const"]) {
            return path + ": must be " + s["const"].dump();
        }
        if (s.contains("enum")) {
            bool found = false;
            for (const auto& e : s["enum"]) {
                found = found || e == v;
            }
            if (!found) {
                return path + ": not in enum";
            }
        }
        if (s.contains("minimum") && v.is_number() && v.get<double>() < s["minimum"].get<double>()) {
            return path + ": below minimum";
        }
        if (s.contains("minLength") && v.is_string() &&
            v.get<std::string>().size() < s["minLength"].get<size_t>()) {
            return path + ": too short";
        }
        if (s.contains("pattern") && v.is_string() &&
            !std::regex_search(v.get<std::string>(), std::regex(s["pattern"].get<std::string>()))) {
            return path + ": does not match pattern";
        }
        if (v.is_object()) {
            for (const auto& r : s.value("required", nlohmann::json::array())) {
                if (!v.contains(r.get<std::string>())) {
                    return path + ": missing " + r.get<std::string>();
                }
            }
            const auto props = s.value("properties", nlohmann::json::object());
            for (const auto& [k, sub] : v.items()) {
                if (props.contains(k)) {
                    if (auto e = Check(props[k], sub, path + "." + k); !e.empty()) {
                        return e;
                    }
                } else if (s.contains("additionalProperties") && !s["additionalProperties"]) {
                    return path + ": unexpected " + k;
                }
            }
        }
        for (const auto& part : s.value("allOf", nlohmann::json::array())) {
            if (part.contains("if") && !Check(part["if"], v, path).empty()) {
                continue;  // condition does not hold: "then" does not apply
            }
            if (auto e = Check(part.contains("then") ? part["then"] : part, v, path); !e.empty()) {
                return e;
            }
        }
        return "";
    }

    nlohmann::json root_;
};

MiniSchema LoadSchema() {
    std::ifstream in(FG_EVENT_SCHEMA_PATH);
    EXPECT_TRUE(in.good()) << FG_EVENT_SCHEMA_PATH;
    return MiniSchema(nlohmann::json::parse(in));
}

std::vector<Event> OneOfEachType() {
    std::vector<Event> events;
    auto base = [](Payload p) {
        Event e = MakeEvent("cam-1", std::move(p));
        e.timestamp_ms = 1700000000123;
        e.track_id = 7;
        e.frame_index = 42;
        e.box = Rect2f::FromCorners(10.25f, 20.5f, 110.75f, 140.0f);
        return e;
    };
    events.push_back(base(TrackStarted{.detection_score = 0.91f}));
    events.push_back(base(Recognized{.subject_id = "alice",
                                     .display_name = "Alice Ä.",
                                     .score = 0.8f,
                                     .margin = 0.25f,
                                     .quality = 0.7f,
                                     .faces_used = 3,
                                     .best_shot_jpeg_base64 = "/9j/4AAQ"}));
    events.push_back(base(UnknownFace{.best_score = 0.21f, .quality = 0.6f, .faces_used = 2}));
    events.push_back(base(TrackEnded{.duration_ms = 5230, .frames = 157, .hits = 40,
                                     .subject_id = "alice"}));
    Event state = base(StreamState{.state = "stalled", .message = "no frame for 5 s"});
    state.track_id.reset();
    state.box.reset();
    state.frame_index.reset();
    events.push_back(state);
    events.push_back(base(SpoofDetected{.liveness_score = 0.12f, .threshold = 0.5f}));
    return events;
}

TEST(EventTest, TypeNamesRoundTrip) {
    for (int i = 0; i < 6; ++i) {
        const auto type = static_cast<EventType>(i);
        auto parsed = ParseEventType(EventTypeName(type));
        ASSERT_TRUE(parsed.ok());
        EXPECT_EQ(*parsed, type);
    }
    EXPECT_FALSE(ParseEventType("nope").ok());
    EXPECT_EQ(EventTypeName(EventType::kUnknownFace), "unknown_face");
}

TEST(EventTest, EveryTypeMatchesTheSchemaFile) {
    const MiniSchema schema = LoadSchema();
    std::set<std::string> types;
    for (const Event& e : OneOfEachType()) {
        const nlohmann::json j = ToJson(e);
        SCOPED_TRACE(j.dump());
        EXPECT_EQ(schema.Check(j), "");
        EXPECT_TRUE(ValidateEventJson(j).ok()) << ValidateEventJson(j).ToString();
        types.insert(j["type"]);
    }
    EXPECT_EQ(types.size(), 6u);
}

TEST(EventTest, SchemaAndValidatorRejectTheSameMistakes) {
    const MiniSchema schema = LoadSchema();
    const nlohmann::json good = ToJson(OneOfEachType()[1]);  // recognized
    std::vector<std::pair<std::string, nlohmann::json>> bad;
    auto mutate = [&](const std::string& what, auto fn) {
        nlohmann::json j = good;
        fn(j);
        bad.emplace_back(what, j);
    };
    mutate("no event_id", [](auto& j) { j.erase("event_id"); });
    mutate("wrong version", [](auto& j) { j["schema_version"] = "2"; });
    mutate("unknown type", [](auto& j) { j["type"] = "hello"; });
    mutate("no track id", [](auto& j) { j.erase("track_id"); });
    mutate("track id 0", [](auto& j) { j["track_id"] = 0; });
    mutate("bad timestamp", [](auto& j) { j["timestamp"] = "2023-11-14 22:13:20"; });
    mutate("extra field", [](auto& j) { j["extra"] = 1; });
    mutate("box missing x2", [](auto& j) { j["box"].erase("x2"); });
    mutate("score as string", [](auto& j) { j["data"]["score"] = "0.8"; });
    mutate("no subject", [](auto& j) { j["data"].erase("subject_id"); });
    mutate("payload of another type", [](auto& j) { j["data"] = {{"state", "live"}}; });
    mutate("negative frame", [](auto& j) { j["frame_index"] = -1; });
    for (const auto& [what, j] : bad) {
        EXPECT_NE(schema.Check(j), "") << what;
        EXPECT_FALSE(ValidateEventJson(j).ok()) << what;
    }
}

TEST(EventTest, JsonFormIsStable) {
    const nlohmann::json j = ToJson(OneOfEachType()[1]);
    EXPECT_EQ(j["schema_version"], "1");
    EXPECT_EQ(j["type"], "recognized");
    EXPECT_EQ(j["stream_id"], "cam-1");
    EXPECT_EQ(j["track_id"], 7);
    EXPECT_EQ(j["timestamp"], "2023-11-14T22:13:20.123Z");
    EXPECT_EQ(j["timestamp_ms"], 1700000000123);
    EXPECT_EQ(j["frame_index"], 42);
    EXPECT_EQ(j["box"].dump(), R"({"x1":10.3,"x2":110.8,"y1":20.5,"y2":140.0})");
    EXPECT_EQ(j["data"].dump(),
              R"({"best_shot_jpeg_base64":"/9j/4AAQ","display_name":"Alice Ä.","faces_used":3,)"
              R"("margin":0.25,"quality":0.7,"score":0.8,"subject_id":"alice"})");
    const std::string line = ToJsonLine(OneOfEachType()[1]);
    EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(EventTest, OptionalFieldsAreOmitted) {
    Event e = MakeEvent("s", StreamState{.state = "live"});
    const nlohmann::json j = ToJson(e);
    EXPECT_FALSE(j.contains("track_id"));
    EXPECT_FALSE(j.contains("box"));
    EXPECT_FALSE(j.contains("frame_index"));
    EXPECT_TRUE(ValidateEventJson(j).ok());
    const nlohmann::json r = ToJson(MakeEvent("s", Recognized{.subject_id = "a"}));
    EXPECT_FALSE(r["data"].contains("best_shot_jpeg_base64"));
}

TEST(EventTest, FromJsonRoundTrips) {
    for (const Event& e : OneOfEachType()) {
        auto back = FromJson(ToJson(e));
        ASSERT_TRUE(back.ok()) << back.status().ToString();
        EXPECT_EQ(back->type(), e.type());
        EXPECT_EQ(back->event_id, e.event_id);
        EXPECT_EQ(back->track_id, e.track_id);
        EXPECT_EQ(back->timestamp_ms, e.timestamp_ms);
        EXPECT_EQ(ToJson(*back), ToJson(e));  // equal after rounding
    }
    auto bad = FromJson(nlohmann::json{{"schema_version", "1"}});
    EXPECT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("type"), std::string::npos);
}

TEST(EventTest, Iso8601) {
    EXPECT_EQ(FormatIso8601Utc(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(FormatIso8601Utc(1700000000123), "2023-11-14T22:13:20.123Z");
    EXPECT_EQ(FormatIso8601Utc(-1), "1969-12-31T23:59:59.999Z");
    EXPECT_EQ(FormatIso8601Utc(951782400000), "2000-02-29T00:00:00.000Z");
}

TEST(EventTest, Base64MatchesRfc4648Vectors) {
    auto enc = [](std::string s) {
        return Base64Encode({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
    };
    EXPECT_EQ(enc(""), "");
    EXPECT_EQ(enc("f"), "Zg==");
    EXPECT_EQ(enc("fo"), "Zm8=");
    EXPECT_EQ(enc("foo"), "Zm9v");
    EXPECT_EQ(enc("foob"), "Zm9vYg==");
    EXPECT_EQ(enc("fooba"), "Zm9vYmE=");
    EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
    const std::vector<std::uint8_t> high = {0xFF, 0xD8, 0xFF};
    EXPECT_EQ(Base64Encode(high), "/9j/");
}

TEST(EventTest, EventIdsAreUniqueUuidV4AcrossThreads) {
    const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
    std::mutex mu;
    std::set<std::string> ids;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            std::vector<std::string> local;
            for (int i = 0; i < 5000; ++i) {
                local.push_back(NewEventId());
            }
            std::lock_guard lock(mu);
            ids.insert(local.begin(), local.end());
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(ids.size(), 20000u);
    for (const auto& id : ids) {
        ASSERT_TRUE(std::regex_match(id, uuid)) << id;
    }
}

TEST(EventTest, InvalidUtf8DoesNotThrow) {
    Event e = MakeEvent("cam", Recognized{.subject_id = "x", .display_name = "bad\xff"});
    e.track_id = 1;
    std::string line;
    EXPECT_NO_THROW(line = ToJsonLine(e));
    EXPECT_NE(line.find("bad"), std::string::npos);
}

}  // namespace
}  // namespace fg::events
