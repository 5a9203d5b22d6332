// SPDX-License-Identifier: Apache-2.0
// The hand-off between face selection and recognition: one face of one track, cut out and
// assessed, with everything recognition needs and nothing else (never the whole frame). In one
// process the selection stage passes it straight to recognition; the scale-out roles put a
// message bus exactly here (an edge node selects, a worker recognises), so it serialises.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/core/geometry.h"

namespace fg::pipeline {

/// Per-frame liveness of the track so far, fused at the selection stage: the liveness models
/// need the context around the face (whole-frame crops at 2.7x and 4x the box), which never
/// leaves the node that decoded the frame.
struct LivenessState {
    bool checked = false;  ///< liveness is on for this stream
    bool live = false;     ///< enough frames, fused score >= threshold
    bool spoof = false;    ///< enough frames, fused score < threshold
    float score = 0;       ///< fused live probability (0 = spoof .. 1 = live)
    float threshold = 0;
};

struct FaceItem {
    /// Unique per stream: "<stream>/<generation>/<track>/<frame>"; the bus dedupes on it.
    std::string item_id;
    std::string stream_id;
    std::uint64_t track_id = 0;
    std::int64_t frame_index = 0;
    std::int64_t stream_ms = 0;        ///< stream time of the frame
    std::int64_t capture_unix_ms = 0;  ///< wall-clock arrival of the frame (events carry it)
    Rect2f box;                        ///< face box in frame pixels
    float detection_score = 0;
    Landmarks5 landmarks{};            ///< in frame pixels
    float quality = 0;                 ///< combined quality, 0..1 (vision::QualityReport::score)
    /// False for an item that only reports the track's liveness (a spoof verdict): nothing to
    /// embed, and `aligned` may be empty.
    bool embed = true;
    cv::Mat aligned;                   ///< BGR8 aligned crop (the embedder's input)
    LivenessState liveness;
};

/// Major version of the serialised form; a reader refuses a newer major version.
inline constexpr int kFaceItemVersion = 1;

/// JSON with the crop as base64 JPEG (quality 95: a 112x112 crop is ~4 KB and embeds within
/// noise of the raw pixels). Errors: Internal when the crop cannot be encoded.
Result<nlohmann::json> FaceItemToJson(const FaceItem& item);
/// Parses FaceItemToJson's output. Errors (InvalidArgument, naming the field): missing or
/// mistyped fields, a newer major version, a crop that does not decode.
Result<FaceItem> FaceItemFromJson(const nlohmann::json& json);

}  // namespace fg::pipeline
