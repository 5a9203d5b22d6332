// SPDX-License-Identifier: Apache-2.0
#include "fg/infer/model_pack.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "fg/base/paths.h"
#include "fg/testing/testing.h"

namespace fg::infer {
namespace {

using nlohmann::json;

json ValidManifest() {
    return json::parse(R"({
      "name": "mine",
      "description": "test pack",
      "models": [
        {"id": "det", "role": "detector", "decoder": "scrfd",
         "path": "${shared}/models/scrfd_500m_dynamic_insightface.onnx",
         "sha256": "5E4447F50245BBD7966BD6C0FA52938C61474A04EC7DEF48753668A9D8B4EA3A",
         "input": {"name": "input.1", "width": 640, "height": 480, "color": "rgb",
                   "mean": 127.5, "scale": [0.0078125, 0.0078125, 0.0078125], "letterbox": true},
         "dynamic_input": true,
         "params": {"strides": [8, 16, 32]},
         "license": "research"},
        {"id": "emb", "role": "embedder", "decoder": "arcface",
         "path": "${models}/fr_feature.onnx",
         "input": {"width": 112, "height": 112},
         "output_dim": 512, "dynamic_batch": true},
        {"id": "lmk", "role": "landmarker", "decoder": "landmarks68", "path": "sub/lmk.onnx",
         "input": {"width": 64, "height": 64, "color": "gray", "letterbox": false}}
      ]})");
}

TEST(ModelPackTest, ParsesAValidManifest) {
    auto pack = ParsePack(ValidManifest(), "/some/dir/mine.json");
    ASSERT_TRUE(pack.ok()) << pack.status().ToString();
    EXPECT_EQ(pack->name, "mine");
    EXPECT_EQ(pack->description, "test pack");
    EXPECT_EQ(pack->manifest_path, "/some/dir/mine.json");
    ASSERT_EQ(pack->models.size(), 3u);

    const PackModel& det = pack->models[0];
    EXPECT_EQ(det.id, "det");
    EXPECT_EQ(det.role, ModelRole::kDetector);
    EXPECT_EQ(det.decoder, "scrfd");
    EXPECT_EQ(det.path,
              (SharedDir() / "models/scrfd_500m_dynamic_insightface.onnx").lexically_normal());
    EXPECT_EQ(det.sha256, "5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a");
    EXPECT_EQ(det.input.name, "input.1");
    EXPECT_EQ(det.input.width, 640);
    EXPECT_EQ(det.input.height, 480);
    EXPECT_EQ(det.input.color, ColorOrder::kRgb);
    EXPECT_EQ(det.input.mean, (std::array<float, 3>{127.5f, 127.5f, 127.5f}));
    EXPECT_EQ(det.input.scale, (std::array<float, 3>{0.0078125f, 0.0078125f, 0.0078125f}));
    EXPECT_TRUE(det.input.letterbox);
    EXPECT_TRUE(det.dynamic_input);
    EXPECT_FALSE(det.dynamic_batch);
    EXPECT_EQ(det.params["strides"], json::parse("[8, 16, 32]"));
    EXPECT_EQ(det.license, "research");

    const PackModel& emb = pack->models[1];
    EXPECT_EQ(emb.path, (ModelsDir() / "fr_feature.onnx").lexically_normal());
    EXPECT_EQ(emb.output_dim, 512);
    EXPECT_TRUE(emb.dynamic_batch);
    EXPECT_TRUE(emb.sha256.empty());
    // Defaults.
    EXPECT_EQ(emb.input.color, ColorOrder::kBgr);
    EXPECT_EQ(emb.input.mean, (std::array<float, 3>{0, 0, 0}));
    EXPECT_EQ(emb.input.scale, (std::array<float, 3>{1, 1, 1}));
    EXPECT_TRUE(emb.params.is_object());

    // A relative path is relative to the manifest's folder.
    EXPECT_EQ(pack->models[2].path, std::filesystem::path("/some/dir/sub/lmk.onnx"));
    EXPECT_EQ(pack->models[2].input.color, ColorOrder::kGray);
}

TEST(ModelPackTest, RelativePathWithoutManifestIsUnderModelsDir) {
    auto pack = ParsePack(ValidManifest());
    ASSERT_TRUE(pack.ok()) << pack.status().ToString();
    EXPECT_EQ(pack->models[2].path,
              std::filesystem::absolute(ModelsDir() / "sub/lmk.onnx").lexically_normal());
}

TEST(ModelPackTest, ToSpecFixesDynamicInputs) {
    auto pack = ParsePack(ValidManifest(), "/x/p.json");
    ASSERT_TRUE(pack.ok());
    ModelSpec det = pack->models[0].ToSpec();
    EXPECT_EQ(det.id, "det");
    EXPECT_EQ(det.path, pack->models[0].path);
    EXPECT_EQ(det.sha256, pack->models[0].sha256);
    EXPECT_EQ(det.input_shape, (std::vector<std::int64_t>{1, 3, 480, 640}));
    EXPECT_FALSE(det.dynamic_batch);

    ModelSpec emb = pack->models[1].ToSpec();
    EXPECT_TRUE(emb.input_shape.empty());
    EXPECT_TRUE(emb.dynamic_batch);

    PackModel gray = pack->models[2];
    gray.dynamic_input = true;
    EXPECT_EQ(gray.ToSpec().input_shape, (std::vector<std::int64_t>{1, 1, 64, 64}));
}

TEST(ModelPackTest, FindByRoleAndId) {
    auto pack = ParsePack(ValidManifest(), "/x/p.json");
    ASSERT_TRUE(pack.ok());
    ASSERT_NE(pack->Find(ModelRole::kEmbedder), nullptr);
    EXPECT_EQ(pack->Find(ModelRole::kEmbedder)->id, "emb");
    EXPECT_EQ(pack->Find(ModelRole::kLiveness), nullptr);
    ASSERT_NE(pack->FindById("lmk"), nullptr);
    EXPECT_EQ(pack->FindById("lmk")->role, ModelRole::kLandmarker);
    EXPECT_EQ(pack->FindById("nope"), nullptr);
}

TEST(ModelPackTest, RoleNames) {
    EXPECT_EQ(ModelRoleName(ModelRole::kDetector), "detector");
    EXPECT_EQ(ModelRoleName(ModelRole::kLandmarker), "landmarker");
    EXPECT_EQ(ModelRoleName(ModelRole::kEmbedder), "embedder");
    EXPECT_EQ(ModelRoleName(ModelRole::kLiveness), "liveness");
    EXPECT_EQ(ModelRoleName(ModelRole::kAttribute), "attribute");
}

struct BadCase {
    const char* label;
    std::function<void(json&)> mutate;
    const char* expect_in_message;   // the field name the error must mention
};

TEST(ModelPackTest, RejectsEveryInvalidField) {
    auto model0 = [](json& j) -> json& { return j["models"][0]; };
    auto model1 = [](json& j) -> json& { return j["models"][1]; };
    const std::vector<BadCase> cases = {
        {"root not object", [](json& j) { j = json::array(); }, "(root)"},
        {"missing name", [](json& j) { j.erase("name"); }, "'name'"},
        {"name not string", [](json& j) { j["name"] = 3; }, "'name'"},
        {"description not string", [](json& j) { j["description"] = false; }, "'description'"},
        {"unknown top-level key", [](json& j) { j["modles"] = json::array(); }, "'modles'"},
        {"missing models", [](json& j) { j.erase("models"); }, "'models'"},
        {"models not array", [](json& j) { j["models"] = json::object(); }, "'models'"},
        {"models empty", [](json& j) { j["models"] = json::array(); }, "'models'"},
        {"model not object", [](json& j) { j["models"][0] = 5; }, "models[]"},
        {"missing id", [&](json& j) { model0(j).erase("id"); }, "'id'"},
        {"empty id", [&](json& j) { model0(j)["id"] = ""; }, "'id'"},
        {"duplicate id", [&](json& j) { model1(j)["id"] = "det"; }, "duplicate"},
        {"missing role", [&](json& j) { model0(j).erase("role"); }, "'role'"},
        {"unknown role", [&](json& j) { model0(j)["role"] = "recognizer"; }, "recognizer"},
        {"missing decoder", [&](json& j) { model0(j).erase("decoder"); }, "'decoder'"},
        {"missing path", [&](json& j) { model0(j).erase("path"); }, "'path'"},
        {"path not string", [&](json& j) { model0(j)["path"] = 1; }, "'path'"},
        {"unknown placeholder", [&](json& j) { model0(j)["path"] = "${home}/a.onnx"; },
         "placeholder"},
        {"sha256 short", [&](json& j) { model0(j)["sha256"] = "abc"; }, "'sha256'"},
        {"sha256 not hex", [&](json& j) { model0(j)["sha256"] = std::string(64, 'z'); },
         "'sha256'"},
        {"missing input", [&](json& j) { model0(j).erase("input"); }, "'input'"},
        {"input not object", [&](json& j) { model0(j)["input"] = "640x640"; }, "'input'"},
        {"missing width", [&](json& j) { model0(j)["input"].erase("width"); }, "'input.width'"},
        {"zero width", [&](json& j) { model0(j)["input"]["width"] = 0; }, "'input.width'"},
        {"huge height", [&](json& j) { model0(j)["input"]["height"] = 100000; }, "'input.height'"},
        {"float height", [&](json& j) { model0(j)["input"]["height"] = 64.5; }, "'input.height'"},
        {"width string", [&](json& j) { model0(j)["input"]["width"] = "640"; }, "'input.width'"},
        {"unknown colour", [&](json& j) { model0(j)["input"]["color"] = "rgba"; }, "'input.color'"},
        {"mean of 2",
         [&](json& j) {
             model0(j)["input"]["mean"] = {1, 2};
         },
         "'input.mean'"},
        {"mean of strings",
         [&](json& j) {
             model0(j)["input"]["mean"] = {"a", "b", "c"};
         },
         "'input.mean'"},
        {"scale string", [&](json& j) { model0(j)["input"]["scale"] = "1/128"; }, "'input.scale'"},
        {"letterbox string", [&](json& j) { model0(j)["input"]["letterbox"] = "yes"; },
         "'input.letterbox'"},
        {"name not string", [&](json& j) { model0(j)["input"]["name"] = 7; }, "'input.name'"},
        {"unknown input key", [&](json& j) { model0(j)["input"]["colour"] = "rgb"; },
         "'input.colour'"},
        {"output_dim negative", [&](json& j) { model1(j)["output_dim"] = -1; }, "'output_dim'"},
        {"embedder without dim", [&](json& j) { model1(j).erase("output_dim"); }, "'output_dim'"},
        {"dynamic_batch string", [&](json& j) { model1(j)["dynamic_batch"] = "true"; },
         "'dynamic_batch'"},
        {"dynamic_input number", [&](json& j) { model0(j)["dynamic_input"] = 1; },
         "'dynamic_input'"},
        {"params array", [&](json& j) { model0(j)["params"] = json::array(); }, "'params'"},
        {"license number", [&](json& j) { model0(j)["license"] = 2; }, "'license'"},
        {"unknown model key", [&](json& j) { model0(j)["dynamic_batchs"] = true; },
         "'dynamic_batchs'"},
    };
    for (const auto& c : cases) {
        json j = ValidManifest();
        c.mutate(j);
        auto pack = ParsePack(j, "/x/p.json");
        ASSERT_FALSE(pack.ok()) << c.label;
        EXPECT_EQ(pack.status().code(), StatusCode::kInvalidArgument) << c.label;
        EXPECT_NE(pack.status().message().find(c.expect_in_message), std::string::npos)
            << c.label << ": " << pack.status().message();
    }
}

TEST(ModelPackTest, ErrorsNameTheModelId) {
    json j = ValidManifest();
    j["models"][1]["role"] = "recognizer";
    auto pack = ParsePack(j, "/x/p.json");
    ASSERT_FALSE(pack.ok());
    EXPECT_NE(pack.status().message().find("model 'emb'"), std::string::npos)
        << pack.status().message();
    EXPECT_NE(pack.status().message().find("/x/p.json"), std::string::npos);
}

TEST(ModelPackTest, CommentKeysAreAllowed) {
    json j = ValidManifest();
    j["_comment"] = "top";
    j["models"][0]["_note"] = "model";
    j["models"][0]["input"]["_why"] = "input";
    EXPECT_TRUE(ParsePack(j, "/x/p.json").ok());
}

TEST(ModelPackTest, LoadPackFileErrors) {
    fg::testing::TmpDir tmp;
    auto missing = LoadPackFile(tmp / "none.json");
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

    std::ofstream(tmp / "bad.json") << "{\"name\": \"x\", ";
    auto bad = LoadPackFile(tmp / "bad.json");
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find("bad.json"), std::string::npos) << bad.status().message();

