// SPDX-License-Identifier: Apache-2.0
#include "fg/infer/model_pack.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <initializer_list>
#include <set>
#include <string_view>

#include "builtin_packs.h"
#include "fg/base/paths.h"
#include "fg/infer/onnx_graph.h"

namespace fg::infer {
namespace {

using nlohmann::json;

constexpr int kMaxInputSide = 8192;

/// Builds error messages that name the manifest, the model and the field.
class Ctx {
  public:
    Ctx(std::string pack, const std::filesystem::path& manifest)
        : where_(manifest.empty() ? "pack '" + pack + "'" : manifest.string()) {}

    void SetModel(std::string id) { model_ = std::move(id); }

    Status Error(std::string_view field, const std::string& why) const {
        std::string msg = where_;
        if (!model_.empty()) msg += ", model '" + model_ + "'";
        msg += ": field '" + std::string(field) + "': " + why;
        return InvalidArgument(std::move(msg));
    }

  private:
    std::string where_;
    std::string model_;
};

Status CheckKeys(const json& obj, std::initializer_list<std::string_view> allowed,
                 std::string_view prefix, const Ctx& ctx) {
    for (const auto& [key, value] : obj.items()) {
        if (!key.empty() && key[0] == '_') continue;   // "_comment" and friends
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
            return ctx.Error(std::string(prefix) + key, "unknown field (a typo?)");
        }
    }
    return Status::Ok();
}

Result<std::string> GetString(const json& obj, const char* key, std::string_view field,
                              const Ctx& ctx, bool required, bool allow_empty = false) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        if (required) return ctx.Error(field, "missing");
        return std::string();
    }
    if (!it->is_string()) return ctx.Error(field, "must be a string");
    std::string v = it->get<std::string>();
    if (v.empty() && !allow_empty) return ctx.Error(field, "must not be empty");
    return v;
}

Result<bool> GetBool(const json& obj, const char* key, std::string_view field, const Ctx& ctx,
                     bool fallback) {
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    if (!it->is_boolean()) return ctx.Error(field, "must be true or false");
    return it->get<bool>();
}

Result<int> GetInt(const json& obj, const char* key, std::string_view field, const Ctx& ctx,
                   bool required, int lo, int hi) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        if (required) return ctx.Error(field, "missing");
        return 0;
    }
    if (!it->is_number_integer()) return ctx.Error(field, "must be an integer");
    const auto v = it->get<std::int64_t>();
    if (v < lo || v > hi) {
        return ctx.Error(field, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                    "], got " + std::to_string(v));
    }
    return static_cast<int>(v);
}

/// A number (applied to all channels) or an array of three numbers.
Result<std::array<float, 3>> GetTriple(const json& obj, const char* key, std::string_view field,
                                       const Ctx& ctx, std::array<float, 3> fallback) {
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    auto num = [&](const json& j, float& out) {
        if (!j.is_number()) return false;
        const double d = j.get<double>();
        if (!std::isfinite(d)) return false;
        out = static_cast<float>(d);
        return true;
    };
    std::array<float, 3> v{};
    if (it->is_number()) {
        if (!num(*it, v[0])) return ctx.Error(field, "must be a finite number");
        v[1] = v[2] = v[0];
        return v;
    }
    if (!it->is_array() || it->size() != 3) {
        return ctx.Error(field, "must be a number or an array of 3 numbers");
    }
    for (std::size_t c = 0; c < 3; ++c) {
        if (!num((*it)[c], v[c])) {
            return ctx.Error(field, "must be a number or an array of 3 numbers");
        }
    }
    return v;
}

Result<ModelRole> ParseRole(const std::string& s, const Ctx& ctx) {
    for (auto r : {ModelRole::kDetector, ModelRole::kLandmarker, ModelRole::kEmbedder,
                   ModelRole::kLiveness, ModelRole::kAttribute}) {
        if (s == ModelRoleName(r)) return r;
    }
    return ctx.Error("role",
                     "unknown role '" + s +
                         "' (expected detector, landmarker, embedder, liveness or attribute)");
}

Result<ColorOrder> ParseColor(const std::string& s, const Ctx& ctx) {
    if (s == "bgr") return ColorOrder::kBgr;
    if (s == "rgb") return ColorOrder::kRgb;
    if (s == "gray") return ColorOrder::kGray;
    return ctx.Error("input.color", "unknown colour '" + s + "' (expected bgr, rgb or gray)");
}

Result<std::filesystem::path> ResolvePath(std::string raw, const std::filesystem::path& manifest,
                                          const Ctx& ctx) {
    const std::pair<std::string_view, std::filesystem::path> vars[] = {{"${models}", ModelsDir()},
                                                                       {"${shared}", SharedDir()}};
    for (const auto& [var, dir] : vars) {
        for (auto pos = raw.find(var); pos != std::string::npos; pos = raw.find(var)) {
            raw.replace(pos, var.size(), dir.string());
        }
    }
    if (raw.find("${") != std::string::npos) {
        return ctx.Error("path",
                         "unknown placeholder in '" + raw + "' (use ${models} or ${shared})");
    }
    std::filesystem::path p(raw);
    if (p.is_relative()) p = (manifest.empty() ? ModelsDir() : manifest.parent_path()) / p;
    std::error_code ec;
    auto abs = std::filesystem::absolute(p, ec);
    return (ec ? p : abs).lexically_normal();
}

