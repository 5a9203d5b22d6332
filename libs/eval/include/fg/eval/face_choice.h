// SPDX-License-Identifier: Apache-2.0
// Which face of an image a protocol entry refers to when the detector finds several. Protocols
// label images, not boxes: LFW's images are 250x250 crops centred on the labelled person (LFW
// readme), often with other people around; CFP's photos hold one face, the largest.
#pragma once

#include <span>
#include <string_view>

#include "fg/base/status.h"
#include "fg/core/geometry.h"

namespace fg::eval {

enum class FaceChoice {
    kLargest,  ///< the largest box (the main face of a portrait)
    kCenter,   ///< the box whose centre is nearest the image centre (LFW)
};

/// "largest" or "center"; anything else is an InvalidArgument.
Result<FaceChoice> ParseFaceChoice(std::string_view name);
std::string_view FaceChoiceName(FaceChoice choice);

/// Index into `boxes` of the face `choice` selects in an image of `width` x `height` pixels;
/// -1 when `boxes` is empty. Ties go to the earlier box.
int PickFace(std::span<const Rect2f> boxes, float width, float height, FaceChoice choice);

}  // namespace fg::eval