    std::ofstream(tmp / "good.json") << ValidManifest().dump();
    auto good = LoadPackFile(tmp / "good.json");
    ASSERT_TRUE(good.ok()) << good.status().ToString();
    EXPECT_EQ(good->models[2].path, (tmp / "sub/lmk.onnx").lexically_normal());
}

TEST(ModelPackTest, BuiltinPacksAllParse) {
    const auto names = BuiltinPackNames();
    for (const char* expected : {"default", "yunet_s", "yunet_n", "scrfd_500m", "scrfd_2.5g",
                                 "scrfd_500m_dynamic", "mobilefacenet128"}) {
        EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
    }
    for (const auto& name : names) {
        auto pack = ResolvePack(name);
        ASSERT_TRUE(pack.ok()) << name << ": " << pack.status().ToString();
        EXPECT_EQ(pack->name, name);
        EXPECT_TRUE(pack->manifest_path.empty());
        EXPECT_NE(pack->Find(ModelRole::kDetector), nullptr) << name;
        EXPECT_NE(pack->Find(ModelRole::kEmbedder), nullptr) << name;
        for (const auto& m : pack->models) {
            EXPECT_NE(ModelRoleName(m.role), "unknown") << name << "/" << m.id;
            EXPECT_TRUE(m.path.is_absolute()) << m.path;
            EXPECT_EQ(m.sha256.size(), 64u) << name << "/" << m.id;
            EXPECT_FALSE(m.license.empty()) << name << "/" << m.id;
        }
    }
}

