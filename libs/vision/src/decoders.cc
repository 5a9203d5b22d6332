// SPDX-License-Identifier: Apache-2.0
#include "decoders.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace fg::vision::detail {
namespace {

float Clamp01(float v) { return std::clamp(v, 0.f, 1.f); }

Rect2f FromCorners(float x1, float y1, float x2, float y2) {
    return {x1, y1, x2 - x1, y2 - y1};
}

float IntersectionArea(const Rect2f& a, const Rect2f& b) {
    const float w = std::min(a.right(), b.right()) - std::max(a.x, b.x);
    const float h = std::min(a.bottom(), b.bottom()) - std::max(a.y, b.y);
    return w > 0 && h > 0 ? w * h : 0.f;
}

float Distance(Point2f a, Point2f b) { return std::hypot(a.x - b.x, a.y - b.y); }

}  // namespace

void DecodeUltraFace(const float* scores, const float* boxes, int num_anchors, int input_width,
                     int input_height, float score_threshold, std::vector<FaceDetection>& out) {
    const float w = static_cast<float>(input_width);
    const float h = static_cast<float>(input_height);
    for (int i = 0; i < num_anchors; ++i) {
        const float score = scores[2 * i + 1];
        if (!(score >= score_threshold)) continue;   // also drops NaN
        const float* b = boxes + 4 * i;
        FaceDetection det;
        det.box = FromCorners(b[0] * w, b[1] * h, b[2] * w, b[3] * h);
        det.score = score;
        out.push_back(std::move(det));
    }
}

void DecodeYuNet(std::span<const YuNetLevel> levels, int input_width, int input_height,
                 float score_threshold, std::vector<FaceDetection>& out) {
    for (const YuNetLevel& level : levels) {
        const int cols = input_width / level.stride;
        const int rows = input_height / level.stride;
        const float s = static_cast<float>(level.stride);
        for (int i = 0; i < rows * cols; ++i) {
            const float score = std::sqrt(Clamp01(level.cls[i]) * Clamp01(level.obj[i]));
            if (!(score >= score_threshold)) continue;
            const float col = static_cast<float>(i % cols);
            const float row = static_cast<float>(i / cols);
            const float* b = level.bbox + 4 * i;
            const float cx = (col + b[0]) * s;
            const float cy = (row + b[1]) * s;
            const float bw = std::exp(b[2]) * s;
            const float bh = std::exp(b[3]) * s;
            FaceDetection det;
            det.box = {cx - bw / 2, cy - bh / 2, bw, bh};
            det.score = score;
            const float* k = level.kps + 10 * i;
            for (int j = 0; j < 5; ++j) {
                det.landmarks[j] = {(col + k[2 * j]) * s, (row + k[2 * j + 1]) * s};
            }
            out.push_back(std::move(det));
        }
    }
}

void DecodeScrfd(std::span<const ScrfdLevel> levels, int anchors_per_cell, int input_width,
                 int input_height, float score_threshold, std::vector<FaceDetection>& out) {
    for (const ScrfdLevel& level : levels) {
        const int cols = input_width / level.stride;
        const int rows = input_height / level.stride;
        const float s = static_cast<float>(level.stride);
        const int n = rows * cols * anchors_per_cell;
        for (int i = 0; i < n; ++i) {
            const float score = level.scores[i];
            if (!(score >= score_threshold)) continue;
            const int cell = i / anchors_per_cell;
            const float cx = static_cast<float>(cell % cols) * s;
            const float cy = static_cast<float>(cell / cols) * s;
            const float* b = level.boxes + 4 * i;
            FaceDetection det;
            det.box = FromCorners(cx - b[0] * s, cy - b[1] * s, cx + b[2] * s, cy + b[3] * s);
            det.score = score;
            if (level.kps != nullptr) {
                const float* k = level.kps + 10 * i;
                for (int j = 0; j < 5; ++j) {
                    det.landmarks[j] = {cx + k[2 * j] * s, cy + k[2 * j + 1] * s};
                }
            }
            out.push_back(std::move(det));
        }
    }
}

Result<std::vector<LevelOutputs>> GroupOutputsByStride(std::span<const infer::TensorView> outputs,
                                                       std::span<const int> strides,
                                                       int anchors_per_cell, int input_width,
                                                       int input_height, int scores_per_level) {
    std::vector<LevelOutputs> levels;
    for (int stride : strides) {
        if (stride <= 0) return InvalidArgument("stride must be positive");
        LevelOutputs level;
        level.stride = stride;
        const std::int64_t rows = static_cast<std::int64_t>(input_height / stride) *
                                  (input_width / stride) * anchors_per_cell;
        const infer::TensorView* named_cls = nullptr;
        const infer::TensorView* named_obj = nullptr;
        for (const infer::TensorView& t : outputs) {
            if (t.shape.empty() || t.data == nullptr) continue;
            const std::int64_t last = t.shape.back();
            if (last <= 0 || t.numel() != rows * last) continue;
            // Leading dims other than the rows must be 1 (batch), or absent.
            if (t.shape.size() >= 2 && t.shape[t.shape.size() - 2] != rows) continue;
            if (last == 1) {
                level.scores.push_back(&t);
                if (t.name.rfind("cls", 0) == 0) named_cls = &t;
                if (t.name.rfind("obj", 0) == 0) named_obj = &t;
            } else if (last == 4) {
                if (level.boxes != nullptr) return InvalidArgument("two box outputs for a stride");
                level.boxes = &t;
            } else if (last == 10) {
                if (level.kps != nullptr) {
                    return InvalidArgument("two landmark outputs for a stride");
                }
                level.kps = &t;
            }
        }
        if (named_cls != nullptr && named_obj != nullptr && scores_per_level == 2) {
            level.scores = {named_cls, named_obj};
        }
        if (static_cast<int>(level.scores.size()) != scores_per_level || level.boxes == nullptr) {
            return InvalidArgument("outputs do not match stride " + std::to_string(stride) +
                                   " (" + std::to_string(rows) + " anchors): found " +
                                   std::to_string(level.scores.size()) + " score outputs, " +
                                   (level.boxes ? "a" : "no") + " box output");
        }
        levels.push_back(std::move(level));
    }
    return levels;
}

