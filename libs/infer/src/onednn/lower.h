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
#include <string>
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
        int threads = 1;   // OpenMP threads it was created for (and must run with)
        std::string node;  // "op:name" of the node it was lowered from (FG_ONEDNN_PROFILE)
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
    int threads = 1;   // the most threads any step uses
};

/// Estimated work of one node in flops: 2 x multiply-adds for Conv/Gemm/MatMul, and for the
/// memory-bound ops 100 per output element (about what a convolution does in the time one
/// element is read and written), so that one threshold serves both.
std::int64_t NodeWork(const Graph& graph, const Node& node);
/// Sum of NodeWork over the live nodes.
std::int64_t GraphWork(const Graph& graph);

/// How many threads each step gets: steps whose work is under `parallel_work` run on one
/// thread (waking a second OpenMP thread and meeting it at the primitive's barrier costs
/// more than it saves), the others on `max_threads`.
struct ThreadPolicy {
    int max_threads = 1;
    std::int64_t parallel_work = 0;
};

/// Errors: Unimplemented naming the op when oneDNN cannot run a node; Internal for a oneDNN
/// failure while creating primitives.
/// Primitives are created under each step's thread count (oneDNN's OpenMP build fixes it at
/// creation); the caller's OpenMP thread count is restored before returning.
Result<std::shared_ptr<const Plan>> LowerGraph(const Graph& graph, const dnnl::engine& engine,
                                               const ThreadPolicy& threads);

/// One session's buffers for one plan. Not thread-safe.
class Executor {
  public:
    static Result<std::unique_ptr<Executor>> Create(std::shared_ptr<const Plan> plan);

    /// Runs the plan, each step on its own thread count (the calling thread's OpenMP count is
    /// restored afterwards); `outputs` receive pointers into this executor's buffers.
    Status Run(dnnl::stream& stream, std::span<const float* const> inputs,
               std::vector<const float*>& outputs);

    const Plan& plan() const { return *plan_; }

  private:
    /// Executes step `s`: a oneDNN primitive, or a C++ loop over its tensors.
    void RunStep(dnnl::stream& stream, std::size_t s);
    void RunSteps(dnnl::stream& stream);

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
