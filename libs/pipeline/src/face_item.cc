// SPDX-License-Identifier: Apache-2.0
#include "fg/pipeline/face_item.h"

#include <cmath>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "fg/events/event.h"
#include "fg/image/image_io.h"

namespace fg::pipeline {
namespace {

using Json = nlohmann::json;

/// The field `name` of `j` as T, or InvalidArgument naming it.
template <typename T>
Status Take(const Json& j, const char* name, T& out) {
    const auto it = j.find(name);
    if (it == j.end()) return InvalidArgument(std::string("face item: missing '") + name + "'");
    // An integer field must hold an integer: nlohmann converts 1e75 to int with undefined
    // behaviour (found by fg_fuzz_face_item).
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        if (!it->is_number_integer()) {
            return InvalidArgument(std::string("face item: '") + name + "' must be an integer");
        }
    }
    try {
        out = it->get<T>();
    } catch (const Json::exception&) {
        return InvalidArgument(std::string("face item: '") + name + "' has the wrong type");
    }
    return Status::Ok();
}

}  // namespace

Result<Json> FaceItemToJson(const FaceItem& item) {
    Json j = {{"v", kFaceItemVersion},
              {"item_id", item.item_id},
              {"stream_id", item.stream_id},
              {"track_id", item.track_id},
              {"frame_index", item.frame_index},
              {"stream_ms", item.stream_ms},
              {"capture_unix_ms", item.capture_unix_ms},
              {"box", {item.box.x, item.box.y, item.box.width, item.box.height}},
              {"detection_score", item.detection_score},
              {"quality", item.quality},
              {"embed", item.embed},
              {"liveness",
               {{"checked", item.liveness.checked},
                {"live", item.liveness.live},
                {"spoof", item.liveness.spoof},
                {"score", item.liveness.score},
                {"threshold", item.liveness.threshold}}}};
    Json lm = Json::array();
    for (const Point2f& p : item.landmarks) lm.push_back({p.x, p.y});
    j["landmarks"] = std::move(lm);
    if (!item.aligned.empty()) {
        std::vector<uchar> jpeg;
        if (!cv::imencode(".jpg", item.aligned, jpeg, {cv::IMWRITE_JPEG_QUALITY, 95})) {
            return Internal("face item: cannot encode the crop");
        }
        j["crop_jpeg"] = events::Base64Encode(jpeg);
    }
    return j;
}

Result<FaceItem> FaceItemFromJson(const Json& j) {
    if (!j.is_object()) return InvalidArgument("face item: not a JSON object");
    int version = 0;
    FG_RETURN_IF_ERROR(Take(j, "v", version));
    if (version < 1) return InvalidArgument("face item: 'v' must be >= 1");
    if (version > kFaceItemVersion) {
        return InvalidArgument("face item: version " + std::to_string(version) +
                               " is newer than this reader (" + std::to_string(kFaceItemVersion) +
                               "): upgrade the worker");
    }
    FaceItem item;
    FG_RETURN_IF_ERROR(Take(j, "item_id", item.item_id));
    FG_RETURN_IF_ERROR(Take(j, "stream_id", item.stream_id));
    FG_RETURN_IF_ERROR(Take(j, "track_id", item.track_id));
    FG_RETURN_IF_ERROR(Take(j, "frame_index", item.frame_index));
    FG_RETURN_IF_ERROR(Take(j, "stream_ms", item.stream_ms));
    FG_RETURN_IF_ERROR(Take(j, "capture_unix_ms", item.capture_unix_ms));
    FG_RETURN_IF_ERROR(Take(j, "detection_score", item.detection_score));
    FG_RETURN_IF_ERROR(Take(j, "quality", item.quality));
    FG_RETURN_IF_ERROR(Take(j, "embed", item.embed));
    if (item.item_id.empty()) return InvalidArgument("face item: 'item_id' is empty");
    std::vector<float> box;
    FG_RETURN_IF_ERROR(Take(j, "box", box));
    if (box.size() != 4) return InvalidArgument("face item: 'box' must be [x, y, width, height]");
    item.box = {box[0], box[1], box[2], box[3]};
    std::vector<std::vector<float>> lm;
    FG_RETURN_IF_ERROR(Take(j, "landmarks", lm));
    if (lm.size() != item.landmarks.size()) {
        return InvalidArgument("face item: 'landmarks' must hold 5 points");
    }
    for (std::size_t i = 0; i < lm.size(); ++i) {
        if (lm[i].size() != 2) return InvalidArgument("face item: a landmark must be [x, y]");
        item.landmarks[i] = {lm[i][0], lm[i][1]};
    }
    for (float v : box) {
        if (!std::isfinite(v)) return InvalidArgument("face item: 'box' is not finite");
    }
    // JSON has no inf or NaN, but a number too large for a float becomes inf (1e999): such an
    // item could not be written back out, and its numbers would poison every later computation.
    for (const Point2f& p : item.landmarks) {
        if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
            return InvalidArgument("face item: 'landmarks' is not finite");
        }
    }
    if (!std::isfinite(item.detection_score) || !std::isfinite(item.quality)) {
        return InvalidArgument("face item: 'detection_score' and 'quality' must be finite");
    }
    Json live;
    FG_RETURN_IF_ERROR(Take(j, "liveness", live));
    if (!live.is_object()) return InvalidArgument("face item: 'liveness' must be an object");
    FG_RETURN_IF_ERROR(Take(live, "checked", item.liveness.checked));
    FG_RETURN_IF_ERROR(Take(live, "live", item.liveness.live));
    FG_RETURN_IF_ERROR(Take(live, "spoof", item.liveness.spoof));
    FG_RETURN_IF_ERROR(Take(live, "score", item.liveness.score));
    FG_RETURN_IF_ERROR(Take(live, "threshold", item.liveness.threshold));
    if (!std::isfinite(item.liveness.score) || !std::isfinite(item.liveness.threshold)) {
        return InvalidArgument("face item: 'liveness' score and threshold must be finite");
    }
    if (const auto it = j.find("crop_jpeg"); it != j.end()) {
        if (!it->is_string()) return InvalidArgument("face item: 'crop_jpeg' must be a string");
        Result<std::vector<std::uint8_t>> jpeg = events::Base64Decode(it->get_ref<const std::string&>());
        if (!jpeg.ok()) return jpeg.status().WithContext("face item: 'crop_jpeg'");
        // The guarded decoder: size limits and clear errors for untrusted bytes.
        Result<cv::Mat> crop = DecodeImage(*jpeg);
        if (!crop.ok()) return crop.status().WithContext("face item: 'crop_jpeg'");
        item.aligned = std::move(*crop);
    }
    if (item.embed && item.aligned.empty()) {
        return InvalidArgument("face item: 'crop_jpeg' is required when 'embed' is true");
    }
    return item;
}

}  // namespace fg::pipeline
