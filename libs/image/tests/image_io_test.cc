// SPDX-License-Identifier: Apache-2.0
#include "fg/image/image_io.h"

#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fg/testing/testing.h"

namespace fg {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes Encode(const std::string& ext, const cv::Mat& img) {
    Bytes out;
    EXPECT_TRUE(cv::imencode(ext, img, out)) << ext;
    return out;
}

void WriteFile(const std::filesystem::path& p, const Bytes& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// A colour test card with enough structure to make JPEG data non-trivial.
cv::Mat Card(int w, int h) {
    cv::Mat img(h, w, CV_8UC3);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            img.at<cv::Vec3b>(y, x) = {static_cast<std::uint8_t>(x * 255 / std::max(1, w - 1)),
                                       static_cast<std::uint8_t>(y * 255 / std::max(1, h - 1)),
                                       static_cast<std::uint8_t>((x ^ y) & 0xFF)};
        }
    }
    return img;
}

std::uint32_t Crc32(const std::uint8_t* p, std::size_t n) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

void PutBe32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

// A small real PNG whose IHDR (with a valid CRC) claims w x h: the pixel data is far too short.
Bytes ForgedPng(std::uint32_t w, std::uint32_t h) {
    Bytes png = Encode(".png", cv::Mat(16, 16, CV_8UC1, cv::Scalar(0)));
    PutBe32(png.data() + 16, w);
    PutBe32(png.data() + 20, h);
    PutBe32(png.data() + 29, Crc32(png.data() + 12, 17));  // CRC over "IHDR" + 13 data bytes
    return png;
}

// A real JPEG whose SOF0 claims w x h.
Bytes ForgedJpeg(std::uint16_t w, std::uint16_t h) {
    Bytes jpg = Encode(".jpg", Card(16, 16));
    for (std::size_t i = 2; i + 8 < jpg.size(); ++i) {
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = static_cast<std::uint8_t>(h >> 8);
            jpg[i + 6] = static_cast<std::uint8_t>(h);
            jpg[i + 7] = static_cast<std::uint8_t>(w >> 8);
            jpg[i + 8] = static_cast<std::uint8_t>(w);
            return jpg;
        }
    }
    ADD_FAILURE() << "no SOF0 in encoded JPEG";
    return jpg;
}

std::string Msg(const Status& s) { return s.ToString(); }

TEST(LoadImageTest, MissingFileIsNotFound) {
    testing::TmpDir tmp;
    auto r = LoadImage(tmp / "nope.jpg");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
    EXPECT_NE(r.status().message().find("nope.jpg"), std::string::npos);
}

TEST(LoadImageTest, DirectoryIsInvalidArgument) {
    testing::TmpDir tmp;
    auto r = LoadImage(tmp.path());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("directory"), std::string::npos) << Msg(r.status());
}

TEST(LoadImageTest, EmptyFileIsInvalidArgument) {
    testing::TmpDir tmp;
    WriteFile(tmp / "empty.png", {});
    auto r = LoadImage(tmp / "empty.png");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("empty"), std::string::npos) << Msg(r.status());
}

TEST(LoadImageTest, TextFileIsInvalidArgument) {
    testing::TmpDir tmp;
    const std::string text = "hello, this is not an image\n";
    WriteFile(tmp / "photo.jpg", Bytes(text.begin(), text.end()));
    auto r = LoadImage(tmp / "photo.jpg");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    const std::string expected = "cannot decode image " + (tmp / "photo.jpg").string() +
                                 ": not an image or truncated/corrupt";
    EXPECT_EQ(r.status().message(), expected);
}

TEST(LoadImageTest, TruncatedJpegNeverCrashes) {
    testing::TmpDir tmp;
    const Bytes jpg = Encode(".jpg", Card(64, 48));
    // Half a JPEG: libjpeg may warn and return a grey-filled image; either outcome is defined.
    WriteFile(tmp / "half.jpg", Bytes(jpg.begin(), jpg.begin() + jpg.size() / 2));
    auto r = LoadImage(tmp / "half.jpg");
    if (r.ok()) {
        EXPECT_EQ(r->type(), CV_8UC3);
        EXPECT_EQ(r->size(), cv::Size(64, 48));
    } else {
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
    // Cut inside the headers: nothing can be decoded.
    WriteFile(tmp / "head.jpg", Bytes(jpg.begin(), jpg.begin() + 40));
    auto h = LoadImage(tmp / "head.jpg");
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument);
}

