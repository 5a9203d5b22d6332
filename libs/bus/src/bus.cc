// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/bus.h"

namespace fg::bus {

Topic TopicOf(MessageType type) {
    switch (type) {
        case MessageType::kFaceItem: return Topic::kFaces;
        case MessageType::kResult: return Topic::kResults;
        case MessageType::kGalleryChange: return Topic::kGalleryChanges;
    }
    return Topic::kFaces;
}

Status ValidToken(std::string_view token, std::string_view what) {
    if (token.empty() || token.size() > 64) {
        return InvalidArgument(std::string(what) + ": must be 1..64 characters");
    }
    for (char c : token) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == '-';
        if (!ok) {
            return InvalidArgument(std::string(what) + " '" + std::string(token) +
                                   "': only letters, digits, '_' and '-' are allowed");
        }
    }
    return Status::Ok();
}

std::string NatsSubject(const Route& route) {
    switch (route.topic) {
        case Topic::kFaces: return "fg.faces." + route.region + "." + route.camera;
        case Topic::kResults: return "fg.results." + route.region + "." + route.camera;
        case Topic::kGalleryChanges: return "fg.gallery.changes";
    }
    return {};
}

std::string KafkaTopic(const Route& route) {
    switch (route.topic) {
        case Topic::kFaces: return "fg.faces." + route.region;
        case Topic::kResults: return "fg.results." + route.region;
        case Topic::kGalleryChanges: return "fg.gallery.changes";
    }
    return {};
}

Result<PublishAck> PublishEnvelope(Bus& bus, const Envelope& env, const gallery::KeyRing* keys) {
    FG_ASSIGN_OR_RETURN(std::string data, EncodeEnvelope(env, keys));
    return bus.Publish(Route{.topic = TopicOf(env.type), .region = env.region, .camera = env.camera},
                       env.id, data);
}

}  // namespace fg::bus
