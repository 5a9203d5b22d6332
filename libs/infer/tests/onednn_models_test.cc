// SPDX-License-Identifier: Apache-2.0
// Differential tests of the onednn backend against OpenCV DNN on every model we ship or test
// with: same outputs within 1e-4 relative on fixed-seed random inputs.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <omp.h>

#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/testing/testing.h"
#include "tensor_compare.h"

namespace fg::infer {
namespace {

using fg::testing::ModelPath;

std::shared_ptr<Backend> Make(const std::string& name) {
    auto b = MakeBackend({.name = name, .threads = 0});
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *b : nullptr;
}

Tensor Random(std::vector<std::int64_t> shape, unsigned seed) {
    Tensor t;
    t.shape = std::move(shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    t.data.resize(static_cast<std::size_t>(t.View().numel()));
    for (auto& v : t.data) v = dist(rng);
    return t;
}

std::vector<Tensor> Copy(const std::vector<TensorView>& views) {
    std::vector<Tensor> out;
    for (const auto& v : views) out.push_back({v.shape, {v.data, v.data + v.numel()}});
    return out;
}

ModelSpec Spec(std::string id, std::filesystem::path path, bool dynamic_batch = false) {
    ModelSpec s;
    s.id = std::move(id);
    s.path = std::move(path);
    s.dynamic_batch = dynamic_batch;
    return s;
}

struct Case {
    std::string label;
    ModelSpec spec;
};

/// Every model of every built-in pack, plus the shared test models that are in no pack.
std::vector<Case> AllModels(std::vector<std::filesystem::path>& missing) {
    std::vector<Case> cases;
    std::set<std::filesystem::path> seen;
    for (const auto& pack_name : BuiltinPackNames()) {
        auto pack = ResolvePack(pack_name);
        if (!pack.ok()) continue;
        for (const auto& pm : pack->models) {
            if (!std::filesystem::exists(pm.path)) {
                missing.push_back(pm.path);
                continue;
            }
            if (!seen.insert(pm.path).second) continue;
            cases.push_back({pack_name + "/" + pm.id, pm.ToSpec()});
        }
    }
    for (const char* name : {"minifasnet_v2_2.7_80.onnx", "minifasnet_v1se_4.0_80.onnx"}) {
        const auto path = ModelPath(name, true);
        if (!std::filesystem::exists(path)) {
            missing.push_back(path);
            continue;
        }
        if (seen.insert(path).second)
            cases.push_back({std::string("shared/") + name, Spec(name, path)});
    }
    return cases;
}

/// A batch of 2 through one call equals the two items run one by one.
void ExpectBatchEqualsSingles(const Model& model, std::vector<std::int64_t> shape) {
    auto session = model.CreateSession();
    ASSERT_TRUE(session.ok());
    shape[0] = 2;
    const Tensor batch = Random(shape, 5);
    std::vector<TensorView> out;
    ASSERT_TRUE((*session)->Run(std::vector<TensorView>{batch.View()}, out).ok());
    const auto batched = Copy(out);
    shape[0] = 1;
    const std::int64_t item = batch.View().numel() / 2;
    for (int i = 0; i < 2; ++i) {
        TensorView one{"", shape, batch.data.data() + i * item};
        ASSERT_TRUE((*session)->Run(std::vector<TensorView>{one}, out).ok());
        for (std::size_t k = 0; k < out.size(); ++k) {
            const std::int64_t n = out[k].numel();
            ASSERT_EQ(batched[k].View().numel(), 2 * n) << out[k].name;
            TensorView part{"", out[k].shape, batched[k].data.data() + i * n};
            EXPECT_LE(RelativeError(part, out[k]), 1e-5) << out[k].name << " item " << i;
        }
    }
}

TEST(OneDnnModelsTest, EveryModelMatchesOpenCv) {
    std::vector<std::filesystem::path> missing;
    const auto cases = AllModels(missing);
    for (const auto& m : missing) FG_REQUIRE_PATH(m);
    ASSERT_FALSE(cases.empty());
    auto opencv = Make("opencv");
    auto onednn = Make("onednn");
    for (const auto& c : cases) {
        SCOPED_TRACE(c.label);
        auto ref_model = opencv->Load(c.spec);
        ASSERT_TRUE(ref_model.ok()) << ref_model.status().ToString();
        auto model = onednn->Load(c.spec);
        ASSERT_TRUE(model.ok()) << model.status().ToString();
        EXPECT_EQ((*model)->info().output_names, (*ref_model)->info().output_names);
        // oneDNN may accept a batch rewrite OpenCV 4.6 cannot run (MiniFASNetV1SE's SE
        // block); it then has to give the single runs' outputs (checked below).
        const int max_batch = (*model)->info().max_batch;
        if ((*ref_model)->info().max_batch != 0) {
            EXPECT_TRUE(max_batch == (*ref_model)->info().max_batch || max_batch == 0);
        } else {
            EXPECT_EQ(max_batch, 0);
        }
        auto ref_session = (*ref_model)->CreateSession();
        auto session = (*model)->CreateSession();
        ASSERT_TRUE(ref_session.ok() && session.ok());
        auto shape = (*model)->info().input_shapes[0];
        shape[0] = 1;
        const Tensor in = Random(shape, 42);
        std::vector<TensorView> ref, out;
        ASSERT_TRUE((*ref_session)->Run(std::vector<TensorView>{in.View()}, ref).ok());
        Status st = (*session)->Run(std::vector<TensorView>{in.View()}, out);
        ASSERT_TRUE(st.ok()) << st.ToString();
        ASSERT_EQ(out.size(), ref.size());
        double worst = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
            EXPECT_EQ(out[i].name, ref[i].name);
            ASSERT_EQ(out[i].numel(), ref[i].numel()) << out[i].name;
            const double err = RelativeError(out[i], ref[i]);
            worst = std::max(worst, err);
            EXPECT_LE(err, 1e-4) << out[i].name;
        }
        std::cout << "[ onednn   ] " << c.label << " max relative error " << worst << "\n";
        if (max_batch == 0) ExpectBatchEqualsSingles(**model, shape);
    }
}

TEST(OneDnnModelsTest, BatchMatchesSingleRunsAndSessionsAreIndependent) {
    const auto path = ModelPath("fr_feature.onnx");
    FG_REQUIRE_PATH(path);
    auto onednn = Make("onednn");
    auto model = onednn->Load(Spec("fr_feature", path, true));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ASSERT_EQ((*model)->info().max_batch, 0);
    const Tensor batch = Random({3, 3, 112, 112}, 7);
    auto session = (*model)->CreateSession();
    ASSERT_TRUE(session.ok());
    std::vector<TensorView> out;
    ASSERT_TRUE((*session)->Run(std::vector<TensorView>{batch.View()}, out).ok());
    ASSERT_EQ(out[0].shape, (std::vector<std::int64_t>{3, 512}));
    const auto batched = Copy(out);
    // Two sessions on two threads at once, each running the items one by one.
    std::vector<std::vector<Tensor>> singles(2);
    auto worker = [&](int w) {
        auto s = (*model)->CreateSession();
        ASSERT_TRUE(s.ok());
        for (int i = 0; i < 3; ++i) {
            TensorView item{"", {1, 3, 112, 112}, batch.data.data() + i * 3 * 112 * 112};
            std::vector<TensorView> o;
            ASSERT_TRUE((*s)->Run(std::vector<TensorView>{item}, o).ok());
            singles[w].push_back(Copy(o)[0]);
        }
    };
    std::thread t0(worker, 0), t1(worker, 1);
    t0.join();
    t1.join();
    for (int w = 0; w < 2; ++w) {
        ASSERT_EQ(singles[w].size(), 3u);
        for (int i = 0; i < 3; ++i) {
            TensorView a = singles[w][i].View();
            TensorView b{"", {1, 512}, batched[0].data.data() + i * 512};
            EXPECT_LE(RelativeError(a, b), 1e-5) << "item " << i;
        }
    }
}

// Steps under the parallel-work threshold run on one thread while the big ones use the
// configured count; each step's count is set only around it, so the caller's OpenMP thread
// count is the same after Load and Run, and the outputs equal a 1-thread model's.
TEST(OneDnnModelsTest, PerStepThreadCountsKeepTheCallersAndTheOutputs) {
    const auto path = ModelPath("fr_feature.onnx");
    FG_REQUIRE_PATH(path);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(3);
    auto two = MakeBackend({.name = "onednn", .threads = 2});
    auto one = MakeBackend({.name = "onednn", .threads = 1});
    ASSERT_TRUE(two.ok() && one.ok());
    auto m2 = (*two)->Load(Spec("fr_feature", path, false));
    auto m1 = (*one)->Load(Spec("fr_feature", path, false));
    ASSERT_TRUE(m2.ok()) << m2.status().ToString();
    ASSERT_TRUE(m1.ok()) << m1.status().ToString();
    EXPECT_EQ(omp_get_max_threads(), 3);
    const Tensor x = Random({1, 3, 112, 112}, 11);
    auto s2 = (*m2)->CreateSession();
    auto s1 = (*m1)->CreateSession();
    ASSERT_TRUE(s2.ok() && s1.ok());
    std::vector<TensorView> o2, o1;
    ASSERT_TRUE((*s2)->Run(std::vector<TensorView>{x.View()}, o2).ok());
    EXPECT_EQ(omp_get_max_threads(), 3);
    ASSERT_TRUE((*s1)->Run(std::vector<TensorView>{x.View()}, o1).ok());
    EXPECT_LE(RelativeError(o2[0], o1[0]), 1e-5);
    omp_set_num_threads(saved);
}

TEST(OneDnnModelsTest, AutoFallsBackOnlyWhenNeededAndBadFilesFail) {
    const auto path = ModelPath("fr_feature.onnx");
    FG_REQUIRE_PATH(path);
    fg::testing::TmpDir tmp;
    // Truncated file: a clear error, never a crash.
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    {
        std::ofstream out(tmp / "cut.onnx", std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    }
    auto onednn = Make("onednn");
    auto cut = onednn->Load(Spec("cut", tmp / "cut.onnx"));
    ASSERT_FALSE(cut.ok());
    EXPECT_EQ(cut.status().code(), StatusCode::kInvalidArgument) << cut.status().ToString();
    auto missing = onednn->Load(Spec("none", tmp / "none.onnx"));
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
    auto autob = Make("auto");
    auto cut_auto = autob->Load(Spec("cut", tmp / "cut.onnx"));
    EXPECT_FALSE(cut_auto.ok());
    auto good = autob->Load(Spec("fr_feature", path));
    ASSERT_TRUE(good.ok()) << good.status().ToString();
}

}   // namespace
}   // namespace fg::infer
