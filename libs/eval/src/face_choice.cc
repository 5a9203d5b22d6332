// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/face_choice.h"

#include <string>

namespace fg::eval {

Result<FaceChoice> ParseFaceChoice(std::string_view name) {
    if (name == "largest") return FaceChoice::kLargest;
    if (name == "center") return FaceChoice::kCenter;
    return InvalidArgument("face choice must be largest or center, got '" + std::string(name) + "'");
}

std::string_view FaceChoiceName(FaceChoice choice) {
    return choice == FaceChoice::kCenter ? "center" : "largest";
}

int PickFace(std::span<const Rect2f> boxes, float width, float height, FaceChoice choice) {
    int best = -1;
    float best_key = 0;
    for (size_t i = 0; i < boxes.size(); ++i) {
        float key;  // larger is better
        if (choice == FaceChoice::kLargest) {
            key = boxes[i].area();
        } else {
            const Point2f c = boxes[i].center();
            const float dx = c.x - width / 2, dy = c.y - height / 2;
            key = -(dx * dx + dy * dy);
        }
        if (best < 0 || key > best_key) {
            best = static_cast<int>(i);
            best_key = key;
        }
    }
    return best;
}

}  // namespace fg::eval
