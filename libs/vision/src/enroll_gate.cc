// SPDX-License-Identifier: Apache-2.0
#include "fg/vision/enroll_gate.h"

#include <cmath>
#include <cstdio>

namespace fg::vision {

GateDecision CheckEnrollmentFaces(const std::vector<Face>& faces, const GateConfig& c) {
    GateDecision d;
    if (faces.empty()) {
        d.reasons.push_back("no_face");
        d.detail = "no face detected";
        return d;
    }
    auto side = [](const Face& f) {
        return std::min(f.detection.box.width, f.detection.box.height);
    };
    int main = 0;
    for (int i = 1; i < int(faces.size()); ++i) {
        if (side(faces[size_t(i)]) > side(faces[size_t(main)])) main = i;
    }
    d.face = main;
    char buf[256];
    std::string detail;
    for (int i = 0; i < int(faces.size()); ++i) {
        if (i != main &&
            side(faces[size_t(i)]) >= c.second_face_ratio * side(faces[size_t(main)])) {
            d.reasons.push_back("multiple_faces");
            std::snprintf(buf, sizeof buf, "%zu faces of similar size; ", faces.size());
            detail += buf;
            break;
        }
    }
    const QualityReport& q = faces[size_t(main)].quality;
    if (q.face_size_px < c.min_face_px) {
        d.reasons.push_back("too_small");
        std::snprintf(buf, sizeof buf, "face %.0f px < %.0f; ", q.face_size_px, c.min_face_px);
        detail += buf;
    }
    if (q.sharpness < c.min_sharpness) {
        d.reasons.push_back("too_blurry");
        std::snprintf(buf, sizeof buf, "sharpness %.1f < %.1f; ", q.sharpness, c.min_sharpness);
        detail += buf;
    }
    if (q.brightness < c.min_brightness) {
        d.reasons.push_back("too_dark");
        std::snprintf(buf, sizeof buf, "brightness %.0f < %.0f; ", q.brightness, c.min_brightness);
        detail += buf;
    } else if (q.brightness > c.max_brightness) {
        d.reasons.push_back("too_bright");
        std::snprintf(buf, sizeof buf, "brightness %.0f > %.0f; ", q.brightness, c.max_brightness);
        detail += buf;
    }
    // A NaN pose means the landmarks were degenerate: as unusable as an extreme pose.
    if (!(std::fabs(q.pose.yaw) <= c.max_abs_yaw) ||
        !(std::fabs(q.pose.pitch) <= c.max_abs_pitch)) {
        d.reasons.push_back("extreme_pose");
        std::snprintf(buf, sizeof buf, "yaw %.0f pitch %.0f; ", q.pose.yaw, q.pose.pitch);
        detail += buf;
    }
    if (detail.size() >= 2) detail.resize(detail.size() - 2);
    d.detail = detail;
    d.accepted = d.reasons.empty();
    return d;
}

}  // namespace fg::vision
