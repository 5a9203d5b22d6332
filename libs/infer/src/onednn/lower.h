// SPDX-License-Identifier: Apache-2.0
// Lowers the IR (graph.h) to oneDNN primitives. A Plan is built once per input shape and shared
// by every Session of a Model: it owns the primitives and the weights, already reordered into
// the layouts oneDNN chose (format_tag::any). Each Session owns an Executor per plan, holding
// its activation buffers and the scratchpad.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <cstdlib>
#include <span>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "fg/base/status.h"
#include "graph.h"

namespace fg::infer::onednn {

class Plan {
  public:
    /// A tensor as oneDNN sees it: a descriptor over the storage of its root (itself unless it
    /// is a view such as a Reshape of a plain tensor or the in-place target of a `sum`).
    struct Tensor {
        dnnl::memory::desc md;
        int root = -1;
        bool external = false;   // a graph input: the caller's buffer
        dnnl::memory constant;   // weights and other load-time data, shared by all sessions
        int slot = -1;           // activation buffer index (roots only)
    };
    using Loop = std::function<void(float* const* ptrs)>;
    struct Step {
        dnnl::primitive prim;
        std::vector<std::pair<int, int>> args;   // oneDNN argument -> tensor
        Loop loop;                               // set for the steps run as plain loops
        std::vector<int> loop_tensors;           // inputs then outputs, all plain
        bool scratchpad = false;
    };

    dnnl::engine engine;
    std::vector<Tensor> tensors;
    std::vector<Step> steps;
    std::vector<std::size_t> slot_bytes;
    std::size_t scratchpad_bytes = 0;
    std::vector<int> inputs;    // tensors bound to the caller's inputs
    std::vector<int> outputs;   // plain tensors, graph output order
    std::vector<std::vector<std::int64_t>> output_shapes;
    std::vector<std::vector<std::int64_t>> input_shapes;
};

/// Errors: Unimplemented naming the op when oneDNN cannot run a node; Internal for a oneDNN
/// failure while creating primitives.
Result<std::shared_ptr<const Plan>> LowerGraph(const Graph& graph, const dnnl::engine& engine);

/// One session's buffers for one plan. Not thread-safe.
class Executor {
  public:
    static Result<std::unique_ptr<Executor>> Create(std::shared_ptr<const Plan> plan);

    /// Runs the plan; `outputs` receive pointers into this executor's buffers.
    Status Run(dnnl::stream& stream, std::span<const float* const> inputs,
               std::vector<const float*>& outputs);

  private:
    /// Executes step `s`: a oneDNN primitive, or a C++ loop over its tensors.
    void RunStep(dnnl::stream& stream, std::size_t s);

    struct Buffer {
        void operator()(void* p) const { std::free(p); }
    };
    std::shared_ptr<const Plan> plan_;
    std::vector<std::unique_ptr<void, Buffer>> slots_;
    std::unique_ptr<void, Buffer> scratchpad_;
    std::vector<dnnl::memory> memories_;
    std::vector<std::unordered_map<int, dnnl::memory>> args_;
    std::vector<std::vector<float*>> loop_ptrs_;
};

}   // namespace fg::infer::onednn
