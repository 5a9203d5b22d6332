// SPDX-License-Identifier: Apache-2.0
// Image decoding with clear errors. Every image enters Facegate as 8-bit, 3-channel BGR.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"

namespace fg {

struct ImageLoadOptions {
    /// Refuse images with more pixels than this (256 MP; a 400 MP image needs 1.2 GB decoded, and
    /// a forged header can claim far more); checked from the header before decoding. 0 = no limit.
    std::uint64_t max_pixels = 256ull * 1000 * 1000;
};

/// Reads an image file (JPEG, PNG, BMP, TIFF, WebP, PPM ...) and returns it as CV_8UC3 BGR:
/// grayscale is expanded, alpha dropped, 16-bit and float images scaled to 8 bits, EXIF
/// orientation applied. Errors: NotFound (no such file), InvalidArgument (empty, not an image,
/// truncated or corrupt, too large). Never throws.
Result<cv::Mat> LoadImage(const std::filesystem::path& path, const ImageLoadOptions& options = {});

/// Same as LoadImage, for encoded bytes in memory (an upload, a message).
Result<cv::Mat> DecodeImage(std::span<const std::uint8_t> bytes, const ImageLoadOptions& options = {});

/// Converts any decoded cv::Mat (1/3/4 channels, 8/16-bit or float) to CV_8UC3 BGR.
Result<cv::Mat> ToBgr8(const cv::Mat& image);

}  // namespace fg
