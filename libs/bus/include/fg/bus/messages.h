// SPDX-License-Identifier: Apache-2.0
// The three message bodies of the bus (libs/bus/schema/messages.md): face items (an edge's
// selected, aligned face; serialised by fg::pipeline), recognition results and gallery changes.
// Embeddings never travel on the bus; templates stay in the system of record.
#pragma once

#include <cstdint>
#include <string>

#include "fg/base/status.h"
#include "fg/bus/envelope.h"
#include "fg/pipeline/face_item.h"

namespace fg::bus {

/// Envelope for a face item: id = item.item_id. Errors: InvalidArgument for an empty item id or
/// bad route tokens; Internal when the crop cannot be encoded.
Result<Envelope> FaceItemEnvelope(const pipeline::FaceItem& item, std::string region,
                                  std::string camera, std::int64_t sent_unix_ms);
/// The face item of a kFaceItem envelope (InvalidArgument for another type or a bad body, which
/// includes a face item of a newer major version).
Result<pipeline::FaceItem> FaceItemFromEnvelope(const Envelope& env);

/// What a worker decided for one face item.
struct RecognitionResult {
    std::string item_id;  ///< the face item's id: results are idempotent by it
    std::string stream_id;
    std::uint64_t track_id = 0;
    std::int64_t frame_index = 0;
    std::int64_t capture_unix_ms = 0;
    std::string decision;    ///< "known", "unknown" or "spoof"
    std::string subject_id;  ///< set when decision == "known"
    float score = 0;         ///< best cosine similarity (0 when nothing was searched)
    std::string worker_id;   ///< which worker decided (operations only)
};

/// Envelope for a result: id = result.item_id. Errors: InvalidArgument for an empty item id, a
/// decision outside the three values or bad route tokens.
Result<Envelope> ResultEnvelope(const RecognitionResult& result, std::string region,
                                std::string camera, std::int64_t sent_unix_ms);
Result<RecognitionResult> ResultFromEnvelope(const Envelope& env);

/// One entry of the gallery change log: workers apply it by re-reading the subject from the
/// system of record (so no template crosses the bus).
struct GalleryChange {
    std::uint64_t seq = 0;   ///< change-log sequence, > 0, strictly increasing
    std::string op;          ///< "upsert" or "delete"
    std::string subject_id;
};

/// Envelope for a change: id = "gallery/<seq>", region = `region` (the gallery's home region).
Result<Envelope> GalleryChangeEnvelope(const GalleryChange& change, std::string region,
                                       std::int64_t sent_unix_ms);
Result<GalleryChange> GalleryChangeFromEnvelope(const Envelope& env);

}  // namespace fg::bus
