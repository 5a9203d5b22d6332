// SPDX-License-Identifier: Apache-2.0
#include "fg/image/image_io.h"

#include <climits>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace fg {
namespace {

struct Dims {
    std::uint64_t width = 0;
    std::uint64_t height = 0;
};

std::uint32_t ReadBe32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}
std::uint32_t ReadBe16(const std::uint8_t* p) { return (std::uint32_t{p[0]} << 8) | p[1]; }
std::uint32_t ReadLe32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
           (std::uint32_t{p[3]} << 24);
}

// PNG: the 8-byte signature is always followed by the IHDR chunk (length, "IHDR", w, h).
std::optional<Dims> PngDims(std::span<const std::uint8_t> b) {
    static constexpr std::uint8_t kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (b.size() < 24 || std::memcmp(b.data(), kSig, 8) != 0) return std::nullopt;
    if (std::memcmp(b.data() + 12, "IHDR", 4) != 0) return std::nullopt;
    return Dims{ReadBe32(b.data() + 16), ReadBe32(b.data() + 20)};
}

// JPEG: walk the marker segments up to the first SOFn, which holds height and width.
std::optional<Dims> JpegDims(std::span<const std::uint8_t> b) {
    if (b.size() < 4 || b[0] != 0xFF || b[1] != 0xD8) return std::nullopt;
    std::size_t i = 2;
    while (i + 1 < b.size()) {
        if (b[i] != 0xFF) return std::nullopt;  // lost sync: let the decoder judge
        const std::uint8_t marker = b[i + 1];
        if (marker == 0xFF) {  // fill byte
            ++i;
            continue;
        }
        i += 2;
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no payload
        if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // EOI/SOS before any SOF
        if (i + 2 > b.size()) return std::nullopt;
        const std::size_t len = ReadBe16(b.data() + i);
        if (len < 2 || i + len > b.size()) return std::nullopt;
        const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                         marker != 0xCC;
        if (sof) {
            if (len < 7) return std::nullopt;
            // After the length: precision(1) height(2) width(2). Height 0 = "defined later" (DNL),
            // which passes here and is checked after decoding.
            return Dims{ReadBe16(b.data() + i + 5), ReadBe16(b.data() + i + 3)};
        }
        i += len;
    }
    return std::nullopt;
}

// BMP: BITMAPINFOHEADER (or later) width/height at offsets 18/22; height < 0 = top-down.
std::optional<Dims> BmpDims(std::span<const std::uint8_t> b) {
    if (b.size() < 26 || b[0] != 'B' || b[1] != 'M') return std::nullopt;
    if (ReadLe32(b.data() + 14) < 40) return std::nullopt;  // OS/2 core header: 16-bit fields
    const auto w = static_cast<std::int32_t>(ReadLe32(b.data() + 18));
    const auto h = static_cast<std::int32_t>(ReadLe32(b.data() + 22));
    const auto mag = [](std::int32_t v) {
        return v < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(static_cast<std::int64_t>(v))
                     : static_cast<std::uint64_t>(v);
    };
    return Dims{mag(w), mag(h)};
}

std::optional<Dims> HeaderDims(std::span<const std::uint8_t> b) {
    if (auto d = PngDims(b)) return d;
    if (auto d = JpegDims(b)) return d;
    return BmpDims(b);
}

Status TooLarge(const std::string& what, std::uint64_t w, std::uint64_t h, std::uint64_t max) {
    return InvalidArgument("image " + what + " too large: " + std::to_string(w) + "x" +
                           std::to_string(h) + " exceeds max_pixels=" + std::to_string(max));
}

