// SPDX-License-Identifier: Apache-2.0
#include "session_checks.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "fg/infer/onnx_graph.h"
#include "sha256.h"

namespace fg::infer::detail {

std::string ShapeString(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ",";
        s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
    }
    return s + "]";
}

namespace {
Status CheckInput(const ModelInfo& info, std::size_t index, const TensorView& t) {
    const std::string& name = info.input_names[index];
    const auto& declared = info.input_shapes[index];
    auto fail = [&](const std::string& why) {
        return InvalidArgument("model '" + info.id + "' input '" + name + "': " + why + " (got " +
                               ShapeString(t.shape) + ", expected " + ShapeString(declared) + ")");
    };
    if (t.data == nullptr) return fail("null data");
    if (t.shape.empty()) return fail("empty shape");
    for (auto d : t.shape) {
        if (d <= 0 || d > std::numeric_limits<int>::max()) return fail("dims must be positive");
    }
    if (!declared.empty()) {
        if (t.shape.size() != declared.size()) return fail("wrong rank");
        for (std::size_t i = 1; i < declared.size(); ++i) {
            if (declared[i] > 0 && declared[i] != t.shape[i]) return fail("wrong shape");
        }
    }
    if (info.max_batch > 0 && t.shape[0] > info.max_batch) {
        return fail("batch " + std::to_string(t.shape[0]) + " exceeds max_batch " +
                    std::to_string(info.max_batch) + "; run one item at a time");
    }
    return Status::Ok();
}
}  // namespace

Result<VerifiedOnnx> ReadVerifiedOnnx(const ModelSpec& spec) {
    const std::filesystem::path& path = spec.path;
    const std::string label = "model '" + spec.id + "'";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return NotFound(label + ": model file not found: " + path.string());
    }
    auto bytes_or = ReadFileBytes(path);
    if (!bytes_or.ok()) return bytes_or.status().WithContext(label);
    VerifiedOnnx out;
    out.bytes = std::move(bytes_or).value();
    FG_ASSIGN_OR_RETURN(out.sha256, Sha256Bytes(out.bytes));
    if (!spec.sha256.empty()) {
        std::string expected = spec.sha256;
        std::transform(expected.begin(), expected.end(), expected.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (expected != out.sha256) {
            return DataLoss("sha256 mismatch for " + path.string() + ": expected " + expected +
                            ", got " + out.sha256);
        }
    }
    // SummarizeOnnx validates topology and weight sizes before anything indexes into them.
    if (auto s = SummarizeOnnx(out.bytes); !s.ok()) {
        return InvalidArgument(label + ": " + path.string() + ": " + s.status().message());
    }
    if (!spec.input_shape.empty()) {
        auto fixed = FixOnnxInputShape(out.bytes, spec.input_shape, 0);
        if (!fixed.ok()) return fixed.status().WithContext(label + " (" + path.string() + ")");
        out.bytes = std::move(fixed).value();
    }
    return out;
}

Status CheckInputs(const ModelInfo& info, std::span<const TensorView> inputs) {
    if (inputs.size() != info.input_names.size()) {
        return InvalidArgument("model '" + info.id + "' takes " +
                               std::to_string(info.input_names.size()) + " input(s), got " +
                               std::to_string(inputs.size()));
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) FG_RETURN_IF_ERROR(CheckInput(info, i, inputs[i]));
    return Status::Ok();
}

}  // namespace fg::infer::detail
