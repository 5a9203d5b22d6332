// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/envelope.h"

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "fg/events/event.h"
#include "fg/gallery/crypto.h"

namespace fg::bus {
namespace {

using Json = nlohmann::json;

std::string Aad(MessageType type, std::string_view id) {
    std::string aad = "fg.bus|";
    aad += MessageTypeName(type);
    aad += '|';
    aad += id;
    return aad;
}

Status Missing(const char* name) {
    return InvalidArgument(std::string("bus envelope: missing '") + name + "'");
}
Status WrongType(const char* name, const char* want) {
    return InvalidArgument(std::string("bus envelope: '") + name + "' must be " + want);
}

Status TakeString(const Json& j, const char* name, std::string& out, bool required) {
    const auto it = j.find(name);
    if (it == j.end()) return required ? Missing(name) : Status::Ok();
    if (!it->is_string()) return WrongType(name, "a string");
    out = it->get<std::string>();
    return Status::Ok();
}

Status TakeInt(const Json& j, const char* name, std::int64_t& out, bool required) {
    const auto it = j.find(name);
    if (it == j.end()) return required ? Missing(name) : Status::Ok();
    if (!it->is_number_integer()) return WrongType(name, "an integer");
    if (it->is_number_unsigned() &&
        it->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return WrongType(name, "an integer below 2^63");
    }
    out = it->get<std::int64_t>();
    return Status::Ok();
}

}  // namespace

std::string_view MessageTypeName(MessageType type) {
    switch (type) {
        case MessageType::kFaceItem: return "face_item";
        case MessageType::kResult: return "result";
        case MessageType::kGalleryChange: return "gallery_change";
    }
    return "unknown";
}

Result<MessageType> ParseMessageType(std::string_view name) {
    for (MessageType t : {MessageType::kFaceItem, MessageType::kResult, MessageType::kGalleryChange}) {
        if (MessageTypeName(t) == name) return t;
    }
    return InvalidArgument("bus envelope: unknown message type '" + std::string(name.substr(0, 64)) +
                           "'");
}

Result<std::string> EncodeEnvelope(const Envelope& env, const gallery::KeyRing* keys) {
    if (env.id.empty()) return InvalidArgument("bus envelope: empty id");
    Json j = {{"v", kEnvelopeMajor},
              {"minor", kEnvelopeMinor},
              {"type", std::string(MessageTypeName(env.type))},
              {"id", env.id},
              {"region", env.region},
              {"camera", env.camera},
              {"sent_unix_ms", env.sent_unix_ms}};
    if (keys == nullptr) {
        j["payload"] = env.payload;
    } else {
        const std::string plain = env.payload.dump();
        FG_ASSIGN_OR_RETURN(
            std::vector<std::uint8_t> sealed,
            keys->SealBytes(std::span(reinterpret_cast<const std::uint8_t*>(plain.data()), plain.size()),
                            Aad(env.type, env.id)));
        j["sealed"] = {{"key_id", keys->current_id()}, {"data", events::Base64Encode(sealed)}};
    }
    return j.dump();
}

Result<Envelope> DecodeEnvelope(std::string_view bytes, const gallery::KeyRing* keys) {
    if (bytes.size() > kMaxEnvelopeBytes) {
        return InvalidArgument("bus envelope: " + std::to_string(bytes.size()) +
                               " bytes, more than the limit of " + std::to_string(kMaxEnvelopeBytes));
    }
    const Json j = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return InvalidArgument("bus envelope: not JSON");
    if (!j.is_object()) return InvalidArgument("bus envelope: not a JSON object");

    Envelope env;
    std::int64_t major = 0;
    FG_RETURN_IF_ERROR(TakeInt(j, "v", major, true));
    // The version is checked before anything else: a newer major may have changed any field.
    if (major > kEnvelopeMajor) {
        return FailedPrecondition("bus envelope: major version " + std::to_string(major) +
                                  " is newer than this node reads (" +
                                  std::to_string(kEnvelopeMajor) + "); upgrade it");
    }
    if (major < 1) return InvalidArgument("bus envelope: 'v' must be >= 1");
    env.major = static_cast<int>(major);
    std::int64_t minor = 0;
    FG_RETURN_IF_ERROR(TakeInt(j, "minor", minor, false));
    if (minor < 0 || minor > 1'000'000) return InvalidArgument("bus envelope: bad 'minor'");
    env.minor = static_cast<int>(minor);

    std::string type;
    FG_RETURN_IF_ERROR(TakeString(j, "type", type, true));
    FG_ASSIGN_OR_RETURN(env.type, ParseMessageType(type));
    FG_RETURN_IF_ERROR(TakeString(j, "id", env.id, true));
    if (env.id.empty()) return InvalidArgument("bus envelope: empty 'id'");
    FG_RETURN_IF_ERROR(TakeString(j, "region", env.region, false));
    FG_RETURN_IF_ERROR(TakeString(j, "camera", env.camera, false));
    FG_RETURN_IF_ERROR(TakeInt(j, "sent_unix_ms", env.sent_unix_ms, false));

    const auto payload = j.find("payload");
    const auto sealed = j.find("sealed");
    if ((payload == j.end()) == (sealed == j.end())) {
        return InvalidArgument("bus envelope: exactly one of 'payload' and 'sealed' is required");
    }
    if (payload != j.end()) {
        env.payload = *payload;
        return env;
    }
    if (!sealed->is_object()) return WrongType("sealed", "an object");
    std::string key_id, data;
    FG_RETURN_IF_ERROR(TakeString(*sealed, "key_id", key_id, true));
    FG_RETURN_IF_ERROR(TakeString(*sealed, "data", data, true));
    if (keys == nullptr) {
        return FailedPrecondition("bus envelope: the payload is sealed (key '" +
                                  key_id.substr(0, 64) + "') and this node has no gallery key");
    }
    Result<std::vector<std::uint8_t>> blob = events::Base64Decode(data);
    if (!blob.ok()) return InvalidArgument("bus envelope: 'sealed.data' is not base64");
    FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> plain,
                        keys->OpenBytes(*blob, key_id, Aad(env.type, env.id)));
    env.payload = Json::parse(plain.begin(), plain.end(), nullptr, false);
    if (env.payload.is_discarded()) return InvalidArgument("bus envelope: sealed payload is not JSON");
    return env;
}

}  // namespace fg::bus
