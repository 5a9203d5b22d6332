// SPDX-License-Identifier: Apache-2.0
#include "../src/decoders.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

namespace fg::vision::detail {
namespace {

constexpr float kEps = 1e-4f;

void ExpectBox(const Rect2f& b, float x, float y, float w, float h) {
    EXPECT_NEAR(b.x, x, kEps);
    EXPECT_NEAR(b.y, y, kEps);
    EXPECT_NEAR(b.width, w, kEps);
    EXPECT_NEAR(b.height, h, kEps);
}

void ExpectPoint(const Point2f& p, float x, float y) {
    EXPECT_NEAR(p.x, x, kEps);
    EXPECT_NEAR(p.y, y, kEps);
}

FaceDetection Face(float x, float y, float w, float h, float score) {
    FaceDetection f;
    f.box = {x, y, w, h};
    f.score = score;
    // Plausible landmarks inside the box.
    f.landmarks = {{{x + 0.3f * w, y + 0.4f * h},
                    {x + 0.7f * w, y + 0.4f * h},
                    {x + 0.5f * w, y + 0.6f * h},
                    {x + 0.35f * w, y + 0.8f * h},
                    {x + 0.65f * w, y + 0.8f * h}}};
    return f;
}

// ---- UltraFace ----

TEST(DecodeUltraFace, LitAnchorGivesBoxInInputPixels) {
    const std::vector<float> scores = {0.9f, 0.1f, 0.1f, 0.9f, 0.6f, 0.4f};
    const std::vector<float> boxes = {0, 0, 1, 1, 0.25f, 0.5f, 0.5f, 0.75f, 0, 0, 0.5f, 0.5f};
    std::vector<FaceDetection> out;
    DecodeUltraFace(scores.data(), boxes.data(), 3, 320, 240, 0.5f, out);
    ASSERT_EQ(out.size(), 1u);
    ExpectBox(out[0].box, 80, 120, 80, 60);
    EXPECT_FLOAT_EQ(out[0].score, 0.9f);
}

TEST(DecodeUltraFace, NanScoreIsDropped) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> scores = {0.f, nan};
    const std::vector<float> boxes = {0, 0, 1, 1};
    std::vector<FaceDetection> out;
    DecodeUltraFace(scores.data(), boxes.data(), 1, 320, 240, 0.f, out);
    EXPECT_TRUE(out.empty());
}

// ---- YuNet ----

struct YuNetTensors {
    // 64x64 input: 8x8, 4x4 and 2x2 cells at strides 8, 16, 32.
    std::vector<float> cls[3], obj[3], bbox[3], kps[3];
    YuNetTensors() {
        const int cells[3] = {64, 16, 4};
        for (int l = 0; l < 3; ++l) {
            cls[l].assign(cells[l], 0.f);
            obj[l].assign(cells[l], 0.f);
            bbox[l].assign(cells[l] * 4, 0.f);
            kps[l].assign(cells[l] * 10, 0.f);
        }
    }
    std::vector<YuNetLevel> Levels() const {
        std::vector<YuNetLevel> v;
        const int strides[3] = {8, 16, 32};
        for (int l = 0; l < 3; ++l) {
            v.push_back({strides[l], cls[l].data(), obj[l].data(), bbox[l].data(), kps[l].data()});
        }
        return v;
    }
};

TEST(DecodeYuNet, LitCellGivesExpectedBoxAndLandmarks) {
    YuNetTensors t;
    // Stride 16, row 1, col 2 (cell 6).
    const int i = 6;
    t.cls[1][i] = 0.81f;
    t.obj[1][i] = 1.0f;
    t.bbox[1][4 * i + 0] = 0.5f;
    t.bbox[1][4 * i + 1] = 0.25f;
    t.bbox[1][4 * i + 2] = std::log(2.f);
    t.bbox[1][4 * i + 3] = 0.f;
    for (int k = 0; k < 5; ++k) {
        t.kps[1][10 * i + 2 * k] = 0.1f * k;
        t.kps[1][10 * i + 2 * k + 1] = -0.1f * k;
    }
    std::vector<FaceDetection> out;
    DecodeYuNet(t.Levels(), 64, 64, 0.5f, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NEAR(out[0].score, 0.9f, kEps);
    // Centre (2.5, 1.25) * 16 = (40, 20); size (2, 1) * 16.
    ExpectBox(out[0].box, 24, 12, 32, 16);
    for (int k = 0; k < 5; ++k) {
        ExpectPoint(out[0].landmarks[k], (2 + 0.1f * k) * 16, (1 - 0.1f * k) * 16);
    }
}

TEST(DecodeYuNet, ScoresAreClampedBeforeTheRoot) {
    YuNetTensors t;
    t.cls[0][0] = 1.5f;    // clamps to 1
    t.obj[0][0] = -0.2f;   // clamps to 0: no NaN from sqrt of a negative
    t.cls[2][3] = 2.0f;
    t.obj[2][3] = 0.64f;   // sqrt(1 * 0.64)
    std::vector<FaceDetection> out;
    DecodeYuNet(t.Levels(), 64, 64, 0.5f, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NEAR(out[0].score, 0.8f, kEps);
    // Stride 32, row 1, col 1: centre (32, 32), size 32.
    ExpectBox(out[0].box, 16, 16, 32, 32);
}

// ---- SCRFD ----

TEST(DecodeScrfd, LitAnchorGivesExpectedBoxAndLandmarks) {
    // 64x64 input, stride 8 only: 8x8 cells, 2 anchors per cell.
    std::vector<float> scores(128, 0.f), boxes(128 * 4, 0.f), kps(128 * 10, 0.f);
    const int i = (3 * 8 + 5) * 2 + 1;   // row 3, col 5, second anchor
    scores[i] = 0.7f;
    const float d[4] = {1, 2, 3, 4};
    for (int k = 0; k < 4; ++k) boxes[4 * i + k] = d[k];
    for (int k = 0; k < 5; ++k) {
        kps[10 * i + 2 * k] = 0.5f * k;
        kps[10 * i + 2 * k + 1] = -0.5f;
    }
    const ScrfdLevel level{8, scores.data(), boxes.data(), kps.data()};
    std::vector<FaceDetection> out;
    DecodeScrfd(std::span<const ScrfdLevel>(&level, 1), 2, 64, 64, 0.5f, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FLOAT_EQ(out[0].score, 0.7f);
    // Anchor centre (40, 24): x1 = 40 - 8, y1 = 24 - 16, x2 = 40 + 24, y2 = 24 + 32.
    ExpectBox(out[0].box, 32, 8, 32, 48);
    for (int k = 0; k < 5; ++k) ExpectPoint(out[0].landmarks[k], 40 + 4.f * k, 20);
}

TEST(DecodeScrfd, BelowThresholdIsDropped) {
    std::vector<float> scores(128, 0.49f), boxes(128 * 4, 1.f);
    const ScrfdLevel level{8, scores.data(), boxes.data(), nullptr};
    std::vector<FaceDetection> out;
    DecodeScrfd(std::span<const ScrfdLevel>(&level, 1), 2, 64, 64, 0.5f, out);
    EXPECT_TRUE(out.empty());
}

// ---- Output grouping ----

TEST(GroupOutputsByStride, ScrfdByShapeInAnyOrderWithOrWithoutBatch) {
    static const std::vector<float> buf(12800 * 10, 0.f);
    auto view = [&](std::string name, std::vector<std::int64_t> shape) {
        return infer::TensorView{std::move(name), std::move(shape), buf.data()};
    };
    // The dynamic export: no batch dim, names unrelated to the role, shuffled order.
    const std::vector<infer::TensorView> outputs = {
        view("451", {800, 4}),   view("448", {12800, 1}), view("471", {3200, 10}),
        view("449", {3200, 1}),  view("474", {800, 10}),  view("450", {800, 1}),
        view("452", {12800, 4}), view("453", {3200, 4}),  view("468", {12800, 10}),
    };
    const int strides[] = {8, 16, 32};
    auto levels = GroupOutputsByStride(outputs, strides, 2, 640, 640, 1);
    ASSERT_TRUE(levels.ok()) << levels.status().ToString();
    ASSERT_EQ(levels->size(), 3u);
    EXPECT_EQ((*levels)[0].scores[0]->name, "448");
    EXPECT_EQ((*levels)[0].boxes->name, "452");
    EXPECT_EQ((*levels)[0].kps->name, "468");
    EXPECT_EQ((*levels)[1].boxes->name, "453");
    EXPECT_EQ((*levels)[2].scores[0]->name, "450");
    EXPECT_EQ((*levels)[2].kps->name, "474");

    // The fixed export: batch dim 1.
    std::vector<infer::TensorView> fixed;
    for (const auto& t : outputs) {
        std::vector<std::int64_t> s = {1};
        s.insert(s.end(), t.shape.begin(), t.shape.end());
        fixed.push_back(view(t.name, s));
    }
    auto levels2 = GroupOutputsByStride(fixed, strides, 2, 640, 640, 1);
    ASSERT_TRUE(levels2.ok()) << levels2.status().ToString();
    EXPECT_EQ((*levels2)[1].kps->name, "471");
}

TEST(GroupOutputsByStride, YuNetScoresByName) {
    static const std::vector<float> buf(6400 * 10, 0.f);
    std::vector<infer::TensorView> outputs;
    for (int s : {8, 16, 32}) {
        const std::int64_t n = (640 / s) * (640 / s);
        // obj before cls: the names decide.
        outputs.push_back({"obj_" + std::to_string(s), {1, n, 1}, buf.data()});
        outputs.push_back({"cls_" + std::to_string(s), {1, n, 1}, buf.data()});
        outputs.push_back({"bbox_" + std::to_string(s), {1, n, 4}, buf.data()});
        outputs.push_back({"kps_" + std::to_string(s), {1, n, 10}, buf.data()});
    }
    const int strides[] = {8, 16, 32};
    auto levels = GroupOutputsByStride(outputs, strides, 1, 640, 640, 2);
    ASSERT_TRUE(levels.ok()) << levels.status().ToString();
    EXPECT_EQ((*levels)[2].scores[0]->name, "cls_32");
    EXPECT_EQ((*levels)[2].scores[1]->name, "obj_32");
}

TEST(GroupOutputsByStride, MissingOutputIsAnError) {
    static const std::vector<float> buf(12800 * 4, 0.f);
    const std::vector<infer::TensorView> outputs = {{"a", {1, 12800, 1}, buf.data()},
                                                    {"b", {1, 12800, 4}, buf.data()}};
    const int strides[] = {8, 16};
    auto levels = GroupOutputsByStride(outputs, strides, 2, 640, 640, 1);
    EXPECT_FALSE(levels.ok());
    EXPECT_EQ(levels.status().code(), StatusCode::kInvalidArgument);
}

// ---- 68 -> 5 ----

TEST(Landmarks68To5, UsesEyeLidsNoseTipAndMouthCorners) {
    std::vector<Point2f> p(68);
    for (int i = 0; i < 68; ++i) p[i] = {static_cast<float>(i), static_cast<float>(2 * i)};
    // Eye corners far away: they must not move the eye centres.
    p[36] = p[39] = p[42] = p[45] = {1000, 1000};
    const Landmarks5 l = Landmarks68To5(p);
    ExpectPoint(l[0], (37 + 38 + 40 + 41) / 4.f, 2 * (37 + 38 + 40 + 41) / 4.f);
    ExpectPoint(l[1], (43 + 44 + 46 + 47) / 4.f, 2 * (43 + 44 + 46 + 47) / 4.f);
    ExpectPoint(l[2], 30, 60);
    ExpectPoint(l[3], 54, 108);    // mean of 48 and 60
    ExpectPoint(l[4], 59, 118);    // mean of 54 and 64
}

TEST(Landmarks68To5, TooFewPointsGiveZeros) {
    std::vector<Point2f> p(5, Point2f{1, 1});
    const Landmarks5 l = Landmarks68To5(p);
    for (const Point2f& q : l) ExpectPoint(q, 0, 0);
}

// ---- Coordinate mapping ----

TEST(UnLetterbox, UndoesScaleAndPad) {
    FaceDetection f = Face(10, 20, 30, 40, 1.f);
    f.dense_landmarks = {{14, 24}};
    const LetterboxInfo lb{0.5f, 0.25f, 4.f, 4.f};
    UnLetterbox(lb, f);
    ExpectBox(f.box, 12, 64, 60, 160);
    ExpectPoint(f.landmarks[0], (10 + 9 - 4) / 0.5f, (20 + 16 - 4) / 0.25f);
    ExpectPoint(f.dense_landmarks[0], 20, 80);
}

TEST(Translate, MovesBoxAndAllLandmarks) {
    FaceDetection f = Face(10, 20, 30, 40, 1.f);
    f.dense_landmarks = {{1, 2}};
    Translate(-5, 3, f);
    ExpectBox(f.box, 5, 23, 30, 40);
    ExpectPoint(f.landmarks[2], 10 + 15 - 5, 20 + 24 + 3);
    ExpectPoint(f.dense_landmarks[0], -4, 5);
}

TEST(ClampBox, ClipsToTheImage) {
    ExpectBox(ClampBox({-10, -5, 50, 30}, 100, 80), 0, 0, 40, 25);
    ExpectBox(ClampBox({90, 70, 50, 30}, 100, 80), 90, 70, 10, 10);
    EXPECT_EQ(ClampBox({200, 10, 5, 5}, 100, 80).area(), 0.f);
    ExpectBox(ClampBox({1, 2, 3, 4}, 100, 80), 1, 2, 3, 4);
}

// ---- Selection ----

TEST(SelectDetections, NmsSizeAndMaxFaces) {
    DetectorConfig config;
    config.min_face_size = 0;
    std::vector<FaceDetection> c = {Face(0, 0, 100, 100, 0.8f), Face(5, 5, 100, 100, 0.9f),
                                    Face(300, 0, 10, 10, 0.95f), Face(200, 0, 50, 50, 0.6f),
                                    Face(400, 0, 60, 60, 0.3f)};
    auto out = SelectDetections(c, config);
    ASSERT_EQ(out.size(), 3u);   // (0,0) suppressed by the stronger (5,5); 0.3 below threshold
    EXPECT_FLOAT_EQ(out[0].score, 0.95f);
    EXPECT_FLOAT_EQ(out[1].score, 0.9f);
    EXPECT_FLOAT_EQ(out[2].score, 0.6f);

    config.min_face_size = 20;
    out = SelectDetections(c, config);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_FLOAT_EQ(out[0].score, 0.9f);

    config.max_faces = 1;
    out = SelectDetections(c, config);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FLOAT_EQ(out[0].score, 0.9f);
}

TEST(SelectDetections, BoxNestedInAStrongerFaceIsDropped) {
    DetectorConfig config;
    // An "eye" inside a face (IoU far below nms_iou), and a real neighbour touching the face.
    std::vector<FaceDetection> c = {Face(0, 0, 140, 140, 1.f), Face(30, 35, 35, 25, 0.9f),
                                    Face(120, 0, 100, 100, 0.8f)};
    auto out = SelectDetections(c, config);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_FLOAT_EQ(out[1].score, 0.8f);
}

TEST(DropDuplicateFaces, SameLandmarksAreOneFace) {
    std::vector<FaceDetection> faces = {Face(20, 30, 110, 110, 0.8f), Face(0, 0, 100, 120, 0.5f),
                                        Face(300, 0, 100, 100, 0.4f)};
    // The second box is off-centre but found the same eyes, nose and mouth.
    faces[1].landmarks = faces[0].landmarks;
    faces[1].landmarks[1].x += 5;
    DropDuplicateFaces(faces);
    ASSERT_EQ(faces.size(), 2u);
    EXPECT_FLOAT_EQ(faces[0].score, 0.8f);
    EXPECT_FLOAT_EQ(faces[1].score, 0.4f);
}

TEST(LandmarkCrop, SquareAndShiftedDown) {
    EXPECT_EQ(LandmarkCrop({100, 100, 60, 80}, 1.0f, 0.05f), cv::Rect(90, 104, 80, 80));
    EXPECT_EQ(LandmarkCrop({-20, 400, 60, 100}, 1.2f, 0.f), cv::Rect(-50, 390, 120, 120));
}

TEST(CropWithBorder, BlackOutsideTheImage) {
    const cv::Mat img(10, 20, CV_8UC3, cv::Scalar(1, 2, 3));
    const cv::Mat inside = CropWithBorder(img, cv::Rect(2, 3, 4, 5));
    EXPECT_EQ(inside.size(), cv::Size(4, 5));
    EXPECT_EQ(inside.data, img.data + img.step * 3 + 2 * 3);   // a view, no copy
    const cv::Mat edge = CropWithBorder(img, cv::Rect(-2, 8, 5, 4));
    ASSERT_EQ(edge.size(), cv::Size(5, 4));
    EXPECT_EQ(edge.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
    EXPECT_EQ(edge.at<cv::Vec3b>(0, 2), cv::Vec3b(1, 2, 3));
    EXPECT_EQ(edge.at<cv::Vec3b>(1, 4), cv::Vec3b(1, 2, 3));
    EXPECT_EQ(edge.at<cv::Vec3b>(2, 4), cv::Vec3b(0, 0, 0));
    const cv::Mat outside = CropWithBorder(img, cv::Rect(30, 30, 3, 3));
    EXPECT_EQ(cv::countNonZero(outside.reshape(1)), 0);
}

// ---- Config ----

TEST(DetectorConfig, Validate) {
    EXPECT_TRUE(DetectorConfig{}.Validate().ok());
    DetectorConfig c;
    c.score_threshold = 1.5f;
    EXPECT_FALSE(c.Validate().ok());
    c = {};
    c.nms_iou = 0.f;
    EXPECT_FALSE(c.Validate().ok());
    c = {};
    c.max_faces = -1;
    EXPECT_FALSE(c.Validate().ok());
    c = {};
    c.min_face_size = -1;
    EXPECT_FALSE(c.Validate().ok());
    c = {};
    c.pad_ratio = 0.f;
    EXPECT_FALSE(c.Validate().ok());
    c.pad = PadPolicy::kNever;
    EXPECT_TRUE(c.Validate().ok());
    c.pad_ratio = std::numeric_limits<float>::quiet_NaN();
    EXPECT_FALSE(c.Validate().ok());
}

// ---- The shared driver, with a fake single pass ----

/// "Finds" one face at the centre of any frame with a black left border of at least
/// `min_border` pixels, like a detector that needs context around a tight crop.
class FakeDetector final : public DetectorBase {
  public:
    FakeDetector(const DetectorConfig& config, int min_border, int input_side = 1000)
        : DetectorBase(config, DetectorInfo{"fake", "fake", input_side, input_side}),
          min_border_(min_border) {}
    std::vector<cv::Size> seen;

  protected:
    Status DetectCandidates(const cv::Mat& bgr, std::vector<FaceDetection>& out) override {
        seen.push_back(bgr.size());
        int border = 0;
        while (border < bgr.cols && bgr.at<cv::Vec3b>(bgr.rows / 2, border) == cv::Vec3b(0, 0, 0)) {
            ++border;
        }
        if (border < min_border_) return Status::Ok();
        // A face a bit larger than the original image, centred.
        const float w = 1.2f * (bgr.cols - 2 * border);
        const float h = 1.2f * (bgr.rows - 2.f * border * bgr.rows / bgr.cols);
        out.push_back(Face(bgr.cols / 2.f - w / 2, bgr.rows / 2.f - h / 2, w, h, 0.9f));
        return Status::Ok();
    }

  private:
    int min_border_;
};

TEST(DetectorBase, PadsOnlyWhenNothingFoundAndMapsBack) {
    const cv::Mat img(100, 100, CV_8UC3, cv::Scalar(50, 60, 70));
    DetectorConfig config;   // kIfNoneFound, pad_ratio 0.5
    FakeDetector det(config, 10);
    auto r = det.Detect(img);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(det.seen.size(), 2u);
    EXPECT_EQ(det.seen[1], cv::Size(200, 200));
    ASSERT_EQ(r->size(), 1u);
    // The face (120 px, centred) is clamped to the image; landmarks keep their position.
    ExpectBox((*r)[0].box, 0, 0, 100, 100);
    ExpectPoint((*r)[0].landmarks[0], -10 + 0.3f * 120, -10 + 0.4f * 120);

    config.pad = PadPolicy::kNever;
    FakeDetector never(config, 10);
    r = never.Detect(img);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->empty());
    EXPECT_EQ(never.seen.size(), 1u);

    config.pad = PadPolicy::kAlways;
    config.pad_ratio = 0.25f;
    FakeDetector always(config, 0);
    r = always.Detect(img);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(always.seen.size(), 1u);
    EXPECT_EQ(always.seen[0], cv::Size(150, 150));
    ASSERT_EQ(r->size(), 1u);
}

TEST(DetectorBase, PaddedFrameIsShrunkToTheModelInput) {
    const cv::Mat img(100, 100, CV_8UC3, cv::Scalar(50, 60, 70));
    DetectorConfig config;
    config.min_face_size = 110;   // in the caller's pixels, not in the shrunk frame's
    FakeDetector det(config, 10, 64);
    auto r = det.Detect(img);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(det.seen.size(), 2u);
    EXPECT_EQ(det.seen[1], cv::Size(64, 64));   // 32 px of image, 16 px of border each side
    ASSERT_EQ(r->size(), 1u);
    ExpectBox((*r)[0].box, 0, 0, 100, 100);
    ExpectPoint((*r)[0].landmarks[0], -10 + 0.3f * 120, -10 + 0.4f * 120);
}

TEST(DetectorBase, FoundWithoutPaddingIsNotRetried) {
    cv::Mat img(80, 120, CV_8UC3, cv::Scalar(50, 60, 70));
    img.colRange(0, 20).setTo(cv::Scalar::all(0));
    FakeDetector det(DetectorConfig{}, 10);
    auto r = det.Detect(img);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(det.seen.size(), 1u);
    EXPECT_EQ(r->size(), 1u);
}

TEST(DetectorBase, RejectsBadImagesAndIgnoresTinyOnes) {
    FakeDetector det(DetectorConfig{}, 0);
    EXPECT_EQ(det.Detect(cv::Mat()).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(det.Detect(cv::Mat(10, 10, CV_8UC1)).status().code(), StatusCode::kInvalidArgument);
    auto r = det.Detect(cv::Mat(1, 1, CV_8UC3, cv::Scalar::all(0)));
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->empty());
    EXPECT_TRUE(det.seen.empty());
}

}  // namespace
}  // namespace fg::vision::detail