TEST(LoadImageTest, TruncatedPngIsInvalidArgument) {
    testing::TmpDir tmp;
    const Bytes png = Encode(".png", Card(64, 48));
    WriteFile(tmp / "half.png", Bytes(png.begin(), png.begin() + png.size() / 2));
    auto r = LoadImage(tmp / "half.png");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("truncated/corrupt"), std::string::npos) << Msg(r.status());
}

TEST(LoadImageTest, OnePixelImage) {
    testing::TmpDir tmp;
    cv::Mat px(1, 1, CV_8UC3, cv::Scalar(10, 20, 30));
    WriteFile(tmp / "one.png", Encode(".png", px));
    auto r = LoadImage(tmp / "one.png");
    ASSERT_TRUE(r.ok()) << Msg(r.status());
    EXPECT_EQ(r->size(), cv::Size(1, 1));
    EXPECT_EQ(r->type(), CV_8UC3);
    EXPECT_EQ(r->at<cv::Vec3b>(0, 0), cv::Vec3b(10, 20, 30));
}

TEST(LoadImageTest, GrayscalePngIsExpanded) {
    testing::TmpDir tmp;
    cv::Mat gray(5, 7, CV_8UC1);
    for (int i = 0; i < 35; ++i) gray.data[i] = static_cast<std::uint8_t>(i * 7);
    WriteFile(tmp / "gray.png", Encode(".png", gray));
    auto r = LoadImage(tmp / "gray.png");
    ASSERT_TRUE(r.ok()) << Msg(r.status());
    ASSERT_EQ(r->type(), CV_8UC3);
    ASSERT_EQ(r->size(), gray.size());
    for (int y = 0; y < 5; ++y) {
        for (int x = 0; x < 7; ++x) {
            const std::uint8_t g = gray.at<std::uint8_t>(y, x);
            EXPECT_EQ(r->at<cv::Vec3b>(y, x), cv::Vec3b(g, g, g));
        }
    }
}

