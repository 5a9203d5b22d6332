// SPDX-License-Identifier: Apache-2.0
// The enrollment quality gate: faces that would poison the gallery (a stranger matched later
// because a blurry or sideways template sits near everyone) are refused with a reason code.
// It judges detected faces (box, quality), so it lives with them in fg::vision; the gallery
// only ever sees embeddings.
#pragma once

#include <string>
#include <vector>

#include "fg/vision/engine.h"

namespace fg::vision {

struct GateConfig {
    float min_face_px = 40.f;      ///< too_small below this (box min side)
    float min_sharpness = 30.f;    ///< too_blurry below this variance of the Laplacian
    float min_brightness = 40.f;   ///< too_dark below this mean grey level
    float max_brightness = 235.f;  ///< too_bright above this
    float max_abs_yaw = 45.f;      ///< extreme_pose beyond these angles
    float max_abs_pitch = 35.f;
    /// multiple_faces only when a second face is at least this fraction of the main face's
    /// size (a tiny face in the background does not make the photo ambiguous).
    float second_face_ratio = 0.5f;
};

struct GateDecision {
    bool accepted = false;
    int face = -1;                     ///< index of the face to enroll (the largest)
    std::vector<std::string> reasons;  ///< no_face, multiple_faces, too_small, too_blurry,
                                       ///< too_dark, too_bright, extreme_pose
    std::string detail;
};

/// Applies the gate to the faces found in one enrollment photo. Pure and thread-safe.
GateDecision CheckEnrollmentFaces(const std::vector<Face>& faces,
                                  const GateConfig& config = {});

}  // namespace fg::vision