TEST(ModelPackTest, ResolvePackByPathAndUnknownName) {
    const std::filesystem::path example =
        std::filesystem::path(FG_SOURCE_DIR) / "packs/insightface_buffalo_l.example.json";
    FG_REQUIRE_PATH(example);
    auto pack = ResolvePack(example.string());
    ASSERT_TRUE(pack.ok()) << pack.status().ToString();
    EXPECT_EQ(pack->name, "buffalo_l");
    ASSERT_NE(pack->FindById("det_10g"), nullptr);
    EXPECT_TRUE(pack->FindById("det_10g")->dynamic_input);

    auto unknown = ResolvePack("no_such_pack");
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
    EXPECT_NE(unknown.status().message().find("default"), std::string::npos)
        << unknown.status().message();
    EXPECT_NE(unknown.status().message().find("mobilefacenet128"), std::string::npos);
}

TEST(ModelPackTest, VerifyDefaultPack) {
    auto pack = ResolvePack("default");
    ASSERT_TRUE(pack.ok());
    for (const auto& m : pack->models) FG_REQUIRE_PATH(m.path);
    const auto checks = VerifyPack(*pack);
    ASSERT_EQ(checks.size(), pack->models.size());
    for (const auto& c : checks) {
        EXPECT_EQ(c.pack, "default");
        EXPECT_TRUE(c.present) << c.id;
        EXPECT_TRUE(c.hash_ok) << c.id << ": expected " << c.expected_sha256 << ", got "
                               << c.actual_sha256;
        EXPECT_FALSE(c.role.empty());
    }
}

