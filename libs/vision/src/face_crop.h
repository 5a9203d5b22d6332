// SPDX-License-Identifier: Apache-2.0
// Crops around a face box and small helpers shared by the liveness and attribute models (private).
#pragma once

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/image/geometry.h"

namespace fg::vision::detail {

/// What a context crop does where it would leave the image.
enum class CropBorder {
    /// Shrink the scale until the crop fits, then move it inside the image (Silent-Face's crop,
    /// what the MiniFASNets were trained on); black only where the box itself exceeds the image.
    kShift,
    /// Keep scale and centre; black outside the image.
    kPad,
};

/// The box scaled by `scale` around its centre (not square: both sides scale), placed by
/// `border` in an image of `image_size`. Always at least 1x1; may extend beyond the image
/// (cut it with CropWithBorder).
cv::Rect ContextCrop(const Rect2f& box, float scale, cv::Size image_size, CropBorder border);

/// The `rect` of `bgr` resized to `size`, black where `rect` leaves the image. Only the part
/// inside the image is resized (memory stays bounded for crops far larger than the image);
/// area averaging when shrinking below half size (keeps the fine texture liveness looks at
/// from aliasing), bilinear otherwise.
cv::Mat CropResize(const cv::Mat& bgr, const cv::Rect& rect, cv::Size size);

/// A square of side `scale` * max(w, h) centred on the box (attribute models).
cv::Rect SquareCrop(const Rect2f& box, float scale);

/// `image` as BGR8: CV_8UC3 as is (no copy), CV_8UC1 converted. Empty or other types are
/// InvalidArgument.
Result<cv::Mat> AsBgr8(const cv::Mat& image);

/// InvalidArgument for a box with a non-finite or absurd (beyond +-1e6 px) coordinate or size.
Status CheckBox(const Rect2f& box);

/// softmax(logits)[index], computed stably.
float SoftmaxAt(const float* logits, int n, int index);

}  // namespace fg::vision::detail
