// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for ONNX model import and the oneDNN lowering (a user's --pack can name any
// .onnx file): SummarizeOnnx (protobuf parse, topology and tensor size checks), the batch and
// shape rewrites, OnnxSource::Parse, BuildGraph for the declared input shapes (dynamic dims set
// to 1), LowerGraph (oneDNN primitive creation) and, for tiny graphs, one run on zeros. Sizes
// are capped so that each input runs in milliseconds: the bugs live in attribute and shape
// handling, not in big tensors. Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "../src/onednn/graph.h"
#include "../src/onednn/lower.h"
#include "fg/infer/onnx_graph.h"

namespace {

using Shapes = std::vector<std::vector<std::int64_t>>;
namespace dnn = fg::infer::onednn;

constexpr std::int64_t kMaxInputElements = 1 << 14;   // per input
constexpr std::int64_t kMaxLowerWork = 50'000'000;    // GraphWork (flops) worth lowering
constexpr std::int64_t kMaxRunWork = 2'000'000;       // ... and running once
constexpr std::size_t kMaxNodes = 64;
constexpr std::size_t kMaxActivationBytes = 16 << 20;

void Lower(const fg::infer::OnnxGraphSummary& summary, const std::string& bytes) {
    auto source = dnn::OnnxSource::Parse(bytes);
    if (!source.ok()) return;
    Shapes shapes = summary.input_shapes;
    for (auto& s : shapes) {
        std::int64_t n = 1;
        for (auto& d : s) {
            if (d <= 0) d = 1;
            if (d > kMaxInputElements) return;
            n *= d;
            if (n > kMaxInputElements) return;
        }
    }
    auto graph = dnn::BuildGraph(**source, shapes);
    if (!graph.ok() || graph->nodes.size() > kMaxNodes) return;
    for (const auto& v : graph->values) {
        if (dnn::Numel(v.shape) > static_cast<std::int64_t>(kMaxActivationBytes / 4)) return;
    }
    const std::int64_t work = dnn::GraphWork(*graph);
    if (work < 0 || work > kMaxLowerWork) return;
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    auto plan = dnn::LowerGraph(*graph, engine, {.max_threads = 1, .parallel_work = work + 1});
    if (!plan.ok() || work > kMaxRunWork) return;
    std::size_t total = (*plan)->scratchpad_bytes;
    for (auto b : (*plan)->slot_bytes) total += b;
    if (total > kMaxActivationBytes) return;
    auto executor = dnn::Executor::Create(*plan);
    if (!executor.ok()) return;
    std::vector<std::vector<float>> inputs;
    std::vector<const float*> ptrs;
    for (const auto& s : (*plan)->input_shapes) {
        inputs.emplace_back(static_cast<std::size_t>(dnn::Numel(s)), 0.f);
    }
    for (const auto& in : inputs) ptrs.push_back(in.data());
    dnnl::stream stream(engine);
    std::vector<const float*> outputs;
    (void)(*executor)->Run(stream, ptrs, outputs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    auto summary = fg::infer::SummarizeOnnx(bytes);
    if (!summary.ok()) return 0;
    // The loaders' rewrites see the same bytes (--pack dynamic_input / dynamic_batch).
    (void)fg::infer::MakeOnnxBatchDynamic(bytes);
    if (!summary->input_shapes.empty()) {
        std::vector<std::int64_t> shape = summary->input_shapes[0];
        for (auto& d : shape) d = d <= 0 ? 1 : d;
        (void)fg::infer::FixOnnxInputShape(bytes, shape);
    }
    // oneDNN reports failures as dnnl::error; the backend's Load catches them the same way.
    try {
        Lower(*summary, bytes);
    } catch (const std::exception&) {
    }
    return 0;
}
