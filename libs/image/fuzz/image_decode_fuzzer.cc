// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for the guarded image decoder every uploaded or streamed image goes through
// (fg::DecodeImage: header size check, OpenCV's codecs, EXIF orientation, conversion to BGR).
// Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fg/image/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // 16 MP: large enough for every real photo, small enough for the fuzzer's memory limit.
    auto image = fg::DecodeImage(std::span<const std::uint8_t>(data, size), {.max_pixels = 16'000'000});
    if (image.ok() && (image->empty() || image->type() != CV_8UC3)) __builtin_trap();
    return 0;
}
