// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/messages.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "fg/bus/bus.h"

namespace fg::bus {
namespace {

/// The header fields every message body shares (the body is set by the caller).
Envelope Header(MessageType type, std::string id, std::string region, std::string camera,
                std::int64_t sent_unix_ms) {
    Envelope env;
    env.type = type;
    env.id = std::move(id);
    env.region = std::move(region);
    env.camera = std::move(camera);
    env.sent_unix_ms = sent_unix_ms;
    return env;
}

using Json = nlohmann::json;

/// The field `name` of `j` as T, or InvalidArgument naming the message and the field.
template <typename T>
Status Take(const Json& j, const char* what, const char* name, T& out) {
    if (!j.is_object()) return InvalidArgument(std::string(what) + ": payload is not an object");
    const auto it = j.find(name);
    if (it == j.end()) return InvalidArgument(std::string(what) + ": missing '" + name + "'");
    // Untrusted bytes: a number out of T's range must be refused before get<T>() converts it
    // (undefined behaviour for a double beyond an integer type; fg_fuzz_bus_envelope).
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        const bool fits = it->is_number_unsigned()
                              ? it->template get<std::uint64_t>() <=
                                    static_cast<std::uint64_t>(std::numeric_limits<T>::max())
                              : it->is_number_integer() &&
                                    it->template get<std::int64_t>() >= std::numeric_limits<T>::min() &&
                                    it->template get<std::int64_t>() <= std::numeric_limits<T>::max();
        if (!fits) return InvalidArgument(std::string(what) + ": '" + name + "' must be an integer in range");
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!it->is_number() || !std::isfinite(it->template get<double>()) ||
            std::abs(it->template get<double>()) > std::numeric_limits<T>::max()) {
            return InvalidArgument(std::string(what) + ": '" + name + "' must be a finite number");
        }
    }
    try {
        out = it->get<T>();
    } catch (const Json::exception&) {
        return InvalidArgument(std::string(what) + ": '" + name + "' has the wrong type");
    }
    return Status::Ok();
}

Status ExpectType(const Envelope& env, MessageType want) {
    if (env.type == want) return Status::Ok();
    return InvalidArgument("bus message: expected " + std::string(MessageTypeName(want)) + ", got " +
                           std::string(MessageTypeName(env.type)));
}

Status ValidDecision(const std::string& d) {
    if (d == "known" || d == "unknown" || d == "spoof") return Status::Ok();
    return InvalidArgument("result: 'decision' must be known, unknown or spoof, not '" +
                           d.substr(0, 32) + "'");
}

}  // namespace

Result<Envelope> FaceItemEnvelope(const pipeline::FaceItem& item, std::string region,
                                  std::string camera, std::int64_t sent_unix_ms) {
    if (item.item_id.empty()) return InvalidArgument("face item: empty item_id");
    FG_RETURN_IF_ERROR(ValidToken(region, "region"));
    FG_RETURN_IF_ERROR(ValidToken(camera, "camera"));
    Envelope env = Header(MessageType::kFaceItem, item.item_id, std::move(region), std::move(camera), sent_unix_ms);
    FG_ASSIGN_OR_RETURN(env.payload, pipeline::FaceItemToJson(item));
    return env;
}

Result<pipeline::FaceItem> FaceItemFromEnvelope(const Envelope& env) {
    FG_RETURN_IF_ERROR(ExpectType(env, MessageType::kFaceItem));
    if (!env.payload.is_object()) return InvalidArgument("face item: payload is not an object");
    FG_ASSIGN_OR_RETURN(pipeline::FaceItem item, pipeline::FaceItemFromJson(env.payload));
    if (item.item_id != env.id) {
        return InvalidArgument("face item: item_id differs from the envelope id");
    }
    return item;
}

