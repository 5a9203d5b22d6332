// SPDX-License-Identifier: Apache-2.0
#include "fg/infer/backend.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "fg/infer/model_pack.h"
#include "fg/infer/onnx_graph.h"
#include "fg/testing/testing.h"

namespace fg::infer {
namespace {

using fg::testing::ModelPath;

std::shared_ptr<Backend> OpenCv() {
    auto b = MakeBackend({.name = "opencv"});
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *b : nullptr;
}

std::string ShapeText(const std::vector<std::int64_t>& shape) {
    std::ostringstream s;
    s << "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? "," : "") << shape[i];
    s << "]";
    return s.str();
}

Tensor Zeros(std::vector<std::int64_t> shape) {
    for (auto& d : shape) d = d > 0 ? d : 1;
    Tensor t;
    t.shape = shape;
    t.data.assign(static_cast<std::size_t>(t.View().numel()), 0.0f);
    return t;
}

ModelSpec Spec(std::string id, std::filesystem::path path, std::string sha256 = {},
               std::vector<std::int64_t> input_shape = {}, bool dynamic_batch = false) {
    ModelSpec spec;
    spec.id = std::move(id);
    spec.path = std::move(path);
    spec.sha256 = std::move(sha256);
    spec.input_shape = std::move(input_shape);
    spec.dynamic_batch = dynamic_batch;
    return spec;
}

void WriteFile(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
}

TEST(BackendTest, Registry) {
    auto names = AvailableBackends();
    EXPECT_NE(std::find(names.begin(), names.end(), "opencv"), names.end());
    auto b = MakeBackend(BackendConfig{"opencv", 2});
    ASSERT_TRUE(b.ok());
    EXPECT_EQ((*b)->name(), "opencv");
    auto bad = MakeBackend(BackendConfig{"tensorrt", 0});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
    EXPECT_NE(bad.status().message().find("opencv"), std::string::npos);
}

TEST(BackendTest, MissingFile) {
    fg::testing::TmpDir tmp;
    auto m = OpenCv()->Load(Spec("x", tmp / "nope.onnx"));
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
    EXPECT_NE(m.status().message().find("nope.onnx"), std::string::npos);

    auto dir = OpenCv()->Load(Spec("dir", tmp.path()));
    EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument) << dir.status().ToString();
}

TEST(BackendTest, BadFilesGiveInvalidArgument) {
    fg::testing::TmpDir tmp;
    std::map<std::string, std::string> files;
    files["empty.onnx"] = "";
    files["text.onnx"] = "This is not a model.\nIt is a text file.\n";
    std::mt19937 rng(42);
    std::string junk(100000, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    files["random.onnx"] = junk;
    const auto detect = ModelPath("fr_detect.onnx");
    if (std::filesystem::exists(detect)) {
        auto bytes = ReadFileBytes(detect);
        ASSERT_TRUE(bytes.ok());
        files["truncated.onnx"] = bytes->substr(0, bytes->size() / 2);
    }
    for (const auto& [name, bytes] : files) {
        WriteFile(tmp / name, bytes);
        auto m = OpenCv()->Load(Spec("bad", tmp / name));
        ASSERT_FALSE(m.ok()) << name;
        EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument)
            << name << ": " << m.status().ToString();
        EXPECT_NE(m.status().message().find(name), std::string::npos) << m.status().message();
    }
    FG_REQUIRE_PATH(detect);
}

TEST(BackendTest, CorruptedModelsNeverCrash) {
    // Flipped bytes in a real model: whatever the Status, Load and Run must return one.
    const auto path = ModelPath("fr_eye.onnx");
    FG_REQUIRE_PATH(path);
    auto bytes = ReadFileBytes(path);
    ASSERT_TRUE(bytes.ok());
    fg::testing::TmpDir tmp;
    std::mt19937 rng(99);
    int loaded = 0;
    for (int trial = 0; trial < 40; ++trial) {
        std::string copy = *bytes;
        // Damage the graph structure near the start, where the node list lives, more than weights.
        const std::size_t span = trial % 2 ? copy.size() : std::min<std::size_t>(copy.size(), 4096);
        for (int k = 0; k < 4; ++k) copy[rng() % span] = static_cast<char>(rng());
        WriteFile(tmp / "damaged.onnx", copy);
        auto m = OpenCv()->Load(Spec("damaged", tmp / "damaged.onnx"));
        if (!m.ok()) {
            EXPECT_NE(m.status().code(), StatusCode::kOk);
            continue;
        }
        ++loaded;
        auto session = (*m)->CreateSession();
        if (!session.ok()) continue;
        std::vector<TensorView> out;
        const auto& shape = (*m)->info().input_shapes.empty()
                                ? std::vector<std::int64_t>{1, 1, 24, 24}
                                : (*m)->info().input_shapes[0];
        Tensor in = Zeros(shape);
        (void)(*session)->Run(std::vector<TensorView>{in.View()}, out);
    }
    std::cout << "[ measured ] damaged fr_eye copies that still loaded: " << loaded << "/40\n";
}

TEST(BackendTest, HashMismatchIsDataLoss) {
    const auto path = ModelPath("fr_eye.onnx");
    FG_REQUIRE_PATH(path);
    const std::string wrong(64, '0');
    auto m = OpenCv()->Load(Spec("fr_eye", path, wrong));
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(m.status().message(),
              "sha256 mismatch for " + path.string() + ": expected " + wrong +
                  ", got 1afcea006abc1ccac3c517022abde0aa092bed74ff3c9fe6878483ef9e6e38de");

    auto ok = OpenCv()->Load(
        Spec("fr_eye", path, "1AFCEA006ABC1CCAC3C517022ABDE0AA092BED74FF3C9FE6878483EF9E6E38DE"));
    EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(BackendTest, RunChecksInputs) {
    const auto path = ModelPath("fr_eye.onnx");
    FG_REQUIRE_PATH(path);
    auto model = OpenCv()->Load(Spec("fr_eye", path));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ((*model)->info().max_batch, 1);
    auto session = (*model)->CreateSession();
    ASSERT_TRUE(session.ok());
    std::vector<TensorView> outputs;

    auto expect_invalid = [&](std::vector<TensorView> in, const char* what) {
        Status s = (*session)->Run(in, outputs);
        EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << what << ": " << s.ToString();
        EXPECT_FALSE(s.message().empty());
        return s.message();
    };
    const Tensor good = Zeros({1, 1, 24, 24});
    Tensor wrong = Zeros({1, 3, 24, 24});
    const std::string msg = expect_invalid({wrong.View()}, "wrong channels");
    EXPECT_NE(msg.find("[1,3,24,24]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fr_eye"), std::string::npos) << msg;
    expect_invalid({Zeros({1, 1, 32, 32}).View()}, "wrong size");
    expect_invalid({Zeros({1, 24, 24}).View()}, "wrong rank");
    expect_invalid({Zeros({2, 1, 24, 24}).View()}, "batch on a batch-1 model");
    expect_invalid({}, "no inputs");
    expect_invalid({good.View(), good.View()}, "two inputs");
    expect_invalid({TensorView{"", {1, 1, 24, 24}, nullptr}}, "null data");

    // The session still works after rejected calls.
    ASSERT_TRUE((*session)->Run(std::vector<TensorView>{good.View()}, outputs).ok());
    ASSERT_EQ(outputs.size(), 1u);
    EXPECT_EQ(outputs[0].name, "output");
    EXPECT_EQ(outputs[0].shape, (std::vector<std::int64_t>{1, 2}));
}

TEST(BackendTest, DynamicScrfdNeedsAFixedInput) {
    const auto path = ModelPath("scrfd_500m_dynamic_insightface.onnx", true);
    FG_REQUIRE_PATH(path);
    auto raw = OpenCv()->Load(Spec("scrfd", path));
    ASSERT_FALSE(raw.ok());
    EXPECT_EQ(raw.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(raw.status().message().find(path.filename().string()), std::string::npos);

    auto model = OpenCv()->Load(Spec("scrfd", path, {}, {1, 3, 640, 640}));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const ModelInfo& info = (*model)->info();
    EXPECT_EQ(info.input_names, std::vector<std::string>{"input.1"});
    EXPECT_EQ(info.input_shapes[0], (std::vector<std::int64_t>{1, 3, 640, 640}));
    EXPECT_EQ(info.output_names.size(), 9u);
    auto session = (*model)->CreateSession();
    ASSERT_TRUE(session.ok());
    Tensor in = Zeros({1, 3, 640, 640});
    std::vector<TensorView> out;
    ASSERT_TRUE((*session)->Run(std::vector<TensorView>{in.View()}, out).ok());
    ASSERT_EQ(out.size(), 9u);
    const std::int64_t anchors[3] = {12800, 3200, 800};
    const std::int64_t widths[3] = {1, 4, 10};   // scores, boxes, keypoints
    for (int i = 0; i < 9; ++i) {
        EXPECT_EQ(out[i].name, info.output_names[i]);
        EXPECT_EQ(out[i].numel(), anchors[i % 3] * widths[i / 3]) << out[i].name;
    }
}

/// Runs `n` random faces through a batch-rewritten embedder in one call and one by one through
/// the untouched model: the rewrite must not change a single vector.
void CheckBatchEquivalence(const std::filesystem::path& path, const std::string& id, int n,
                           std::int64_t dim) {
    auto batched = OpenCv()->Load(Spec(id, path, {}, {}, true));
    ASSERT_TRUE(batched.ok()) << batched.status().ToString();
    EXPECT_EQ((*batched)->info().max_batch, 0) << "the batch rewrite was not accepted";
    EXPECT_EQ((*batched)->info().input_shapes[0], (std::vector<std::int64_t>{-1, 3, 112, 112}));
    auto single = OpenCv()->Load(Spec(id, path));
    ASSERT_TRUE(single.ok());
    EXPECT_EQ((*single)->info().max_batch, 1);

    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> pixel(-1.0f, 1.0f);
    Tensor faces;
    faces.shape = {n, 3, 112, 112};
    faces.data.resize(static_cast<std::size_t>(faces.View().numel()));
    for (auto& v : faces.data) v = pixel(rng);

    auto bs = (*batched)->CreateSession();
    ASSERT_TRUE(bs.ok());
    std::vector<TensorView> out;
    ASSERT_TRUE((*bs)->Run(std::vector<TensorView>{faces.View()}, out).ok());
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].shape, (std::vector<std::int64_t>{n, dim}));
    const std::vector<float> batch_out(out[0].data, out[0].data + out[0].numel());

    auto ss = (*single)->CreateSession();
    ASSERT_TRUE(ss.ok());
    const std::size_t face_size = 3 * 112 * 112;
    float worst = 0;
    for (int i = 0; i < n; ++i) {
        TensorView one{"", {1, 3, 112, 112}, faces.data.data() + i * face_size};
        ASSERT_TRUE((*ss)->Run(std::span<const TensorView>(&one, 1), out).ok());
        ASSERT_EQ(out[0].shape, (std::vector<std::int64_t>{1, dim}));
        for (std::int64_t k = 0; k < dim; ++k) {
            worst = std::max(worst, std::abs(out[0].data[k] - batch_out[i * dim + k]));
        }
    }
    std::cout << "[ measured ] " << id << ": batch of " << n
              << " vs single runs, max |diff| = " << worst << "\n";
    EXPECT_LE(worst, 1e-4f);
}

TEST(BackendTest, FrFeatureBatchOf8EqualsSingleRuns) {
    const auto path = ModelPath("fr_feature.onnx");
    FG_REQUIRE_PATH(path);
    CheckBatchEquivalence(path, "fr_feature", 8, 512);
}

TEST(BackendTest, MobileFaceNetBatchOf8EqualsSingleRuns) {
    const auto path = ModelPath("mobilefacenet_128d.onnx", true);
    FG_REQUIRE_PATH(path);
    CheckBatchEquivalence(path, "mobilefacenet_128d", 8, 128);
}

TEST(BackendTest, OutputsFollowOnnxGraphOrder) {
    // OpenCV lists fr_gender's outputs sorted by name; the contract is the graph's order.
    const auto path = ModelPath("fr_gender.onnx");
    FG_REQUIRE_PATH(path);
    auto model = OpenCv()->Load(Spec("fr_gender", path));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const std::vector<std::string> expected = {
        "prob_stage_1",        "prob_stage_2",        "prob_stage_3",
        "stage1_delta_k",      "stage2_delta_k",      "stage3_delta_k",
        "index_offset_stage1", "index_offset_stage2", "index_offset_stage3"};
    EXPECT_EQ((*model)->info().output_names, expected);
    auto session = (*model)->CreateSession();
    ASSERT_TRUE(session.ok());
    Tensor in = Zeros({1, 3, 64, 64});
    std::vector<TensorView> out;
    ASSERT_TRUE((*session)->Run(std::vector<TensorView>{in.View()}, out).ok());
    ASSERT_EQ(out.size(), expected.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        EXPECT_EQ(out[i].name, expected[i]);
        // The delta_k outputs have one value, the others three: a mismatch means a wrong pairing.
        EXPECT_EQ(out[i].numel(), expected[i].find("delta_k") != std::string::npos ? 1 : 3)
            << expected[i];
    }
}

TEST(BackendTest, SessionsOnSeveralThreadsAgree) {
    const auto path = ModelPath("fr_landmark.onnx");
    FG_REQUIRE_PATH(path);
    auto model = OpenCv()->Load(Spec("fr_landmark", path));
    ASSERT_TRUE(model.ok());
    Tensor in = Zeros({1, 1, 64, 64});
    for (std::size_t i = 0; i < in.data.size(); ++i) {
        in.data[i] = static_cast<float>(i % 97) / 97.0f;
    }
    std::vector<std::vector<float>> results(3);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < results.size(); ++t) {
        threads.emplace_back([&, t] {
            auto session = (*model)->CreateSession();
            if (!session.ok()) return;
            std::vector<TensorView> out;
            for (int rep = 0; rep < 3; ++rep) {
                if (!(*session)->Run(std::vector<TensorView>{in.View()}, out).ok()) return;
            }
            results[t].assign(out[0].data, out[0].data + out[0].numel());
        });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(results[0].size(), 136u);
    EXPECT_EQ(results[1], results[0]);
    EXPECT_EQ(results[2], results[0]);
}

/// The backbone of later differential tests: every model of every built-in pack loads through
/// its spec and runs once on zeros with finite, non-empty outputs.
TEST(BackendTest, EveryBuiltinPackModelRunsOnZeros) {
    auto backend = OpenCv();
    std::set<std::filesystem::path> done;
    for (const auto& pack_name : BuiltinPackNames()) {
        auto pack = ResolvePack(pack_name);
        ASSERT_TRUE(pack.ok()) << pack.status().ToString();
        for (const auto& pm : pack->models) {
            FG_REQUIRE_PATH(pm.path);
            if (!done.insert(pm.path).second) continue;
            SCOPED_TRACE(pack_name + "/" + pm.id);
            auto model = backend->Load(pm.ToSpec());
            ASSERT_TRUE(model.ok()) << model.status().ToString();
            const ModelInfo& info = (*model)->info();
            ASSERT_EQ(info.input_names.size(), 1u);
            const auto& shape = info.input_shapes[0];
            ASSERT_EQ(shape.size(), 4u);
            EXPECT_EQ(shape[1], pm.input.color == ColorOrder::kGray ? 1 : 3);
            EXPECT_EQ(shape[2], pm.input.height);
            EXPECT_EQ(shape[3], pm.input.width);
            if (!pm.input.name.empty()) {
                EXPECT_EQ(info.input_names[0], pm.input.name);
            }

            auto session = (*model)->CreateSession();
            ASSERT_TRUE(session.ok()) << session.status().ToString();
            Tensor in = Zeros(shape);
            std::vector<TensorView> out;
            Status s = (*session)->Run(std::vector<TensorView>{in.View()}, out);
            ASSERT_TRUE(s.ok()) << s.ToString();
            ASSERT_EQ(out.size(), info.output_names.size());
            std::cout << "[ shapes   ] " << pm.id << " in " << info.input_names[0]
                      << ShapeText(shape) << " max_batch " << info.max_batch << " ->";
            for (std::size_t i = 0; i < out.size(); ++i) {
                EXPECT_EQ(out[i].name, info.output_names[i]);
                ASSERT_GT(out[i].numel(), 0) << out[i].name;
                ASSERT_NE(out[i].data, nullptr);
                EXPECT_TRUE(std::all_of(out[i].data, out[i].data + out[i].numel(), [](float v) {
                    return std::isfinite(v);
                })) << out[i].name;
                std::cout << " " << out[i].name << ShapeText(out[i].shape);
            }
            std::cout << "\n";
            if (pm.role == ModelRole::kEmbedder) {
                ASSERT_EQ(out.size(), 1u);
                EXPECT_EQ(out[0].numel(), pm.output_dim);
            }
        }
    }
}

}   // namespace
}   // namespace fg::infer