TEST(LoadImageTest, SixteenBitPngIsScaled) {
    testing::TmpDir tmp;
    cv::Mat gray16(1, 3, CV_16UC1);
    gray16.at<std::uint16_t>(0, 0) = 0;
    gray16.at<std::uint16_t>(0, 1) = 100 * 257;
    gray16.at<std::uint16_t>(0, 2) = 65535;
    WriteFile(tmp / "g16.png", Encode(".png", gray16));
    cv::Mat bgr16(1, 1, CV_16UC3, cv::Scalar(257 * 10, 257 * 200, 65535));
    WriteFile(tmp / "c16.png", Encode(".png", bgr16));

    auto g = LoadImage(tmp / "g16.png");
    ASSERT_TRUE(g.ok()) << Msg(g.status());
    ASSERT_EQ(g->type(), CV_8UC3);
    EXPECT_EQ(g->at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
    EXPECT_EQ(g->at<cv::Vec3b>(0, 1), cv::Vec3b(100, 100, 100));
    EXPECT_EQ(g->at<cv::Vec3b>(0, 2), cv::Vec3b(255, 255, 255));
    auto c = LoadImage(tmp / "c16.png");
    ASSERT_TRUE(c.ok()) << Msg(c.status());
    ASSERT_EQ(c->type(), CV_8UC3);
    EXPECT_EQ(c->at<cv::Vec3b>(0, 0), cv::Vec3b(10, 200, 255));
}

TEST(LoadImageTest, BgraPngDropsAlpha) {
    testing::TmpDir tmp;
    cv::Mat bgra(2, 2, CV_8UC4, cv::Scalar(1, 2, 3, 0));  // fully transparent
    bgra.at<cv::Vec4b>(1, 1) = {200, 150, 100, 255};
    WriteFile(tmp / "alpha.png", Encode(".png", bgra));
    auto r = LoadImage(tmp / "alpha.png");
    ASSERT_TRUE(r.ok()) << Msg(r.status());
    ASSERT_EQ(r->type(), CV_8UC3);
    EXPECT_EQ(r->at<cv::Vec3b>(0, 0), cv::Vec3b(1, 2, 3));
    EXPECT_EQ(r->at<cv::Vec3b>(1, 1), cv::Vec3b(200, 150, 100));
}

TEST(LoadImageTest, JpegAndBmpDecode) {
    testing::TmpDir tmp;
    const cv::Mat card = Card(33, 21);
    WriteFile(tmp / "a.jpg", Encode(".jpg", card));
    WriteFile(tmp / "a.bmp", Encode(".bmp", card));
    for (const char* name : {"a.jpg", "a.bmp"}) {
        auto r = LoadImage(tmp / name);
        ASSERT_TRUE(r.ok()) << name << ": " << Msg(r.status());
        EXPECT_EQ(r->type(), CV_8UC3);
        EXPECT_EQ(r->size(), card.size());
        EXPECT_LT(cv::norm(*r, card, cv::NORM_L1) / card.total() / 3, 8.0) << name;
    }
}

TEST(LoadImageTest, ExifOrientationIsApplied) {
    // 40x20 image, left half red, right half blue, tagged "rotate 90 degrees clockwise"
    // (orientation 6): displayed 20 wide, 40 high, red on top.
    cv::Mat img(20, 40, CV_8UC3, cv::Scalar(255, 0, 0));
    img(cv::Rect(0, 0, 20, 20)).setTo(cv::Scalar(0, 0, 255));
    Bytes jpg = Encode(".jpg", img);
    const Bytes app1 = {
        0xFF, 0xE1, 0x00, 34,  'E',  'x',  'i',  'f',  0,    0,     // APP1, length 34, "Exif\0\0"
        'I',  'I',  0x2A, 0x00, 8,   0,    0,    0,                 // TIFF header, IFD at 8
        1,    0,                                                    // one entry
        0x12, 0x01, 3,    0,    1,   0,    0,    0,    6,    0,    0, 0,  // Orientation = 6
        0,    0,    0,    0};                                       // no next IFD
    jpg.insert(jpg.begin() + 2, app1.begin(), app1.end());
    auto r = DecodeImage(jpg);
    ASSERT_TRUE(r.ok()) << Msg(r.status());
    ASSERT_EQ(r->size(), cv::Size(20, 40));
    const cv::Vec3b top = r->at<cv::Vec3b>(5, 10), bottom = r->at<cv::Vec3b>(35, 10);
    EXPECT_GT(top[2], 200);
    EXPECT_LT(top[0], 60);
    EXPECT_GT(bottom[0], 200);
    EXPECT_LT(bottom[2], 60);
}

TEST(LoadImageTest, ForgedHugePngIsRefusedFromHeader) {
    testing::TmpDir tmp;
    WriteFile(tmp / "bomb.png", ForgedPng(20000, 20000));
    ImageLoadOptions opts;
    opts.max_pixels = 100'000'000;
    auto r = LoadImage(tmp / "bomb.png", opts);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    // "too large" (not "corrupt") proves the header check refused it before decoding.
    EXPECT_NE(r.status().message().find("too large: 20000x20000"), std::string::npos)
        << Msg(r.status());

    // 30000x30000 = 900 MP is above the default limit.
    WriteFile(tmp / "bomb2.png", ForgedPng(30000, 30000));
    auto d = LoadImage(tmp / "bomb2.png");
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.status().message().find("too large: 30000x30000"), std::string::npos)
        << Msg(d.status());
}

TEST(LoadImageTest, ForgedHugeJpegIsRefusedFromHeader) {
    ImageLoadOptions opts;
    opts.max_pixels = 100'000'000;
    auto r = DecodeImage(ForgedJpeg(60000, 60000), opts);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("too large: 60000x60000"), std::string::npos)
        << Msg(r.status());
}

TEST(LoadImageTest, HeaderDimensionsOfRealFilesAreChecked) {
    // Exactly at the limit passes; one pixel over is refused, for each parsed format.
    const cv::Mat card = Card(30, 20);
    for (const char* ext : {".png", ".jpg", ".bmp"}) {
        const Bytes b = Encode(ext, card);
        ImageLoadOptions opts;
        opts.max_pixels = 600;
        EXPECT_TRUE(DecodeImage(b, opts).ok()) << ext;
        opts.max_pixels = 599;
        auto r = DecodeImage(b, opts);
        ASSERT_FALSE(r.ok()) << ext;
        EXPECT_NE(r.status().message().find("too large: 30x20"), std::string::npos)
            << ext << ": " << Msg(r.status());
    }
}