Result<Envelope> ResultEnvelope(const RecognitionResult& r, std::string region, std::string camera,
                                std::int64_t sent_unix_ms) {
    if (r.item_id.empty()) return InvalidArgument("result: empty item_id");
    FG_RETURN_IF_ERROR(ValidDecision(r.decision));
    FG_RETURN_IF_ERROR(ValidToken(region, "region"));
    FG_RETURN_IF_ERROR(ValidToken(camera, "camera"));
    Envelope env = Header(MessageType::kResult, r.item_id, std::move(region), std::move(camera), sent_unix_ms);
    env.payload = {{"v", 1},
                   {"item_id", r.item_id},
                   {"stream_id", r.stream_id},
                   {"track_id", r.track_id},
                   {"frame_index", r.frame_index},
                   {"capture_unix_ms", r.capture_unix_ms},
                   {"decision", r.decision},
                   {"subject_id", r.subject_id},
                   {"score", r.score},
                   {"worker_id", r.worker_id}};
    return env;
}

Result<RecognitionResult> ResultFromEnvelope(const Envelope& env) {
    FG_RETURN_IF_ERROR(ExpectType(env, MessageType::kResult));
    const Json& j = env.payload;
    int v = 0;
    FG_RETURN_IF_ERROR(Take(j, "result", "v", v));
    if (v > 1) return FailedPrecondition("result: version " + std::to_string(v) + " is newer than 1");
    RecognitionResult r;
    FG_RETURN_IF_ERROR(Take(j, "result", "item_id", r.item_id));
    FG_RETURN_IF_ERROR(Take(j, "result", "stream_id", r.stream_id));
    FG_RETURN_IF_ERROR(Take(j, "result", "track_id", r.track_id));
    FG_RETURN_IF_ERROR(Take(j, "result", "frame_index", r.frame_index));
    FG_RETURN_IF_ERROR(Take(j, "result", "capture_unix_ms", r.capture_unix_ms));
    FG_RETURN_IF_ERROR(Take(j, "result", "decision", r.decision));
    FG_RETURN_IF_ERROR(ValidDecision(r.decision));
    FG_RETURN_IF_ERROR(Take(j, "result", "subject_id", r.subject_id));
    FG_RETURN_IF_ERROR(Take(j, "result", "score", r.score));
    FG_RETURN_IF_ERROR(Take(j, "result", "worker_id", r.worker_id));
    if (r.item_id != env.id) return InvalidArgument("result: item_id differs from the envelope id");
    return r;
}

Result<Envelope> GalleryChangeEnvelope(const GalleryChange& c, std::string region,
                                       std::int64_t sent_unix_ms) {
    if (c.seq == 0) return InvalidArgument("gallery change: 'seq' must be > 0");
    if (c.op != "upsert" && c.op != "delete") {
        return InvalidArgument("gallery change: 'op' must be upsert or delete");
    }
    if (c.subject_id.empty()) return InvalidArgument("gallery change: empty subject_id");
    FG_RETURN_IF_ERROR(ValidToken(region, "region"));
    Envelope env = Header(MessageType::kGalleryChange, "gallery/" + std::to_string(c.seq), std::move(region), "",
                          sent_unix_ms);
    env.payload = {{"v", 1}, {"seq", c.seq}, {"op", c.op}, {"subject_id", c.subject_id}};
    return env;
}

Result<GalleryChange> GalleryChangeFromEnvelope(const Envelope& env) {
    FG_RETURN_IF_ERROR(ExpectType(env, MessageType::kGalleryChange));
    const Json& j = env.payload;
    int v = 0;
    FG_RETURN_IF_ERROR(Take(j, "gallery change", "v", v));
    if (v > 1) {
        return FailedPrecondition("gallery change: version " + std::to_string(v) + " is newer than 1");
    }
    GalleryChange c;
    FG_RETURN_IF_ERROR(Take(j, "gallery change", "seq", c.seq));
    FG_RETURN_IF_ERROR(Take(j, "gallery change", "op", c.op));
    FG_RETURN_IF_ERROR(Take(j, "gallery change", "subject_id", c.subject_id));
    if (c.seq == 0 || (c.op != "upsert" && c.op != "delete") || c.subject_id.empty()) {
        return InvalidArgument("gallery change: bad seq, op or subject_id");
    }
    return c;
}

}  // namespace fg::bus
