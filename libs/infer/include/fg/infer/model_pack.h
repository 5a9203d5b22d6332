// SPDX-License-Identifier: Apache-2.0
// Model packs: a JSON manifest naming each model file, its hash, role, input format and output
// decoding. See docs/model-packs.md for the format.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/infer/backend.h"

namespace fg::infer {

enum class ModelRole { kDetector, kLandmarker, kEmbedder, kLiveness, kAttribute };
std::string_view ModelRoleName(ModelRole role);

enum class ColorOrder { kBgr, kRgb, kGray };

/// How an image becomes the model's input tensor: resize to width x height (letterboxed or
/// stretched), convert colour, then (pixel - mean[c]) * scale[c], NCHW float32.
struct InputFormat {
    std::string name;              ///< graph input name (informational)
    int width = 0;
    int height = 0;
    ColorOrder color = ColorOrder::kBgr;
    std::array<float, 3> mean{0, 0, 0};
    std::array<float, 3> scale{1, 1, 1};
    bool letterbox = true;         ///< keep aspect ratio, pad right/bottom (detectors)
};

struct PackModel {
    std::string id;                ///< unique within the pack
    ModelRole role = ModelRole::kDetector;
    std::filesystem::path path;    ///< resolved absolute path
    std::string sha256;            ///< expected (may be empty for user packs)
    std::string decoder;           ///< "ultraface", "yunet", "scrfd", "landmarks68", "arcface", ...
    InputFormat input;
    bool dynamic_input = false;    ///< the file has dynamic dims: fix them to input.{height,width}
    bool dynamic_batch = false;    ///< try to rewrite a batch-1 graph for batched runs
    int output_dim = 0;            ///< embedders: vector length
    std::string license;
    nlohmann::json params;         ///< decoder-specific settings (strides, anchors, thresholds)

    ModelSpec ToSpec() const;
};

struct ModelPack {
    std::string name;
    std::string description;
    std::filesystem::path manifest_path;   ///< empty for built-in packs
    std::vector<PackModel> models;

    /// First model with `role`, or nullptr.
    const PackModel* Find(ModelRole role) const;
    const PackModel* FindById(std::string_view id) const;
};

/// Placeholders allowed in "path": ${models} (ModelsDir()), ${shared} (SharedDir()); a relative
/// path is resolved against the manifest's folder (or ModelsDir() for built-in packs).
Result<ModelPack> ParsePack(const nlohmann::json& manifest, const std::filesystem::path& manifest_path = {});
Result<ModelPack> LoadPackFile(const std::filesystem::path& manifest_path);

/// Built-in packs shipped inside the binary (default, yunet_s, yunet_n, scrfd_500m, scrfd_2.5g,
/// scrfd_500m_dynamic, mobilefacenet128, ...).
std::vector<std::string> BuiltinPackNames();

/// Resolves `name_or_path`: a built-in pack name, or a path to a manifest file.
Result<ModelPack> ResolvePack(const std::string& name_or_path);

struct ModelCheck {
    std::string pack;
    std::string id;
    std::string role;
    std::filesystem::path path;
    bool present = false;
    bool hash_ok = false;
    std::string expected_sha256;
    std::string actual_sha256;
};

/// Checks every model file of a pack: present, and hash as expected.
std::vector<ModelCheck> VerifyPack(const ModelPack& pack);

}  // namespace fg::infer