Result<std::string> ParseSha256(const json& m, const Ctx& ctx) {
    FG_ASSIGN_OR_RETURN(std::string sha, GetString(m, "sha256", "sha256", ctx, false, true));
    if (sha.empty()) return sha;
    std::transform(sha.begin(), sha.end(), sha.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const bool hex =
        std::all_of(sha.begin(), sha.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
    if (sha.size() != 64 || !hex) return ctx.Error("sha256", "must be 64 hex digits");
    return sha;
}

Result<InputFormat> ParseInput(const json& m, const Ctx& ctx) {
    auto it = m.find("input");
    if (it == m.end()) return ctx.Error("input", "missing");
    if (!it->is_object()) return ctx.Error("input", "must be an object");
    const json& in = *it;
    FG_RETURN_IF_ERROR(CheckKeys(
        in, {"name", "width", "height", "color", "mean", "scale", "letterbox"}, "input.", ctx));
    InputFormat f;
    FG_ASSIGN_OR_RETURN(f.name, GetString(in, "name", "input.name", ctx, false));
    FG_ASSIGN_OR_RETURN(f.width, GetInt(in, "width", "input.width", ctx, true, 1, kMaxInputSide));
    FG_ASSIGN_OR_RETURN(f.height,
                        GetInt(in, "height", "input.height", ctx, true, 1, kMaxInputSide));
    FG_ASSIGN_OR_RETURN(std::string color, GetString(in, "color", "input.color", ctx, false));
    if (!color.empty()) {
        FG_ASSIGN_OR_RETURN(f.color, ParseColor(color, ctx));
    }
    FG_ASSIGN_OR_RETURN(f.mean, GetTriple(in, "mean", "input.mean", ctx, {0, 0, 0}));
    FG_ASSIGN_OR_RETURN(f.scale, GetTriple(in, "scale", "input.scale", ctx, {1, 1, 1}));
    FG_ASSIGN_OR_RETURN(f.letterbox, GetBool(in, "letterbox", "input.letterbox", ctx, true));
    return f;
}

Result<PackModel> ParseModel(const json& m, const std::filesystem::path& manifest, Ctx& ctx) {
    if (!m.is_object()) return ctx.Error("models[]", "each model must be an object");
    FG_ASSIGN_OR_RETURN(std::string id, GetString(m, "id", "id", ctx, true));
    ctx.SetModel(id);
    FG_RETURN_IF_ERROR(CheckKeys(m,
                                 {"id", "role", "decoder", "path", "sha256", "input", "output_dim",
                                  "dynamic_batch", "dynamic_input", "params", "license"},
                                 "", ctx));
    PackModel pm;
    pm.id = std::move(id);
    FG_ASSIGN_OR_RETURN(std::string role, GetString(m, "role", "role", ctx, true));
    FG_ASSIGN_OR_RETURN(pm.role, ParseRole(role, ctx));
    FG_ASSIGN_OR_RETURN(pm.decoder, GetString(m, "decoder", "decoder", ctx, true));
    FG_ASSIGN_OR_RETURN(std::string raw_path, GetString(m, "path", "path", ctx, true));
    FG_ASSIGN_OR_RETURN(pm.path, ResolvePath(std::move(raw_path), manifest, ctx));
    FG_ASSIGN_OR_RETURN(pm.sha256, ParseSha256(m, ctx));
    FG_ASSIGN_OR_RETURN(pm.input, ParseInput(m, ctx));
    FG_ASSIGN_OR_RETURN(pm.output_dim, GetInt(m, "output_dim", "output_dim", ctx, false, 1, 65536));
    if (pm.role == ModelRole::kEmbedder && pm.output_dim == 0) {
        return ctx.Error("output_dim", "required for an embedder (the vector length)");
    }
    FG_ASSIGN_OR_RETURN(pm.dynamic_batch, GetBool(m, "dynamic_batch", "dynamic_batch", ctx, false));
    FG_ASSIGN_OR_RETURN(pm.dynamic_input, GetBool(m, "dynamic_input", "dynamic_input", ctx, false));
    FG_ASSIGN_OR_RETURN(pm.license, GetString(m, "license", "license", ctx, false, true));
    pm.params = json::object();
    if (auto it = m.find("params"); it != m.end()) {
        if (!it->is_object()) return ctx.Error("params", "must be an object");
        pm.params = *it;
    }
    return pm;
}

Result<ModelPack> ParseBuiltin(std::string_view name, std::string_view text) {
    try {
        return ParsePack(json::parse(text), {});
    } catch (const std::exception& e) {
        return Internal("built-in pack '" + std::string(name) + "' is not valid JSON: " + e.what());
    }
}

}   // namespace

std::string_view ModelRoleName(ModelRole role) {
    switch (role) {
        case ModelRole::kDetector: return "detector";
        case ModelRole::kLandmarker: return "landmarker";
        case ModelRole::kEmbedder: return "embedder";
        case ModelRole::kLiveness: return "liveness";
        case ModelRole::kAttribute: return "attribute";
    }
    return "unknown";
}

ModelSpec PackModel::ToSpec() const {
    ModelSpec spec;
    spec.id = id;
    spec.path = path;
    spec.sha256 = sha256;
    if (dynamic_input) {
        const std::int64_t channels = input.color == ColorOrder::kGray ? 1 : 3;
        spec.input_shape = {1, channels, input.height, input.width};
    }
    spec.dynamic_batch = dynamic_batch;
    return spec;
}

const PackModel* ModelPack::Find(ModelRole role) const {
    for (const auto& m : models) {
        if (m.role == role) return &m;
    }
    return nullptr;
}

const PackModel* ModelPack::FindById(std::string_view id) const {
    for (const auto& m : models) {
        if (m.id == id) return &m;
    }
    return nullptr;
}

Result<ModelPack> ParsePack(const nlohmann::json& manifest,
                            const std::filesystem::path& manifest_path) {
    Ctx ctx("?", manifest_path);
    try {
        if (!manifest.is_object()) return ctx.Error("(root)", "the manifest must be a JSON object");
        ModelPack pack;
        FG_ASSIGN_OR_RETURN(pack.name, GetString(manifest, "name", "name", ctx, true));
        ctx = Ctx(pack.name, manifest_path);
        FG_RETURN_IF_ERROR(CheckKeys(manifest, {"name", "description", "models"}, "", ctx));
        FG_ASSIGN_OR_RETURN(pack.description,
                            GetString(manifest, "description", "description", ctx, false, true));
        pack.manifest_path = manifest_path;
        auto it = manifest.find("models");
        if (it == manifest.end()) return ctx.Error("models", "missing");
        if (!it->is_array() || it->empty()) return ctx.Error("models", "must be a non-empty array");
        std::set<std::string> ids;
        for (const auto& m : *it) {
            Ctx model_ctx = ctx;
            FG_ASSIGN_OR_RETURN(PackModel pm, ParseModel(m, manifest_path, model_ctx));
            if (!ids.insert(pm.id).second) return model_ctx.Error("id", "duplicate model id");
            pack.models.push_back(std::move(pm));
        }
        return pack;
    } catch (const std::exception& e) {
        // nlohmann throws on type confusion we did not foresee; never let it cross the module edge.
        return ctx.Error("(manifest)", std::string("invalid manifest: ") + e.what());
    }
}

Result<ModelPack> LoadPackFile(const std::filesystem::path& manifest_path) {
    FG_ASSIGN_OR_RETURN(std::string text, ReadFileBytes(manifest_path));
    json manifest;
    try {
        manifest = json::parse(text);
    } catch (const std::exception& e) {
        return InvalidArgument("invalid JSON in " + manifest_path.string() + ": " + e.what());
    }
    std::error_code ec;
    auto abs = std::filesystem::absolute(manifest_path, ec);
    return ParsePack(manifest, ec ? manifest_path : abs);
}

std::vector<std::string> BuiltinPackNames() {
    std::vector<std::string> names;
    for (const auto& [name, text] : detail::BuiltinPackSources()) names.emplace_back(name);
    return names;
}

Result<ModelPack> ResolvePack(const std::string& name_or_path) {
    for (const auto& [name, text] : detail::BuiltinPackSources()) {
        if (name == name_or_path) return ParseBuiltin(name, text);
    }
    std::error_code ec;
    if (!name_or_path.empty() && std::filesystem::exists(name_or_path, ec)) {
        return LoadPackFile(name_or_path);
    }
    std::string names;
    for (const auto& n : BuiltinPackNames()) names += (names.empty() ? "" : ", ") + n;
    return NotFound("no built-in pack or manifest file named '" + name_or_path +
                    "' (built-in packs: " + names + ")");
}

std::vector<ModelCheck> VerifyPack(const ModelPack& pack) {
    std::vector<ModelCheck> checks;
    for (const auto& m : pack.models) {
        ModelCheck c;
        c.pack = pack.name;
        c.id = m.id;
        c.role = std::string(ModelRoleName(m.role));
        c.path = m.path;
        c.expected_sha256 = m.sha256;
        std::error_code ec;
        c.present = std::filesystem::is_regular_file(m.path, ec);
        if (c.present) {
            auto sha = Sha256File(m.path);
            if (sha.ok()) c.actual_sha256 = *sha;
            // No expected hash (user packs) means nothing to contradict.
            c.hash_ok = sha.ok() && (m.sha256.empty() || m.sha256 == c.actual_sha256);
        }
        checks.push_back(std::move(c));
    }
    return checks;
}

}   // namespace fg::infer
