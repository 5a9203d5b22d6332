// SPDX-License-Identifier: Apache-2.0
// Embedder tests with the real models: batching, normalisation, flip fusion, model ids.
#include <cmath>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "fg/base/paths.h"
#include "fg/image/align.h"
#include "fg/image/image_io.h"
#include "fg/infer/model_pack.h"
#include "fg/testing/testing.h"
#include "fg/vision/embedder.h"

namespace fg::vision {
namespace {

std::vector<cv::Mat> SomeFaces(int n) {
    // Deterministic pseudo-faces: the embedder must be a pure function of its input.
    std::vector<cv::Mat> faces;
    cv::RNG rng(7767517);
    for (int i = 0; i < n; ++i) {
        cv::Mat f(112, 112, CV_8UC3);
        rng.fill(f, cv::RNG::UNIFORM, 0, 255);
        cv::GaussianBlur(f, f, {0, 0}, 2);
        faces.push_back(f);
    }
    return faces;
}

class EmbedderModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EmbedderModelTest, BatchEqualsSingleAndIsNormalised) {
    auto pack = infer::ResolvePack(GetParam());
    ASSERT_TRUE(pack.ok()) << pack.status().ToString();
    FG_REQUIRE_PATH(pack->Find(infer::ModelRole::kEmbedder)->path);
    auto backend = infer::MakeBackend({});
    ASSERT_TRUE(backend.ok());
    auto model = LoadEmbedderModel(*pack, **backend);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_GT((*model)->info().dim, 0);
    EXPECT_NE((*model)->info().model_id.find('@'), std::string::npos) << "model id carries the hash prefix";

    for (bool flip : {false, true}) {
        auto batched = (*model)->CreateEmbedder({.flip_fusion = flip, .max_batch = 8});
        auto single = (*model)->CreateEmbedder({.flip_fusion = flip, .max_batch = 1});
        ASSERT_TRUE(batched.ok() && single.ok());
        const auto faces = SomeFaces(5);
        std::vector<Embedding> a, b;
        ASSERT_TRUE((*batched)->Embed(faces, a).ok());
        ASSERT_EQ(a.size(), faces.size());
        for (size_t i = 0; i < faces.size(); ++i) {
            ASSERT_TRUE((*single)->Embed({&faces[i], 1}, b).ok());
            ASSERT_EQ(b.size(), 1u);
            EXPECT_EQ(a[i].model_id, (*model)->info().model_id);
            ASSERT_EQ(a[i].values.size(), static_cast<size_t>((*model)->info().dim));
            double norm = 0;
            for (float v : a[i].values) norm += double(v) * v;
            EXPECT_NEAR(norm, 1.0, 1e-4);
            EXPECT_GT(CosineSimilarity(a[i], b[0]), 0.9999f) << "face " << i << " flip " << flip;
        }
    }
}

TEST_P(EmbedderModelTest, FlipFusionIsMirrorInvariant) {
    auto pack = infer::ResolvePack(GetParam());
    ASSERT_TRUE(pack.ok());
    FG_REQUIRE_PATH(pack->Find(infer::ModelRole::kEmbedder)->path);
    auto backend = infer::MakeBackend({});
    auto model = LoadEmbedderModel(*pack, **backend);
    ASSERT_TRUE(model.ok());
    auto emb = (*model)->CreateEmbedder({.flip_fusion = true});
    auto faces = SomeFaces(1);
    cv::Mat mirrored;
    cv::flip(faces[0], mirrored, 1);
    std::vector<Embedding> a, b;
    ASSERT_TRUE((*emb)->Embed(faces, a).ok());
    ASSERT_TRUE((*emb)->Embed({&mirrored, 1}, b).ok());
    EXPECT_GT(CosineSimilarity(a[0], b[0]), 0.9999f);
}

TEST_P(EmbedderModelTest, RejectsWrongCrops) {
    auto pack = infer::ResolvePack(GetParam());
    ASSERT_TRUE(pack.ok());
    FG_REQUIRE_PATH(pack->Find(infer::ModelRole::kEmbedder)->path);
    auto backend = infer::MakeBackend({});
    auto model = LoadEmbedderModel(*pack, **backend);
    ASSERT_TRUE(model.ok());
    auto emb = (*model)->CreateEmbedder({});
    std::vector<Embedding> out;
    std::vector<cv::Mat> bad = {cv::Mat(100, 100, CV_8UC3, cv::Scalar::all(0))};
    EXPECT_EQ((*emb)->Embed(bad, out).code(), StatusCode::kInvalidArgument);
    bad = {cv::Mat(112, 112, CV_8UC1, cv::Scalar::all(0))};
    EXPECT_EQ((*emb)->Embed(bad, out).code(), StatusCode::kInvalidArgument);
    bad = {cv::Mat()};
    EXPECT_EQ((*emb)->Embed(bad, out).code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE((*emb)->Embed({}, out).ok());
    EXPECT_TRUE(out.empty());
}

INSTANTIATE_TEST_SUITE_P(Packs, EmbedderModelTest, ::testing::Values("default", "mobilefacenet128"));

TEST(CosineSimilarity, RefusesMixedModels) {
    Embedding a{"m1", {1, 0}}, b{"m2", {1, 0}}, c{"m1", {0, 1}};
    EXPECT_TRUE(std::isnan(CosineSimilarity(a, b)));
    EXPECT_FLOAT_EQ(CosineSimilarity(a, a), 1.f);
    EXPECT_FLOAT_EQ(CosineSimilarity(a, c), 0.f);
}

}  // namespace
}  // namespace fg::vision
