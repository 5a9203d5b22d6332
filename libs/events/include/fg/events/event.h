// SPDX-License-Identifier: Apache-2.0
// Stream events (track_started, recognized, unknown_face, track_ended, stream_state,
// spoof_detected) and their versioned JSON form. Schema: libs/events/event.schema.json.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/core/geometry.h"

namespace fg::events {

/// Bumped on any incompatible change of the JSON form (see README.md, "Versioning").
inline constexpr std::string_view kSchemaVersion = "1";

enum class EventType {
    kTrackStarted,
    kRecognized,
    kUnknownFace,
    kTrackEnded,
    kStreamState,
    kSpoofDetected,
};

/// "track_started", "recognized", "unknown_face", "track_ended", "stream_state",
/// "spoof_detected".
std::string_view EventTypeName(EventType type);
Result<EventType> ParseEventType(std::string_view name);

/// A track was confirmed by the tracker.
struct TrackStarted {
    float detection_score = 0;  ///< score of the detection that confirmed it
};

/// A track was identified as an enrolled subject.
struct Recognized {
    std::string subject_id;
    std::string display_name;
    float score = 0;    ///< cosine similarity to the subject
    float margin = 0;   ///< score minus the best other subject's score
    float quality = -1;  ///< quality of the fused faces, 0..1; -1 when unknown
    int faces_used = 0;  ///< embeddings fused for this decision
    std::string best_shot_jpeg_base64;  ///< optional crop; empty = omitted from JSON
};

/// A track was confidently decided not to be anyone enrolled.
struct UnknownFace {
    float best_score = 0;  ///< score of the closest subject (below the threshold)
    float quality = -1;
    int faces_used = 0;
    std::string best_shot_jpeg_base64;  ///< optional crop; empty = omitted from JSON
};

/// A started track was removed by the tracker.
struct TrackEnded {
    std::int64_t duration_ms = 0;  ///< first to last frame of the track, stream time
    std::int64_t frames = 0;       ///< frames the track lived
    std::int64_t hits = 0;         ///< frames with a matched detection
    std::string subject_id;        ///< final identity; empty = unknown or never decided
};

/// A source changed state ("connecting", "live", "stalled", "failed", "stopped", ...).
struct StreamState {
    std::string state;
    std::string message;
};

/// The liveness check judged a track's face a presentation attack.
struct SpoofDetected {
    float liveness_score = 0;  ///< 0 = spoof .. 1 = live
    float threshold = 0;
};

/// The type-specific part; the alternative determines Event::type().
using Payload =
    std::variant<TrackStarted, Recognized, UnknownFace, TrackEnded, StreamState, SpoofDetected>;

/// One event. Common fields plus a payload. Build with MakeEvent() to get a fresh id and the
/// current time, then set the rest.
struct Event {
    std::string event_id;   ///< unique (random UUID v4 from NewEventId())
    std::string stream_id;  ///< camera/stream name from the config
    std::optional<std::uint64_t> track_id;  ///< tracker id (unique per stream); none for stream_state
    std::int64_t timestamp_ms = 0;  ///< Unix epoch milliseconds, UTC (frame arrival time)
    std::optional<std::int64_t> frame_index;  ///< frame number in the stream, when relevant
    /// Face box in pixels of that frame, when relevant. The JSON form carries its corners
    /// {x1, y1, x2, y2} (x2 = x + width, y2 = y + height).
    std::optional<Rect2f> box;
    Payload payload;

    EventType type() const { return static_cast<EventType>(payload.index()); }
};

/// A random UUID v4 string ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"). Thread-safe.
std::string NewEventId();
/// Current wall-clock time in Unix epoch milliseconds.
std::int64_t NowUnixMs();
/// "2026-11-22T17:06:01.123Z" for the given Unix epoch milliseconds.
std::string FormatIso8601Utc(std::int64_t unix_ms);
/// Standard base64 (RFC 4648, with padding), e.g. for best-shot JPEG bytes.
std::string Base64Encode(std::span<const std::uint8_t> bytes);
/// The inverse of Base64Encode; InvalidArgument for text that is not padded standard base64.
Result<std::vector<std::uint8_t>> Base64Decode(std::string_view text);

/// An event with a new id, timestamp NowUnixMs() and the given stream and payload.
Event MakeEvent(std::string stream_id, Payload payload);

/// The versioned JSON form (documented in README.md; schema in event.schema.json):
/// {"schema_version":"1","type":..,"event_id":..,"stream_id":..,"track_id":..,
///  "timestamp":"…Z","timestamp_ms":..,"frame_index":..,"box":{..},"<type>":{payload}}.
/// Optional fields that are unset are omitted.
nlohmann::json ToJson(const Event& event);
/// ToJson(event).dump() on one line (no trailing newline).
std::string ToJsonLine(const Event& event);
/// Parses the JSON form back (for consumers and tests); errors name the offending field.
Result<Event> FromJson(const nlohmann::json& json);

/// Checks `json` against the v1 schema's rules (required fields, types, enums, payload matches
/// type). Mirrors event.schema.json; used by tests and available to consumers.
Status ValidateEventJson(const nlohmann::json& json);

}  // namespace fg::events