TEST(LoadImageTest, LimitAppliesAfterDecodeForOtherFormats) {
    const Bytes ppm = Encode(".ppm", Card(30, 20));
    ImageLoadOptions opts;
    opts.max_pixels = 599;
    auto r = DecodeImage(ppm, opts);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("too large: 30x20"), std::string::npos) << Msg(r.status());
}

TEST(LoadImageTest, LargeImageDecodesWithoutLimit) {
    testing::TmpDir tmp;
    cv::Mat big(2000, 3000, CV_8UC1, cv::Scalar(0));
    cv::rectangle(big, {100, 100, 500, 400}, cv::Scalar(200), -1);
    WriteFile(tmp / "big.png", Encode(".png", big));
    ImageLoadOptions unlimited;
    unlimited.max_pixels = 0;
    auto r = LoadImage(tmp / "big.png", unlimited);
    ASSERT_TRUE(r.ok()) << Msg(r.status());
    EXPECT_EQ(r->size(), cv::Size(3000, 2000));
    EXPECT_EQ(r->at<cv::Vec3b>(200, 200), cv::Vec3b(200, 200, 200));
    ImageLoadOptions small;
    small.max_pixels = 1'000'000;
    EXPECT_EQ(LoadImage(tmp / "big.png", small).status().code(), StatusCode::kInvalidArgument);
}

TEST(DecodeImageTest, DecodesFromMemory) {
    const cv::Mat card = Card(9, 4);
    auto r = DecodeImage(Encode(".png", card));
    ASSERT_TRUE(r.ok()) << Msg(r.status());
    EXPECT_EQ(cv::norm(*r, card, cv::NORM_INF), 0.0);
}

TEST(DecodeImageTest, EmptyAndGarbageBytes) {
    EXPECT_EQ(DecodeImage({}).status().code(), StatusCode::kInvalidArgument);
    const Bytes sig_only = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0};
    EXPECT_EQ(DecodeImage(sig_only).status().code(), StatusCode::kInvalidArgument);
    const Bytes soi_only = {0xFF, 0xD8, 0xFF};
    EXPECT_EQ(DecodeImage(soi_only).status().code(), StatusCode::kInvalidArgument);
    const Bytes bm_only = {'B', 'M', 1, 2, 3};
    EXPECT_EQ(DecodeImage(bm_only).status().code(), StatusCode::kInvalidArgument);
}

TEST(DecodeImageTest, CorruptedInputsNeverCrash) {
    // Truncations and bit flips of valid files: any result is fine as long as it is a clean
    // Status or a BGR8 image (this is mostly for the sanitizer build).
    std::mt19937 rng(1234);
    for (const char* ext : {".png", ".jpg", ".bmp"}) {
        const Bytes good = Encode(ext, Card(24, 16));
        for (std::size_t cut = 0; cut < good.size(); cut += 1 + good.size() / 40) {
            auto r = DecodeImage(std::span(good.data(), cut));
            if (r.ok()) {
                EXPECT_EQ(r->type(), CV_8UC3) << ext << " cut " << cut;
            }
        }
        for (int trial = 0; trial < 40; ++trial) {
            Bytes bad = good;
            for (int k = 0; k < 3; ++k) {
                bad[rng() % bad.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
            }
            auto r = DecodeImage(bad);
            if (r.ok()) {
                EXPECT_EQ(r->type(), CV_8UC3) << ext;
            }
        }
    }
}

TEST(ToBgr8Test, ConvertsDepthsAndChannels) {
    cv::Mat f01(1, 2, CV_32FC1);
    f01.at<float>(0, 0) = 0.f;
    f01.at<float>(0, 1) = 1.f;
    auto a = ToBgr8(f01);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));

    cv::Mat f255(1, 1, CV_64FC3, cv::Scalar(10, 100, 250));
    auto b = ToBgr8(f255);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->at<cv::Vec3b>(0, 0), cv::Vec3b(10, 100, 250));

    cv::Mat bgr(2, 2, CV_8UC3, cv::Scalar(1, 2, 3));
    auto c = ToBgr8(bgr);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->at<cv::Vec3b>(1, 1), cv::Vec3b(1, 2, 3));
}

TEST(ToBgr8Test, RejectsUnsupportedInput) {
    EXPECT_EQ(ToBgr8(cv::Mat()).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ToBgr8(cv::Mat(2, 2, CV_8UC2)).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ToBgr8(cv::Mat(2, 2, CV_8SC3)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fg