Result<cv::Mat> Decode(std::span<const std::uint8_t> bytes, const ImageLoadOptions& options,
                       const std::string& what) {
    if (bytes.empty()) return InvalidArgument("cannot decode image " + what + ": empty");
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
        return InvalidArgument("cannot decode image " + what + ": larger than 2 GB");
    }
    // Refuse decompression bombs from the header alone, before the decoder allocates.
    if (options.max_pixels > 0) {
        if (auto d = HeaderDims(bytes); d && d->width * d->height > options.max_pixels) {
            return TooLarge(what, d->width, d->height, options.max_pixels);
        }
    }
    cv::Mat decoded;
    try {
        const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8UC1,
                          const_cast<std::uint8_t*>(bytes.data()));  // read-only use
        decoded = cv::imdecode(buf, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
    } catch (const cv::Exception& e) {
        return InvalidArgument("cannot decode image " + what + ": " + e.what());
    } catch (const std::bad_alloc&) {
        return ResourceExhausted("cannot decode image " + what + ": out of memory");
    }
    if (decoded.empty()) {
        return InvalidArgument("cannot decode image " + what +
                               ": not an image or truncated/corrupt");
    }
    const auto w = static_cast<std::uint64_t>(decoded.cols);
    const auto h = static_cast<std::uint64_t>(decoded.rows);
    if (options.max_pixels > 0 && w * h > options.max_pixels) {
        return TooLarge(what, w, h, options.max_pixels);
    }
    Result<cv::Mat> bgr = ToBgr8(decoded);
    if (!bgr.ok()) return bgr.status().WithContext("image " + what);
    return bgr;
}

}  // namespace

Result<cv::Mat> LoadImage(const std::filesystem::path& path, const ImageLoadOptions& options) {
    const std::string name = path.string();
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (st.type() == std::filesystem::file_type::not_found) {
        return NotFound("image file not found: " + name);
    }
    if (ec) return InvalidArgument("cannot access image " + name + ": " + ec.message());
    if (std::filesystem::is_directory(st)) {
        return InvalidArgument("image path is a directory: " + name);
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return InvalidArgument("cannot open image " + name);
    std::vector<std::uint8_t> bytes;
    try {
        in.seekg(0, std::ios::end);
        const std::streamoff size = in.tellg();
        in.seekg(0, std::ios::beg);
        if (size > 0) {
            bytes.resize(static_cast<std::size_t>(size));
            in.read(reinterpret_cast<char*>(bytes.data()), size);
            bytes.resize(static_cast<std::size_t>(in.gcount()));
        }
    } catch (const std::bad_alloc&) {
        return ResourceExhausted("cannot read image " + name + ": out of memory");
    }
    if (in.bad()) return InvalidArgument("cannot read image " + name);
    if (bytes.empty()) return InvalidArgument("cannot decode image " + name + ": empty file");
    return Decode(bytes, options, name);
}

Result<cv::Mat> DecodeImage(std::span<const std::uint8_t> bytes, const ImageLoadOptions& options) {
    return Decode(bytes, options, "(" + std::to_string(bytes.size()) + " bytes in memory)");
}

Result<cv::Mat> ToBgr8(const cv::Mat& image) {
    if (image.empty()) return InvalidArgument("empty image");
    try {
        cv::Mat src8;
        switch (image.depth()) {
            case CV_8U:
                src8 = image;
                break;
            case CV_16U:
                image.convertTo(src8, CV_8U, 1.0 / 257.0);  // 65535 -> 255 exactly
                break;
            case CV_32F:
            case CV_64F: {
                double lo = 0, hi = 0;
                cv::minMaxIdx(image.reshape(1), &lo, &hi);
                // HDR/float decoders produce 0..1; anything larger is taken as 0..255 already.
                image.convertTo(src8, CV_8U, hi <= 1.0 ? 255.0 : 1.0);
                break;
            }
            default:
                return InvalidArgument("unsupported image depth " + std::to_string(image.depth()));
        }
        cv::Mat bgr;
        switch (src8.channels()) {
            case 1:
                cv::cvtColor(src8, bgr, cv::COLOR_GRAY2BGR);
                break;
            case 3:
                bgr = src8;  // already BGR8: shares the pixels, as OpenCV assignments do
                break;
            case 4:
                cv::cvtColor(src8, bgr, cv::COLOR_BGRA2BGR);
                break;
            default:
                return InvalidArgument("unsupported channel count " +
                                       std::to_string(src8.channels()));
        }
        return bgr;
    } catch (const cv::Exception& e) {
        return InvalidArgument(std::string("cannot convert image to BGR8: ") + e.what());
    } catch (const std::bad_alloc&) {
        return ResourceExhausted("cannot convert image to BGR8: out of memory");
    }
}

}  // namespace fg
