// SPDX-License-Identifier: Apache-2.0
// End-to-end engine tests on dlib's photos: 55 face chips of 5 people.
#include <algorithm>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "fg/base/paths.h"
#include "fg/image/image_io.h"
#include "fg/testing/testing.h"
#include "fg/vision/engine.h"
#include "fg/vision/liveness.h"

namespace fg::vision {
namespace {

struct Chip {
    std::string person;
    std::filesystem::path path;
};

std::vector<Chip> Johns() {
    std::vector<Chip> chips;
    for (const auto& d : std::filesystem::directory_iterator(DlibExamplesDir() / "johns")) {
        for (const auto& f : std::filesystem::directory_iterator(d.path())) {
            chips.push_back({d.path().filename().string(), f.path()});
        }
    }
    std::sort(chips.begin(), chips.end(), [](const Chip& a, const Chip& b) { return a.path < b.path; });
    return chips;
}

class EngineJohnsTest : public ::testing::TestWithParam<std::string> {};

// Every chip gives one face, and 1:1 decisions at the pack's threshold separate the five
// people perfectly: every genuine pair scores above every impostor pair.
TEST_P(EngineJohnsTest, SeparatesFivePeoplePerfectly) {
    FG_REQUIRE_PATH(DlibExamplesDir() / "johns");
    auto pack = infer::ResolvePack(GetParam());
    ASSERT_TRUE(pack.ok());
    for (const auto& m : pack->models) {
        if (m.role == infer::ModelRole::kDetector || m.role == infer::ModelRole::kEmbedder) FG_REQUIRE_PATH(m.path);
    }
    auto engine = Engine::Create({.pack = GetParam()});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto worker = (*engine)->CreateWorker();
    ASSERT_TRUE(worker.ok());
    const auto chips = Johns();
    ASSERT_EQ(chips.size(), 55u);
    std::vector<Embedding> embs;
    for (const Chip& c : chips) {
        auto img = LoadImage(c.path);
        ASSERT_TRUE(img.ok());
        auto faces = (*worker)->Analyze(*img);
        ASSERT_TRUE(faces.ok()) << faces.status().ToString();
        ASSERT_EQ(faces->size(), 1u) << c.path;
        ASSERT_TRUE(faces->front().embedding.has_value());
        embs.push_back(*faces->front().embedding);
    }
    float min_genuine = 2, max_impostor = -2;
    for (size_t i = 0; i < chips.size(); ++i) {
        for (size_t j = i + 1; j < chips.size(); ++j) {
            const float s = CosineSimilarity(embs[i], embs[j]);
            if (chips[i].person == chips[j].person) {
                min_genuine = std::min(min_genuine, s);
            } else {
                max_impostor = std::max(max_impostor, s);
            }
        }
    }
    const float t = DefaultVerifyThreshold((*engine)->pack());
    RecordProperty("min_genuine", std::to_string(min_genuine));
    RecordProperty("max_impostor", std::to_string(max_impostor));
    EXPECT_GT(min_genuine, t) << "a genuine pair falls below the threshold";
    EXPECT_LT(max_impostor, t) << "an impostor pair reaches the threshold";
}

INSTANTIATE_TEST_SUITE_P(Packs, EngineJohnsTest,
                         ::testing::Values("default", "yunet_s", "scrfd_500m", "mobilefacenet128"));

TEST(Engine, DetectorEmbedderOverrides) {
    FG_REQUIRE_PATH(SharedDir() / "models/yunet_s_640_2023mar.onnx");
    FG_REQUIRE_PATH(ModelsDir() / "fr_feature.onnx");
    auto engine = Engine::Create({.pack = "default", .detector_pack = "yunet_s"});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    EXPECT_NE((*engine)->detector_info().id.find("yunet"), std::string::npos);
    ASSERT_NE((*engine)->embedder_info(), nullptr);
    EXPECT_EQ((*engine)->embedder_info()->model_id.rfind("fr_feature@", 0), 0u);

    auto bad = Engine::Create({.pack = "default", .embedder_pack = "no_such_pack"});
    EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
}

TEST(Engine, EmptyAndTinyImages) {
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    auto engine = Engine::Create({.pack = "default"});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto worker = (*engine)->CreateWorker();
    ASSERT_TRUE(worker.ok());
    EXPECT_FALSE((*worker)->Analyze(cv::Mat()).ok());
    for (int s : {1, 2, 7}) {
        auto faces = (*worker)->Analyze(cv::Mat(s, s, CV_8UC3, cv::Scalar::all(128)));
        ASSERT_TRUE(faces.ok()) << s << ": " << faces.status().ToString();
        EXPECT_TRUE(faces->empty());
    }
    auto blank = (*worker)->Analyze(cv::Mat(480, 640, CV_8UC3, cv::Scalar::all(0)));
    ASSERT_TRUE(blank.ok());
    EXPECT_TRUE(blank->empty());
}

// The face of the first dlib chip, or an empty image when the photos are missing.
cv::Mat FirstChip() {
    const auto chips = Johns();
    if (chips.empty()) return {};
    auto img = LoadImage(chips.front().path);
    return img.ok() ? *img : cv::Mat();
}

// Liveness and attribute models are loaded once, on the engine's backend, and shared.
TEST(Engine, LazyModelsAreCachedAndShared) {
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    FG_REQUIRE_PATH(testing::ModelPath("fr_liveness.onnx"));
    FG_REQUIRE_PATH(testing::ModelPath("fr_pose.onnx"));
    auto engine = Engine::Create({.pack = "default", .load_embedder = false});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto a = (*engine)->Liveness();
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto b = (*engine)->Liveness(DefaultLivenessPreset());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(a->get(), b->get()) << "\"\" is the default preset, loaded once";
    EXPECT_EQ((*a)->info().name, DefaultLivenessPreset());

    auto pose1 = (*engine)->Attributes({.pose = true});
    ASSERT_TRUE(pose1.ok()) << pose1.status().ToString();
    auto pose2 = (*engine)->Attributes({.pose = true});
    ASSERT_TRUE(pose2.ok());
    EXPECT_EQ(pose1->get(), pose2->get());
    EXPECT_TRUE((*pose1)->available().pose);

    // A failed load is returned every time, never cached as a model.
    for (int i = 0; i < 2; ++i) {
        EXPECT_FALSE((*engine)->Liveness("/nonexistent/pack.json").ok());
    }
    auto yunet = Engine::Create({.pack = "yunet_s", .load_embedder = false});
    if (yunet.ok()) {
        EXPECT_EQ((*yunet)->Attributes({.age = true}).status().code(), StatusCode::kNotFound);
        EXPECT_EQ((*yunet)->Attributes({.age = true}).status().code(), StatusCode::kNotFound);
    }
}

// Engine::AlignAndAssess is the step Worker::Analyze runs per face: same crop, same quality.
TEST(Engine, AlignAndAssessAgreesWithAnalyze) {
    FG_REQUIRE_PATH(DlibExamplesDir() / "johns");
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    FG_REQUIRE_PATH(ModelsDir() / "fr_feature.onnx");
    auto engine = Engine::Create({.pack = "default"});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    ASSERT_NE((*engine)->embedder_info(), nullptr);
    EXPECT_EQ((*engine)->aligned_size(), (*engine)->embedder_info()->input_size);
    auto worker = (*engine)->CreateWorker();
    ASSERT_TRUE(worker.ok());
    const cv::Mat img = FirstChip();
    ASSERT_FALSE(img.empty());
    auto faces = (*worker)->Analyze(img, {.embed = false, .keep_aligned = true});
    ASSERT_TRUE(faces.ok()) << faces.status().ToString();
    ASSERT_FALSE(faces->empty());
    for (const Face& f : *faces) {
        auto a = (*engine)->AlignAndAssess(img, f.detection);
        ASSERT_TRUE(a.ok()) << a.status().ToString();
        ASSERT_EQ(a->aligned.image.size(), f.aligned.image.size());
        EXPECT_EQ(a->aligned.image.cols, (*engine)->aligned_size());
        EXPECT_EQ(cv::norm(a->aligned.image, f.aligned.image, cv::NORM_INF), 0.0);
        EXPECT_EQ(a->quality.score, f.quality.score);
        EXPECT_EQ(a->quality.sharpness, f.quality.sharpness);
    }
    EXPECT_FALSE((*engine)->AlignAndAssess(cv::Mat(), faces->front().detection).ok());

    auto no_embedder = Engine::Create({.pack = "default", .load_embedder = false});
    ASSERT_TRUE(no_embedder.ok());
    EXPECT_EQ((*no_embedder)->aligned_size(), 112);
}

// A worker without an embedder session detects; asking it to embed fails cleanly. A worker
// without a detector embeds crops but cannot detect.
TEST(Engine, WorkerOptionsCreateOnlyTheSessionsAskedFor) {
    FG_REQUIRE_PATH(DlibExamplesDir() / "johns");
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    FG_REQUIRE_PATH(ModelsDir() / "fr_feature.onnx");
    auto engine = Engine::Create({.pack = "default"});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    const cv::Mat img = FirstChip();
    ASSERT_FALSE(img.empty());

    auto detect_only = (*engine)->CreateWorker({.embedder = false});
    ASSERT_TRUE(detect_only.ok());
    auto dets = (*detect_only)->Detect(img);
    ASSERT_TRUE(dets.ok()) << dets.status().ToString();
    ASSERT_FALSE(dets->empty());
    auto analyzed = (*detect_only)->Analyze(img, {.embed = false});
    ASSERT_TRUE(analyzed.ok());
    EXPECT_EQ(analyzed->size(), dets->size());
    EXPECT_EQ((*detect_only)->Analyze(img, {.embed = true}).status().code(), StatusCode::kFailedPrecondition);
    std::vector<Embedding> embs;
    EXPECT_EQ((*detect_only)->Embed(img, *dets, embs).code(), StatusCode::kFailedPrecondition);

    auto embed_only = (*engine)->CreateWorker({.detector = false});
    ASSERT_TRUE(embed_only.ok());
    EXPECT_EQ((*embed_only)->Detect(img).status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ((*embed_only)->Analyze(img).status().code(), StatusCode::kFailedPrecondition);
    ASSERT_TRUE((*embed_only)->Embed(img, *dets, embs).ok());
    EXPECT_EQ(embs.size(), dets->size());
}

}  // namespace
}  // namespace fg::vision