Landmarks5 Landmarks68To5(std::span<const Point2f> p) {
    auto mean = [&](std::initializer_list<int> idx) {
        Point2f m;
        for (int i : idx) {
            m.x += p[i].x;
            m.y += p[i].y;
        }
        const float n = static_cast<float>(idx.size());
        return Point2f{m.x / n, m.y / n};
    };
    Landmarks5 out{};
    if (p.size() < 68) return out;
    out[0] = mean({37, 38, 40, 41});
    out[1] = mean({43, 44, 46, 47});
    out[2] = p[30];
    out[3] = mean({48, 60});
    out[4] = mean({54, 64});
    return out;
}

void UnLetterbox(const LetterboxInfo& lb, FaceDetection& det) {
    auto map = [&](Point2f p) {
        return Point2f{(p.x - lb.pad_x) / lb.scale_x, (p.y - lb.pad_y) / lb.scale_y};
    };
    const Point2f tl = map({det.box.x, det.box.y});
    det.box = {tl.x, tl.y, det.box.width / lb.scale_x, det.box.height / lb.scale_y};
    for (Point2f& p : det.landmarks) p = map(p);
    for (Point2f& p : det.dense_landmarks) p = map(p);
}

void Translate(float dx, float dy, FaceDetection& det) {
    det.box.x += dx;
    det.box.y += dy;
    for (Point2f& p : det.landmarks) p = {p.x + dx, p.y + dy};
    for (Point2f& p : det.dense_landmarks) p = {p.x + dx, p.y + dy};
}

Rect2f ClampBox(const Rect2f& box, int width, int height) {
    const float x1 = std::clamp(box.x, 0.f, static_cast<float>(width));
    const float y1 = std::clamp(box.y, 0.f, static_cast<float>(height));
    const float x2 = std::clamp(box.right(), 0.f, static_cast<float>(width));
    const float y2 = std::clamp(box.bottom(), 0.f, static_cast<float>(height));
    return {x1, y1, std::max(0.f, x2 - x1), std::max(0.f, y2 - y1)};
}

std::vector<FaceDetection> SelectDetections(std::vector<FaceDetection> candidates,
                                            const DetectorConfig& config) {
    // Size filter first, so a tiny box cannot suppress a big one.
    if (config.min_face_size > 0) {
        std::erase_if(candidates, [&](const FaceDetection& d) {
            return std::min(d.box.width, d.box.height) < config.min_face_size;
        });
    }
    std::vector<Rect2f> boxes;
    std::vector<float> scores;
    boxes.reserve(candidates.size());
    scores.reserve(candidates.size());
    for (const FaceDetection& d : candidates) {
        boxes.push_back(d.box);
        scores.push_back(d.score);
    }
    const std::vector<int> keep = Nms(boxes, scores, config.nms_iou, config.score_threshold);
    std::vector<FaceDetection> out;
    out.reserve(keep.size());
    for (int i : keep) {
        // A box lying inside a stronger one is a part of that face (UltraFace fires on the eyes
        // of large faces), not another face: faces do not nest.
        const Rect2f& b = candidates[i].box;
        const bool nested = std::any_of(out.begin(), out.end(), [&](const FaceDetection& k) {
            return IntersectionArea(k.box, b) >= kNestedFraction * b.area();
        });
        if (nested) continue;
        out.push_back(std::move(candidates[i]));
        if (config.max_faces > 0 && static_cast<int>(out.size()) >= config.max_faces) break;
    }
    return out;
}

void DropDuplicateFaces(std::vector<FaceDetection>& faces) {
    std::vector<FaceDetection> out;
    out.reserve(faces.size());
    for (FaceDetection& f : faces) {
        const bool duplicate = std::any_of(out.begin(), out.end(), [&](const FaceDetection& k) {
            const float eyes = Distance(k.landmarks[0], k.landmarks[1]);
            float mean = 0;
            for (int j = 0; j < 5; ++j) mean += Distance(k.landmarks[j], f.landmarks[j]) / 5;
            return eyes > 0 && mean < kDuplicateLandmarkDistance * eyes;
        });
        if (!duplicate) out.push_back(std::move(f));
    }
    faces = std::move(out);
}

cv::Rect LandmarkCrop(const Rect2f& box, float expand, float shift_down) {
    const float side = std::max(box.width, box.height) * expand;
    const float cx = box.x + box.width / 2;
    const float cy = box.y + box.height / 2 + shift_down * box.height;
    const int x1 = static_cast<int>(std::lround(cx - side / 2));
    const int y1 = static_cast<int>(std::lround(cy - side / 2));
    const int s = static_cast<int>(std::lround(side));
    return {x1, y1, s, s};
}

cv::Mat CropWithBorder(const cv::Mat& image, const cv::Rect& rect) {
    const cv::Rect inside = rect & cv::Rect(0, 0, image.cols, image.rows);
    if (inside == rect) return image(rect);
    cv::Mat out(rect.size(), image.type(), cv::Scalar::all(0));
    if (!inside.empty()) image(inside).copyTo(out(inside - rect.tl()));
    return out;
}

}  // namespace fg::vision::detail
