// SPDX-License-Identifier: Apache-2.0
// The versioned envelope every bus message travels in (schema: libs/bus/schema/messages.md).
// One JSON object: version, type, id (the dedupe key), route (region, camera), time and the
// payload, which is either plain JSON or sealed with the gallery key (AES-256-GCM, bound to the
// type and id), so face crops stored by the bus are encrypted at rest like every template.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"

namespace fg::gallery {
class KeyRing;
}

namespace fg::bus {

/// Major version: a reader refuses a newer major (FailedPrecondition, never a misread).
inline constexpr int kEnvelopeMajor = 1;
/// Minor version: additions only (new optional fields); readers ignore unknown fields.
inline constexpr int kEnvelopeMinor = 0;
/// Decoding refuses larger messages (a face item with its ~4 KB crop is far below).
inline constexpr std::size_t kMaxEnvelopeBytes = 1 << 20;

enum class MessageType { kFaceItem, kResult, kGalleryChange };

/// "face_item", "result", "gallery_change".
std::string_view MessageTypeName(MessageType type);
/// Inverse of MessageTypeName; InvalidArgument naming the value otherwise.
Result<MessageType> ParseMessageType(std::string_view name);

struct Envelope {
    int major = kEnvelopeMajor;  ///< as read; always kEnvelopeMajor when encoding
    int minor = kEnvelopeMinor;
    MessageType type = MessageType::kFaceItem;
    /// Unique per message and stable across retries: the item id for face items and results,
    /// "<seq>" for gallery changes. The bus dedupes on it (Nats-Msg-Id) and so do consumers.
    std::string id;
    std::string region;  ///< routing token (see ValidToken in bus.h)
    std::string camera;  ///< routing token; empty for gallery changes
    std::int64_t sent_unix_ms = 0;
    nlohmann::json payload;  ///< the message body (plain after decoding, even if sealed)
};

/// Serialises `env`. With a key ring the payload is sealed with its current key (the envelope
/// names the key id; AAD binds it to the type and id); without one it travels as plain JSON.
/// Errors: InvalidArgument for an empty id; Internal when sealing fails.
Result<std::string> EncodeEnvelope(const Envelope& env, const gallery::KeyRing* keys = nullptr);

/// Parses EncodeEnvelope's output. Errors: FailedPrecondition for a newer major version (the
/// message is for a newer reader: leave it for one, do not drop it) or a sealed payload without
/// a key ring / with an unknown key; InvalidArgument naming the field for anything malformed
/// (too large, not JSON, missing or mistyped fields, unknown type); DataLoss for a sealed
/// payload that fails authentication. Never throws.
Result<Envelope> DecodeEnvelope(std::string_view bytes, const gallery::KeyRing* keys = nullptr);

}  // namespace fg::bus
