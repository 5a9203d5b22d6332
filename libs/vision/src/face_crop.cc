// SPDX-License-Identifier: Apache-2.0
#include "face_crop.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>

namespace fg::vision::detail {

cv::Rect ContextCrop(const Rect2f& box, float scale, cv::Size image_size, CropBorder border) {
    const double bw = std::max(1.0, static_cast<double>(box.width));
    const double bh = std::max(1.0, static_cast<double>(box.height));
    const double img_w = std::max(1, image_size.width);
    const double img_h = std::max(1, image_size.height);
    double s = scale;
    if (border == CropBorder::kShift) {
        // The largest scale that still fits (never below the box itself).
        s = std::max(1.0, std::min({s, img_w / bw, img_h / bh}));
    }
    const double w = bw * s;
    const double h = bh * s;
    double x = box.x + box.width / 2.0 - w / 2;
    double y = box.y + box.height / 2.0 - h / 2;
    if (border == CropBorder::kShift) {
        if (w <= img_w) x = std::clamp(x, 0.0, img_w - w);
        if (h <= img_h) y = std::clamp(y, 0.0, img_h - h);
    }
    const int ix = static_cast<int>(std::lround(x));
    const int iy = static_cast<int>(std::lround(y));
    const int iw = std::max(1, static_cast<int>(std::lround(w)));
    const int ih = std::max(1, static_cast<int>(std::lround(h)));
    return {ix, iy, iw, ih};
}

cv::Mat CropResize(const cv::Mat& bgr, const cv::Rect& rect, cv::Size size) {
    const cv::Rect inside = rect & cv::Rect(0, 0, bgr.cols, bgr.rows);
    const double sx = static_cast<double>(size.width) / rect.width;
    const double sy = static_cast<double>(size.height) / rect.height;
    auto resize = [](const cv::Mat& src, cv::Mat& dst, cv::Size to) {
        const bool shrink_much = 2 * to.width < src.cols || 2 * to.height < src.rows;
        cv::resize(src, dst, to, 0, 0, shrink_much ? cv::INTER_AREA : cv::INTER_LINEAR);
    };
    cv::Mat out;
    if (inside == rect) {
        resize(bgr(rect), out, size);
        return out;
    }
    out = cv::Mat(size, bgr.type(), cv::Scalar::all(0));
    if (inside.empty()) return out;
    const int x1 = std::clamp(static_cast<int>(std::lround((inside.x - rect.x) * sx)), 0, size.width - 1);
    const int y1 = std::clamp(static_cast<int>(std::lround((inside.y - rect.y) * sy)), 0, size.height - 1);
    const int x2 = std::clamp(static_cast<int>(std::lround((inside.br().x - rect.x) * sx)), x1 + 1, size.width);
    const int y2 = std::clamp(static_cast<int>(std::lround((inside.br().y - rect.y) * sy)), y1 + 1, size.height);
    cv::Mat part;
    resize(bgr(inside), part, {x2 - x1, y2 - y1});
    part.copyTo(out(cv::Rect(x1, y1, x2 - x1, y2 - y1)));
    return out;
}

cv::Rect SquareCrop(const Rect2f& box, float scale) {
    const double side = std::max({1.0, static_cast<double>(box.width), static_cast<double>(box.height)}) * scale;
    const double cx = box.x + box.width / 2.0;
    const double cy = box.y + box.height / 2.0;
    const int s = std::max(1, static_cast<int>(std::lround(side)));
    return {static_cast<int>(std::lround(cx - side / 2)), static_cast<int>(std::lround(cy - side / 2)), s, s};
}

Result<cv::Mat> AsBgr8(const cv::Mat& image) {
    if (image.empty()) return InvalidArgument("empty image");
    if (image.type() == CV_8UC3) return image;
    if (image.type() == CV_8UC1) {
        cv::Mat bgr;
        cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
        return bgr;
    }
    return InvalidArgument("expected a BGR8 or grey 8-bit image, got type " + std::to_string(image.type()));
}

Status CheckBox(const Rect2f& b) {
    if (!std::isfinite(b.x) || !std::isfinite(b.y) || !std::isfinite(b.width) || !std::isfinite(b.height)) {
        return InvalidArgument("face box has a non-finite coordinate");
    }
    constexpr float kLimit = 1e6f;
    if (std::abs(b.x) > kLimit || std::abs(b.y) > kLimit || std::abs(b.width) > kLimit || std::abs(b.height) > kLimit) {
        return InvalidArgument("face box is out of range (beyond 1e6 px)");
    }
    return Status::Ok();
}

float SoftmaxAt(const float* logits, int n, int index) {
    float mx = logits[0];
    for (int i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
    return static_cast<float>(std::exp(static_cast<double>(logits[index]) - mx) / sum);
}

}  // namespace fg::vision::detail
