// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for FaceItem decoding (the detect -> recognise hand-off, which crosses a
// process boundary through the bus): nlohmann's parser, then fg::pipeline::FaceItemFromJson
// (base64 + the guarded image decoder for the crop). What decodes must encode and decode back
// to the same item (crop aside). Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fg/pipeline/face_item.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    auto item = fg::pipeline::FaceItemFromJson(j);
    if (!item.ok()) return 0;
    // The round trip leaves the crop out: re-encoding and decoding it again would triple the
    // cost of every input (JPEG under ASan) for nothing the first decode did not already test.
    item->aligned = cv::Mat();
    item->embed = false;
    auto json = fg::pipeline::FaceItemToJson(*item);
    if (!json.ok()) __builtin_trap();
    auto again = fg::pipeline::FaceItemFromJson(*json);
    if (!again.ok() || again->item_id != item->item_id || again->track_id != item->track_id ||
        again->frame_index != item->frame_index || again->box.x != item->box.x ||
        again->landmarks[4].y != item->landmarks[4].y || !again->aligned.empty()) {
        __builtin_trap();
    }
    return 0;
}