TEST(ModelPackTest, VerifyDetectsTamperedAndMissingFiles) {
    auto builtin = ResolvePack("default");
    ASSERT_TRUE(builtin.ok());
    const PackModel* eye = builtin->FindById("fr_eye");
    ASSERT_NE(eye, nullptr);
    FG_REQUIRE_PATH(eye->path);

    fg::testing::TmpDir tmp;
    std::filesystem::copy_file(eye->path, tmp / "fr_eye.onnx");
    {
        std::fstream f(tmp / "fr_eye.onnx", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(1000);
        f.put('\x5a');
    }
    json j = {{"name", "tampered"},
              {"models",
               {{{"id", "fr_eye"},
                 {"role", "attribute"},
                 {"decoder", "eye_state"},
                 {"path", "fr_eye.onnx"},
                 {"sha256", eye->sha256},
                 {"input", {{"width", 24}, {"height", 24}, {"color", "gray"}}}},
                {{"id", "gone"},
                 {"role", "attribute"},
                 {"decoder", "eye_state"},
                 {"path", "gone.onnx"},
                 {"sha256", eye->sha256},
                 {"input", {{"width", 24}, {"height", 24}}}}}}};
    auto pack = ParsePack(j, tmp / "pack.json");
    ASSERT_TRUE(pack.ok()) << pack.status().ToString();
    const auto checks = VerifyPack(*pack);
    ASSERT_EQ(checks.size(), 2u);
    EXPECT_TRUE(checks[0].present);
    EXPECT_FALSE(checks[0].hash_ok);
    EXPECT_EQ(checks[0].expected_sha256, eye->sha256);
    EXPECT_EQ(checks[0].actual_sha256.size(), 64u);
    EXPECT_NE(checks[0].actual_sha256, eye->sha256);
    EXPECT_FALSE(checks[1].present);
    EXPECT_FALSE(checks[1].hash_ok);
}

}   // namespace
}   // namespace fg::infer
