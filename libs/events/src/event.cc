// SPDX-License-Identifier: Apache-2.0
#include "fg/events/event.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <limits>
#include <random>
#include <thread>

#include <openssl/evp.h>

namespace fg::events {
namespace {

constexpr std::array<std::string_view, 6> kTypeNames = {
    "track_started", "recognized", "unknown_face", "track_ended", "stream_state", "spoof_detected"};

// Floats are stored in JSON as doubles; rounding keeps "0.8" from becoming 0.800000011920929.
double Round(float v, double scale) { return std::round(static_cast<double>(v) * scale) / scale; }
double Score(float v) { return Round(v, 1e4); }
double Pixel(float v) { return Round(v, 1e1); }

nlohmann::json PayloadJson(const Payload& payload) {
    using nlohmann::json;
    return std::visit(
        [](const auto& p) -> json {
            using T = std::decay_t<decltype(p)>;
            json j = json::object();
            if constexpr (std::is_same_v<T, TrackStarted>) {
                j["detection_score"] = Score(p.detection_score);
            } else if constexpr (std::is_same_v<T, Recognized>) {
                j["subject_id"] = p.subject_id;
                j["display_name"] = p.display_name;
                j["score"] = Score(p.score);
                j["margin"] = Score(p.margin);
                j["quality"] = Score(p.quality);
                j["faces_used"] = p.faces_used;
                if (!p.best_shot_jpeg_base64.empty()) {
                    j["best_shot_jpeg_base64"] = p.best_shot_jpeg_base64;
                }
            } else if constexpr (std::is_same_v<T, UnknownFace>) {
                j["best_score"] = Score(p.best_score);
                j["quality"] = Score(p.quality);
                j["faces_used"] = p.faces_used;
                if (!p.best_shot_jpeg_base64.empty()) {
                    j["best_shot_jpeg_base64"] = p.best_shot_jpeg_base64;
                }
            } else if constexpr (std::is_same_v<T, TrackEnded>) {
                j["duration_ms"] = p.duration_ms;
                j["frames"] = p.frames;
                j["hits"] = p.hits;
                if (!p.subject_id.empty()) {
                    j["subject_id"] = p.subject_id;
                }
            } else if constexpr (std::is_same_v<T, StreamState>) {
                j["state"] = p.state;
                j["message"] = p.message;
            } else if constexpr (std::is_same_v<T, SpoofDetected>) {
                j["liveness_score"] = Score(p.liveness_score);
                j["threshold"] = Score(p.threshold);
            }
            return j;
        },
        payload);
}

// Small typed readers for FromJson/ValidateEventJson; errors name the JSON path.
Status Missing(const std::string& path) { return InvalidArgument("event: missing field " + path); }
Status WrongType(const std::string& path, const char* want) {
    return InvalidArgument("event: field " + path + " must be " + want);
}

Status GetString(const nlohmann::json& j, const char* key, const std::string& path,
                 std::string& out, bool required = true) {
    auto it = j.find(key);
    if (it == j.end()) {
        return required ? Missing(path + key) : Status::Ok();
    }
    if (!it->is_string()) {
        return WrongType(path + key, "a string");
    }
    out = it->get<std::string>();
    return Status::Ok();
}

Status GetNumber(const nlohmann::json& j, const char* key, const std::string& path, float& out,
                 bool required = true) {
    auto it = j.find(key);
    if (it == j.end()) {
        return required ? Missing(path + key) : Status::Ok();
    }
    if (!it->is_number()) {
        return WrongType(path + key, "a number");
    }
    out = it->get<float>();
    return Status::Ok();
}

template <typename Int>
Status GetInt(const nlohmann::json& j, const char* key, const std::string& path, Int& out,
              bool required = true, bool non_negative = false) {
    auto it = j.find(key);
    if (it == j.end()) {
        return required ? Missing(path + key) : Status::Ok();
    }
    if (!it->is_number_integer() || (non_negative && it->get<std::int64_t>() < 0)) {
        return WrongType(path + key, non_negative ? "a non-negative integer" : "an integer");
    }
    out = it->get<Int>();
    return Status::Ok();
}

Result<Payload> PayloadFromJson(EventType type, const nlohmann::json& d) {
    const std::string p = "data.";
    switch (type) {
        case EventType::kTrackStarted: {
            TrackStarted x;
            FG_RETURN_IF_ERROR(GetNumber(d, "detection_score", p, x.detection_score));
            return Payload(x);
        }
        case EventType::kRecognized: {
            Recognized x;
            FG_RETURN_IF_ERROR(GetString(d, "subject_id", p, x.subject_id));
            FG_RETURN_IF_ERROR(GetString(d, "display_name", p, x.display_name));
            FG_RETURN_IF_ERROR(GetNumber(d, "score", p, x.score));
            FG_RETURN_IF_ERROR(GetNumber(d, "margin", p, x.margin));
            FG_RETURN_IF_ERROR(GetNumber(d, "quality", p, x.quality, false));
            FG_RETURN_IF_ERROR(GetInt(d, "faces_used", p, x.faces_used, false, true));
            FG_RETURN_IF_ERROR(
                GetString(d, "best_shot_jpeg_base64", p, x.best_shot_jpeg_base64, false));
            return Payload(std::move(x));
        }
        case EventType::kUnknownFace: {
            UnknownFace x;
            FG_RETURN_IF_ERROR(GetNumber(d, "best_score", p, x.best_score));
            FG_RETURN_IF_ERROR(GetNumber(d, "quality", p, x.quality, false));
            FG_RETURN_IF_ERROR(GetInt(d, "faces_used", p, x.faces_used, false, true));
            FG_RETURN_IF_ERROR(
                GetString(d, "best_shot_jpeg_base64", p, x.best_shot_jpeg_base64, false));
            return Payload(std::move(x));
        }
        case EventType::kTrackEnded: {
            TrackEnded x;
            FG_RETURN_IF_ERROR(GetInt(d, "duration_ms", p, x.duration_ms, true, true));
            FG_RETURN_IF_ERROR(GetInt(d, "frames", p, x.frames, true, true));
            FG_RETURN_IF_ERROR(GetInt(d, "hits", p, x.hits, false, true));
            FG_RETURN_IF_ERROR(GetString(d, "subject_id", p, x.subject_id, false));
            return Payload(std::move(x));
        }
        case EventType::kStreamState: {
            StreamState x;
            FG_RETURN_IF_ERROR(GetString(d, "state", p, x.state));
            FG_RETURN_IF_ERROR(GetString(d, "message", p, x.message, false));
            if (x.state.empty()) {
                return InvalidArgument("event: field data.state must not be empty");
            }
            return Payload(std::move(x));
        }
        case EventType::kSpoofDetected: {
            SpoofDetected x;
            FG_RETURN_IF_ERROR(GetNumber(d, "liveness_score", p, x.liveness_score));
            FG_RETURN_IF_ERROR(GetNumber(d, "threshold", p, x.threshold, false));
            return Payload(x);
        }
    }
    return InvalidArgument("event: unknown type");
}

bool PayloadFieldKnown(EventType type, std::string_view key) {
    auto in = [&](std::initializer_list<std::string_view> keys) {
        return std::find(keys.begin(), keys.end(), key) != keys.end();
    };
    switch (type) {
        case EventType::kTrackStarted:
            return in({"detection_score"});
        case EventType::kRecognized:
            return in({"subject_id", "display_name", "score", "margin", "quality", "faces_used",
                       "best_shot_jpeg_base64"});
        case EventType::kUnknownFace:
            return in({"best_score", "quality", "faces_used", "best_shot_jpeg_base64"});
        case EventType::kTrackEnded:
            return in({"duration_ms", "frames", "hits", "subject_id"});
        case EventType::kStreamState:
            return in({"state", "message"});
        case EventType::kSpoofDetected:
            return in({"liveness_score", "threshold"});
    }
    return false;
}

// "YYYY-MM-DDThh:mm:ss.mmmZ" exactly (what FormatIso8601Utc writes).
bool LooksLikeIso8601Utc(const std::string& s) {
    static constexpr std::string_view kPattern = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (s.size() != kPattern.size()) {
        return false;
    }
    for (size_t i = 0; i < s.size(); ++i) {
        const bool ok = kPattern[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == kPattern[i];
        if (!ok) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string_view EventTypeName(EventType type) {
    const auto i = static_cast<size_t>(type);
    return i < kTypeNames.size() ? kTypeNames[i] : "unknown";
}

Result<EventType> ParseEventType(std::string_view name) {
    for (size_t i = 0; i < kTypeNames.size(); ++i) {
        if (kTypeNames[i] == name) {
            return static_cast<EventType>(i);
        }
    }
    return InvalidArgument("event: unknown type '" + std::string(name) + "'");
}

std::string NewEventId() {
    // One generator per thread: no lock on the hot path; seeded from the OS, the thread and time
    // so two threads (or two processes) never share a sequence.
    thread_local std::mt19937_64 rng([] {
        std::random_device rd;
        std::seed_seq seq{static_cast<std::uint64_t>(rd()), static_cast<std::uint64_t>(rd()),
                          static_cast<std::uint64_t>(
                              std::hash<std::thread::id>{}(std::this_thread::get_id())),
                          static_cast<std::uint64_t>(
                              std::chrono::high_resolution_clock::now().time_since_epoch().count())};
        return std::mt19937_64(seq);
    }());
    std::uint64_t hi = rng();
    std::uint64_t lo = rng();
    hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
    lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10xx
    char buf[48];
    std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                  static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                  static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
    return buf;
}

std::int64_t NowUnixMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string FormatIso8601Utc(std::int64_t unix_ms) {
    std::int64_t secs = unix_ms / 1000;
    std::int64_t ms = unix_ms % 1000;
    if (ms < 0) {  // floor for times before 1970
        ms += 1000;
        secs -= 1;
    }
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];  // room for any int fields, keeps -Wformat-truncation quiet
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

std::string Base64Encode(std::span<const std::uint8_t> bytes) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    const size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t v = bytes[i] << 16;
        if (rest == 2) {
            v |= bytes[i + 1] << 8;
        }
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

Result<std::vector<std::uint8_t>> Base64Decode(std::string_view text) {
    // OpenSSL's decoder (strict alphabet, no whitespace); it counts padding as zero bytes.
    if (text.size() % 4 != 0) return InvalidArgument("base64: length is not a multiple of 4");
    if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        return InvalidArgument("base64: too long");
    }
    std::vector<std::uint8_t> out(text.size() / 4 * 3);
    const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0) return InvalidArgument("base64: not valid base64");
    std::size_t pad = 0;
    if (!text.empty() && text.back() == '=') ++pad;
    if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

Event MakeEvent(std::string stream_id, Payload payload) {
    Event e;
    e.event_id = NewEventId();
    e.stream_id = std::move(stream_id);
    e.timestamp_ms = NowUnixMs();
    e.payload = std::move(payload);
    return e;
}

nlohmann::json ToJson(const Event& event) {
    nlohmann::json j = nlohmann::json::object();
    j["schema_version"] = kSchemaVersion;
    j["type"] = EventTypeName(event.type());
    j["event_id"] = event.event_id;
    j["stream_id"] = event.stream_id;
    if (event.track_id) {
        j["track_id"] = *event.track_id;
    }
    j["timestamp"] = FormatIso8601Utc(event.timestamp_ms);
    j["timestamp_ms"] = event.timestamp_ms;
    if (event.frame_index) {
        j["frame_index"] = *event.frame_index;
    }
    if (event.box) {
        // The wire format keeps corners (schema v1), the API the one box type (x, y, w, h).
        j["box"] = {{"x1", Pixel(event.box->x)},
                    {"y1", Pixel(event.box->y)},
                    {"x2", Pixel(event.box->right())},
                    {"y2", Pixel(event.box->bottom())}};
    }
    j["data"] = PayloadJson(event.payload);
    return j;
}

std::string ToJsonLine(const Event& event) {
    // Replace invalid UTF-8 (e.g. a display name from a bad import) instead of throwing.
    return ToJson(event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Event> FromJson(const nlohmann::json& json) {
    FG_RETURN_IF_ERROR(ValidateEventJson(json));
    Event e;
    FG_ASSIGN_OR_RETURN(const EventType type, ParseEventType(json["type"].get<std::string>()));
    e.event_id = json["event_id"].get<std::string>();
    e.stream_id = json["stream_id"].get<std::string>();
    if (json.contains("track_id")) {
        e.track_id = json["track_id"].get<std::uint64_t>();
    }
    e.timestamp_ms = json["timestamp_ms"].get<std::int64_t>();
    if (json.contains("frame_index")) {
        e.frame_index = json["frame_index"].get<std::int64_t>();
    }
    if (json.contains("box")) {
        const auto& b = json["box"];
        e.box = Rect2f::FromCorners(b["x1"].get<float>(), b["y1"].get<float>(),
                                    b["x2"].get<float>(), b["y2"].get<float>());
    }
    FG_ASSIGN_OR_RETURN(e.payload, PayloadFromJson(type, json["data"]));
    return e;
}

Status ValidateEventJson(const nlohmann::json& json) {
    if (!json.is_object()) {
        return InvalidArgument("event: must be a JSON object");
    }
    static const std::array<std::string_view, 9> kKnown = {
        "schema_version", "type", "event_id", "stream_id", "track_id",
        "timestamp",      "timestamp_ms", "frame_index", "box"};
    for (const auto& [key, value] : json.items()) {
        if (key != "data" && std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
            return InvalidArgument("event: unknown field " + key);
        }
    }
    std::string s;
    FG_RETURN_IF_ERROR(GetString(json, "schema_version", "", s));
    if (s != kSchemaVersion) {
        return InvalidArgument("event: schema_version must be \"" + std::string(kSchemaVersion) +
                               "\", got \"" + s + "\"");
    }
    FG_RETURN_IF_ERROR(GetString(json, "type", "", s));
    FG_ASSIGN_OR_RETURN(const EventType type, ParseEventType(s));
    FG_RETURN_IF_ERROR(GetString(json, "event_id", "", s));
    if (s.empty()) {
        return InvalidArgument("event: field event_id must not be empty");
    }
    FG_RETURN_IF_ERROR(GetString(json, "stream_id", "", s));
    std::uint64_t track_id = 0;
    FG_RETURN_IF_ERROR(GetInt(json, "track_id", "", track_id, false, true));
    if (json.contains("track_id") && track_id == 0) {
        return InvalidArgument("event: field track_id must be >= 1");
    }
    const bool needs_track = type != EventType::kStreamState;
    if (needs_track && !json.contains("track_id")) {
        return Missing("track_id");
    }
    FG_RETURN_IF_ERROR(GetString(json, "timestamp", "", s));
    if (!LooksLikeIso8601Utc(s)) {
        return InvalidArgument("event: field timestamp must be YYYY-MM-DDThh:mm:ss.mmmZ, got " + s);
    }
    std::int64_t ms = 0;
    FG_RETURN_IF_ERROR(GetInt(json, "timestamp_ms", "", ms));
    if (FormatIso8601Utc(ms) != s) {
        return InvalidArgument("event: timestamp and timestamp_ms disagree");
    }
    std::int64_t frame = 0;
    FG_RETURN_IF_ERROR(GetInt(json, "frame_index", "", frame, false, true));
    if (auto it = json.find("box"); it != json.end()) {
        if (!it->is_object()) {
            return WrongType("box", "an object");
        }
        float v = 0;
        for (const char* k : {"x1", "y1", "x2", "y2"}) {
            FG_RETURN_IF_ERROR(GetNumber(*it, k, "box.", v));
        }
    }
    auto data = json.find("data");
    if (data == json.end()) {
        return Missing("data");
    }
    if (!data->is_object()) {
        return WrongType("data", "an object");
    }
    for (const auto& [key, value] : data->items()) {
        if (!PayloadFieldKnown(type, key)) {
            return InvalidArgument("event: unknown field data." + key + " for type " +
                                   std::string(EventTypeName(type)));
        }
    }
    return PayloadFromJson(type, *data).status();
}

}  // namespace fg::events
