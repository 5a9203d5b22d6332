// SPDX-License-Identifier: Apache-2.0
// Image -> input tensor conversion shared by every model of the vision layer (private).
#pragma once

#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/infer/model_pack.h"

namespace fg::vision::detail {

/// Where the image landed in the model input: input = image * scale + (pad_x, pad_y).
struct LetterboxInfo {
    float scale_x = 1.f;
    float scale_y = 1.f;
    float pad_x = 0.f;
    float pad_y = 0.f;
};

/// Resizes `bgr` (CV_8UC3) to fmt.width x fmt.height — letterboxed (aspect kept, image at the
/// top-left, the rest zero) when fmt.letterbox, else stretched — converts the colour order
/// (BGR, RGB or grey), applies (pixel - mean) * scale and writes NCHW float32 into
/// `dst` (callers batching N images pass dst + i*C*H*W). `dst` must hold C*H*W floats.
/// `max_scale` caps the letterbox scale: detectors pass 1 unless asked to upscale, because
/// enlarging a small image adds no detail and pushes its faces past the largest anchors the
/// detector was trained on (a 150 px photo letterboxed into 640 px).
LetterboxInfo ToTensor(const cv::Mat& bgr, const infer::InputFormat& fmt, float* dst,
                       double max_scale = 1e9);

/// Number of channels of the input tensor (1 for grey, else 3).
inline int Channels(const infer::InputFormat& fmt) { return fmt.color == infer::ColorOrder::kGray ? 1 : 3; }

/// Checks that `bgr` is a non-empty CV_8UC3 image.
Status CheckBgr8(const cv::Mat& bgr);

}  // namespace fg::vision::detail
