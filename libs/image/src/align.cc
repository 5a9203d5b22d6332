// SPDX-License-Identifier: Apache-2.0
#include "fg/image/align.h"

#include <cmath>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "fg/image/image_io.h"

namespace fg {

const Landmarks5& ArcFaceTemplate112() {
    static const Landmarks5 kTemplate = {{
        {38.2946f, 51.6963f},
        {73.5318f, 51.5014f},
        {56.0252f, 71.7366f},
        {41.5493f, 92.3655f},
        {70.7299f, 92.2041f},
    }};
    return kTemplate;
}

Result<AlignedFace> AlignFace(const cv::Mat& bgr, const Landmarks5& landmarks, int size) {
    if (bgr.empty()) return InvalidArgument("AlignFace: empty image");
    // 4096 is far above any recognition input and keeps a bad argument from allocating GBs.
    if (size <= 0 || size > 4096) {
        return InvalidArgument("AlignFace: size must be in 1..4096, got " + std::to_string(size));
    }
    for (const Point2f& p : landmarks) {
        if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
            return InvalidArgument("AlignFace: non-finite landmark");
        }
    }
    const float k = static_cast<float>(size) / 112.f;
    Landmarks5 dst = ArcFaceTemplate112();
    for (Point2f& p : dst) p = {p.x * k, p.y * k};

    AlignedFace out;
    if (!EstimateSimilarity(landmarks, dst, out.transform)) {
        return InvalidArgument("AlignFace: degenerate landmarks (coincident points)");
    }
    for (std::size_t i = 0; i < landmarks.size(); ++i) {
        out.landmarks[i] = out.transform.Apply(landmarks[i]);
    }

    const cv::Mat* src = &bgr;
    cv::Mat converted;
    if (bgr.type() != CV_8UC3) {
        FG_ASSIGN_OR_RETURN(converted, ToBgr8(bgr));
        src = &converted;
    }
    try {
        const cv::Matx23d m(out.transform.m.data());
        cv::warpAffine(*src, out.image, m, cv::Size(size, size), cv::INTER_LINEAR,
                       cv::BORDER_CONSTANT, cv::Scalar::all(0));
    } catch (const cv::Exception& e) {
        return Internal(std::string("AlignFace: warpAffine failed: ") + e.what());
    }
    return out;
}

}  // namespace fg
