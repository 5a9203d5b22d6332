// SPDX-License-Identifier: Apache-2.0
// Face alignment: a similarity transform from 5 landmarks to the ArcFace template.
#pragma once

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/image/geometry.h"

namespace fg {

/// The ArcFace 112x112 template (InsightFace `arcface_dst`): left eye, right eye, nose,
/// left mouth corner, right mouth corner.
const Landmarks5& ArcFaceTemplate112();

struct AlignedFace {
    cv::Mat image;          ///< size x size, CV_8UC3 BGR
    Affine2x3 transform;    ///< maps source image pixels to aligned-face pixels
    Landmarks5 landmarks;   ///< the source landmarks, transformed into the aligned face
};

/// Warps `bgr` so that `landmarks` land on the ArcFace template scaled to `size` (112 by
/// default). Pixels outside the source image are filled with black. Thread-safe (pure).
/// Errors: InvalidArgument for an empty image, non-finite or degenerate landmarks.
Result<AlignedFace> AlignFace(const cv::Mat& bgr, const Landmarks5& landmarks, int size = 112);

}  // namespace fg
