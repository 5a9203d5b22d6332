// SPDX-License-Identifier: Apache-2.0
#include "session_checks.h"

#include <limits>

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
