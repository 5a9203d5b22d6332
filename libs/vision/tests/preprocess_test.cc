// SPDX-License-Identifier: Apache-2.0
#include "../src/preprocess.h"

#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

namespace fg::vision::detail {
namespace {

infer::InputFormat Format(int w, int h, infer::ColorOrder color, bool letterbox) {
    infer::InputFormat f;
    f.width = w;
    f.height = h;
    f.color = color;
    f.letterbox = letterbox;
    return f;
}

// One BGR colour everywhere: B=10, G=20, R=30.
cv::Mat Solid(int w, int h) { return cv::Mat(h, w, CV_8UC3, cv::Scalar(10, 20, 30)); }

TEST(ToTensor, LetterboxKeepsAspectAtTopLeftAndPadsBlack) {
    infer::InputFormat f = Format(8, 8, infer::ColorOrder::kBgr, true);
    f.mean = {5, 5, 5};
    f.scale = {0.5f, 0.5f, 0.5f};
    std::vector<float> t(3 * 64, -99.f);
    const LetterboxInfo lb = ToTensor(Solid(4, 2), f, t.data());
    EXPECT_FLOAT_EQ(lb.scale_x, 2.f);
    EXPECT_FLOAT_EQ(lb.scale_y, 2.f);
    EXPECT_FLOAT_EQ(lb.pad_x, 0.f);
    EXPECT_FLOAT_EQ(lb.pad_y, 0.f);
    for (int y = 0; y < 8; ++y) {
        for (int x = 0; x < 8; ++x) {
            // Image rows 0..3, black (pixel 0, normalised) below.
            const bool inside = y < 4;
            const int i = y * 8 + x;
            EXPECT_FLOAT_EQ(t[0 * 64 + i], inside ? (10 - 5) * 0.5f : -2.5f) << x << "," << y;
            EXPECT_FLOAT_EQ(t[2 * 64 + i], inside ? (30 - 5) * 0.5f : -2.5f) << x << "," << y;
        }
    }
}

TEST(ToTensor, TallImagePadsOnTheRight) {
    const infer::InputFormat f = Format(8, 4, infer::ColorOrder::kBgr, true);
    std::vector<float> t(3 * 32, -99.f);
    const LetterboxInfo lb = ToTensor(Solid(10, 20), f, t.data());
    EXPECT_FLOAT_EQ(lb.scale_x, 0.2f);    // 10 px -> 2 px
    EXPECT_FLOAT_EQ(lb.scale_y, 0.2f);    // 20 px -> 4 px
    EXPECT_FLOAT_EQ(t[1 * 32 + 3 * 8 + 1], 20.f);
    EXPECT_FLOAT_EQ(t[1 * 32 + 3 * 8 + 2], 0.f);
    EXPECT_FLOAT_EQ(t[1 * 32 + 0 * 8 + 7], 0.f);
}

TEST(ToTensor, StretchFillsTheInput) {
    const infer::InputFormat f = Format(8, 8, infer::ColorOrder::kBgr, false);
    std::vector<float> t(3 * 64, -99.f);
    const LetterboxInfo lb = ToTensor(Solid(4, 2), f, t.data());
    EXPECT_FLOAT_EQ(lb.scale_x, 2.f);
    EXPECT_FLOAT_EQ(lb.scale_y, 4.f);
    for (float v : std::vector<float>(t.begin(), t.begin() + 64)) EXPECT_FLOAT_EQ(v, 10.f);
}

TEST(ToTensor, ChannelOrders) {
    std::vector<float> t(3 * 4);
    ToTensor(Solid(2, 2), Format(2, 2, infer::ColorOrder::kBgr, true), t.data());
    EXPECT_EQ((std::vector<float>{t[0], t[4], t[8]}), (std::vector<float>{10, 20, 30}));
    ToTensor(Solid(2, 2), Format(2, 2, infer::ColorOrder::kRgb, true), t.data());
    EXPECT_EQ((std::vector<float>{t[0], t[4], t[8]}), (std::vector<float>{30, 20, 10}));
    std::vector<float> g(4, -1.f);
    ToTensor(Solid(2, 2), Format(2, 2, infer::ColorOrder::kGray, true), g.data());
    // 0.299 R + 0.587 G + 0.114 B = 21.88, rounded by OpenCV.
    EXPECT_FLOAT_EQ(g[0], 22.f);
    EXPECT_FLOAT_EQ(g[3], 22.f);
}

TEST(ToTensor, PerChannelMeanAndScale) {
    infer::InputFormat f = Format(2, 2, infer::ColorOrder::kRgb, true);
    f.mean = {127.5f, 10.f, 0.f};
    f.scale = {1 / 128.f, 2.f, 0.5f};
    std::vector<float> t(3 * 4);
    ToTensor(Solid(2, 2), f, t.data());
    EXPECT_FLOAT_EQ(t[0], (30 - 127.5f) / 128.f);   // R plane
    EXPECT_FLOAT_EQ(t[4], (20 - 10.f) * 2.f);       // G plane
    EXPECT_FLOAT_EQ(t[8], 10 * 0.5f);               // B plane
}

TEST(ToTensor, WritesIntoABatchSlot) {
    const infer::InputFormat f = Format(2, 2, infer::ColorOrder::kBgr, true);
    std::vector<float> t(2 * 12, -1.f);
    ToTensor(Solid(2, 2), f, t.data() + 12);
    EXPECT_FLOAT_EQ(t[11], -1.f);
    EXPECT_FLOAT_EQ(t[12], 10.f);
    EXPECT_FLOAT_EQ(t[23], 30.f);
}

TEST(ToTensor, OnePixelImageAndNonContinuousRoi) {
    const infer::InputFormat f = Format(4, 4, infer::ColorOrder::kBgr, true);
    std::vector<float> t(3 * 16);
    const LetterboxInfo lb = ToTensor(Solid(1, 1), f, t.data());
    EXPECT_FLOAT_EQ(lb.scale_x, 4.f);
    EXPECT_FLOAT_EQ(t[15], 10.f);
    cv::Mat big = Solid(10, 10);
    big(cv::Rect(0, 0, 5, 10)).setTo(cv::Scalar(1, 2, 3));
    ToTensor(big(cv::Rect(1, 1, 4, 4)), f, t.data());   // a view with a row stride
    EXPECT_FLOAT_EQ(t[0], 1.f);
    EXPECT_FLOAT_EQ(t[32 + 15], 3.f);
}

TEST(CheckBgr8, AcceptsOnlyNonEmptyBgr8) {
    EXPECT_TRUE(CheckBgr8(Solid(3, 3)).ok());
    EXPECT_EQ(CheckBgr8(cv::Mat()).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(CheckBgr8(cv::Mat(3, 3, CV_8UC1)).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(CheckBgr8(cv::Mat(3, 3, CV_8UC4)).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(CheckBgr8(cv::Mat(3, 3, CV_32FC3)).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(Channels(Format(2, 2, infer::ColorOrder::kGray, true)), 1);
    EXPECT_EQ(Channels(Format(2, 2, infer::ColorOrder::kRgb, true)), 3);
}

}  // namespace
}  // namespace fg::vision::detail
