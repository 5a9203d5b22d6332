// SPDX-License-Identifier: Apache-2.0
#include "backend.h"

#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include <oneapi/dnnl/dnnl.hpp>

#include "../sha256.h"
#include "fg/base/log.h"
#include "fg/infer/onnx_graph.h"
#include "graph.h"
#include "lower.h"
#include "session_checks.h"

namespace fg::infer::onednn {
using detail::CheckInputs;
using detail::ReadVerifiedOnnx;
using detail::VerifiedOnnx;
using detail::ShapeString;

namespace {

using Shapes = std::vector<std::vector<std::int64_t>>;

/// Work (flops, lower.h NodeWork) from which a step is split between threads; smaller steps
/// run on one thread whatever the configured count. With passive OpenMP waiting each parallel
/// region costs ~15-20 us to wake the second thread and meet it at the barrier, so a step must
/// take 2x that alone to gain (measured, BENCHMARKS.md "Inference backends": with every step
/// on 2 threads fr_gender took 0.92 ms instead of 0.44, fr_landmark 0.67 instead of 0.20).
/// FG_ONEDNN_PARALLEL_MFLOP overrides it (0 = split every step, as before).
std::int64_t ParallelWork() {
    static const std::int64_t work = [] {
        const char* e = std::getenv("FG_ONEDNN_PARALLEL_MFLOP");
        return static_cast<std::int64_t>((e ? std::atof(e) : 16.0) * 1e6);
    }();
    return work;
}

class OneDnnModel;

class OneDnnSession final : public Session {
  public:
    OneDnnSession(std::shared_ptr<const OneDnnModel> model, dnnl::stream stream)
        : model_(std::move(model)), stream_(std::move(stream)) {}

    Status Run(std::span<const TensorView> inputs, std::vector<TensorView>& outputs) override;

  private:

    std::shared_ptr<const OneDnnModel> model_;
    dnnl::stream stream_;   // one per session: sessions run on their own threads
    // Activation buffers per input shape; the plan (weights, primitives) lives in the model.
    std::map<Shapes, std::unique_ptr<Executor>> executors_;
    std::vector<const float*> raw_outputs_;
};

class OneDnnModel final : public Model, public std::enable_shared_from_this<OneDnnModel> {
  public:
    OneDnnModel(ModelInfo info, std::shared_ptr<const OnnxSource> source, dnnl::engine engine,
                int threads)
        : info_(std::move(info)),
          source_(std::move(source)),
          engine_(std::move(engine)),
          threads_(threads) {}

    const ModelInfo& info() const override { return info_; }
    int threads() const { return threads_; }
    const dnnl::engine& engine() const { return engine_; }

    Result<std::unique_ptr<Session>> CreateSession() const override try {
        return std::unique_ptr<Session>(
            std::make_unique<OneDnnSession>(shared_from_this(), dnnl::stream(engine_)));
    } catch (const dnnl::error& e) {
        return Internal(std::string("oneDNN cannot create a stream: ") + e.what());
    }

    /// The plan for these input shapes, built on first use and shared by every session.
    Result<std::shared_ptr<const Plan>> PlanFor(const Shapes& shapes) const {
        std::lock_guard lock(mu_);
        if (auto it = plans_.find(shapes); it != plans_.end()) return it->second;
        FG_ASSIGN_OR_RETURN(Graph graph, BuildGraph(*source_, shapes));
        // oneDNN fixes a primitive's thread count when it is created (an explicit OpenMP
        // num_threads), so each step's count is set while its primitive is created.
        const ThreadPolicy policy{.max_threads = threads_ > 0 ? threads_ : omp_get_max_threads(),
                                  .parallel_work = ParallelWork()};
        FG_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, LowerGraph(graph, engine_, policy));
        std::size_t parallel = 0;
        for (const auto& st : plan->steps) parallel += st.threads > 1 ? 1 : 0;
        spdlog::debug("model '{}': plan for {}: {:.1f} MFLOP, {} of {} steps on {} threads",
                      info_.id, ShapeString(shapes.empty() ? std::vector<std::int64_t>{} : shapes[0]),
                      static_cast<double>(GraphWork(graph)) / 1e6, parallel, plan->steps.size(),
                      policy.max_threads);
        plans_[shapes] = plan;
        return plan;
    }

  private:
    ModelInfo info_;
    std::shared_ptr<const OnnxSource> source_;
    dnnl::engine engine_;
    int threads_;
    mutable std::mutex mu_;
    mutable std::map<Shapes, std::shared_ptr<const Plan>> plans_;
};

Status OneDnnSession::Run(std::span<const TensorView> inputs, std::vector<TensorView>& outputs) {
    const ModelInfo& info = model_->info();
    outputs.clear();
    FG_RETURN_IF_ERROR(CheckInputs(info, inputs));
    Shapes shapes;
    std::vector<const float*> ptrs;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        shapes.push_back(inputs[i].shape);
        ptrs.push_back(inputs[i].data);
    }
    auto it = executors_.find(shapes);
    if (it == executors_.end()) {
        auto plan = model_->PlanFor(shapes);
        if (!plan.ok()) return plan.status().WithContext("model '" + info.id + "'");
        FG_ASSIGN_OR_RETURN(auto ex, Executor::Create(std::move(plan).value()));
        it = executors_.emplace(shapes, std::move(ex)).first;
    }
    Executor& ex = *it->second;
    if (Status st = ex.Run(stream_, ptrs, raw_outputs_); !st.ok()) {
        return st.WithContext("model '" + info.id + "'");
    }
    const auto& out_shapes = ex.plan().output_shapes;
    for (std::size_t i = 0; i < raw_outputs_.size(); ++i) {
        outputs.push_back({info.output_names[i], out_shapes[i], raw_outputs_[i]});
    }
    return Status::Ok();
}

/// Declared input shapes with the batch at `batch`; empty when another dim is dynamic.
Shapes ConcreteShapes(const Shapes& declared, std::int64_t batch) {
    Shapes shapes = declared;
    for (auto& s : shapes) {
        if (s.empty()) return {};
        s[0] = batch;
        for (auto d : s) {
            if (d <= 0) return {};
        }
    }
    return shapes;
}

/// The batch rewrite is trusted only when the IR at batch 2 gives batch-2 outputs with the
/// batch-1 per-item shapes (a leftover [1, ...] would silently mix items).
Status CheckBatchRewrite(const OnnxSource& source, const Shapes& declared) {
    const Shapes s1 = ConcreteShapes(declared, 1);
    if (s1.empty()) return Unimplemented("an input has dynamic dims besides the batch");
    FG_ASSIGN_OR_RETURN(Graph g1, BuildGraph(source, s1));
    FG_ASSIGN_OR_RETURN(Graph g2, BuildGraph(source, ConcreteShapes(declared, 2)));
    for (std::size_t i = 0; i < g1.outputs.size(); ++i) {
        const auto& a = g1.values[g1.outputs[i]].shape;
        const auto& b = g2.values[g2.outputs[i]].shape;
        if (a.empty() || b.empty() || a[0] != 1 || b[0] != 2 ||
            !std::equal(a.begin() + 1, a.end(), b.begin() + 1, b.end())) {
            return Unimplemented("output " + std::to_string(i) + " has shape " + ShapeString(b) +
                                 " for a batch of 2 (batch 1: " + ShapeString(a) + ")");
        }
    }
    return Status::Ok();
}

class OneDnnBackend final : public Backend {
  public:
    explicit OneDnnBackend(int threads) : threads_(threads) {}
    std::string_view name() const override { return "onednn"; }
    Result<std::shared_ptr<const Model>> Load(const ModelSpec& spec) const override;

  private:
    Result<std::shared_ptr<const Model>> LoadImpl(const ModelSpec& spec) const;
    int threads_;
};

Result<std::shared_ptr<const Model>> OneDnnBackend::Load(const ModelSpec& spec) const {
    try {
        return LoadImpl(spec);
    } catch (const dnnl::error& e) {
        return Internal("model '" + spec.id + "': oneDNN: " + e.what());
    } catch (const std::exception& e) {
        return Internal("model '" + spec.id + "': " + e.what());
    }
}

Result<std::shared_ptr<const Model>> OneDnnBackend::LoadImpl(const ModelSpec& spec) const {
    const std::filesystem::path& path = spec.path;
    const std::string label = "model '" + spec.id + "'";
    FG_ASSIGN_OR_RETURN(VerifiedOnnx verified, ReadVerifiedOnnx(spec));
    std::string bytes = std::move(verified.bytes);
    const std::string actual = verified.sha256;
    ModelInfo info;
    info.id = spec.id;
    info.path = path;
    info.sha256 = actual;
    info.max_batch = 1;
    FG_ASSIGN_OR_RETURN(OnnxGraphSummary summary, SummarizeOnnx(bytes));
    auto source_or = OnnxSource::Parse(bytes);
    if (!source_or.ok()) return source_or.status().WithContext(label);
    std::shared_ptr<const OnnxSource> source = std::move(source_or).value();
    if (spec.dynamic_batch) {
        auto try_batch = [&]() -> Result<std::shared_ptr<const OnnxSource>> {
            FG_ASSIGN_OR_RETURN(std::string rewritten, MakeOnnxBatchDynamic(bytes));
            FG_ASSIGN_OR_RETURN(auto src, OnnxSource::Parse(rewritten));
            FG_RETURN_IF_ERROR(CheckBatchRewrite(*src, summary.input_shapes));
            return src;
        };
        auto rewritten = try_batch();
        if (rewritten.ok()) {
            source = std::move(rewritten).value();
            info.max_batch = 0;
        } else {
            spdlog::warn("{}: batch rewrite of {} not usable, running one item at a time: {}",
                         label, path.string(), rewritten.status().ToString());
        }
    }
    info.input_names = summary.input_names;
    info.input_shapes = summary.input_shapes;
    info.output_names = summary.output_names;

    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    auto model = std::make_shared<OneDnnModel>(std::move(info), source, engine, threads_);
    // Plan the declared shape now so an unsupported op fails the load (and "auto" can fall
    // back), and run it once so the first real call does not pay for JIT and page faults.
    const Shapes shapes = ConcreteShapes(model->info().input_shapes, 1);
    if (!shapes.empty()) {
        auto plan = model->PlanFor(shapes);
        if (!plan.ok()) return plan.status().WithContext(label + " (" + path.string() + ")");
        FG_ASSIGN_OR_RETURN(auto session, model->CreateSession());
        std::vector<Tensor> zeros;
        std::vector<TensorView> views, outs;
        for (const auto& s : shapes) zeros.push_back({s, std::vector<float>(Numel(s), 0.f)});
        for (const auto& z : zeros) views.push_back(z.View());
        if (Status st = session->Run(views, outs); !st.ok()) return st.WithContext("warm-up");
    }
    spdlog::debug("{}: loaded {} with onednn (max_batch {})", label, path.string(),
                  model->info().max_batch);
    return std::shared_ptr<const Model>(std::move(model));
}

class AutoBackend final : public Backend {
  public:
    AutoBackend(std::shared_ptr<Backend> onednn, std::shared_ptr<Backend> fallback)
        : onednn_(std::move(onednn)), fallback_(std::move(fallback)) {}
    std::string_view name() const override { return "auto"; }
    Result<std::shared_ptr<const Model>> Load(const ModelSpec& spec) const override {
        auto model = onednn_->Load(spec);
        if (model.ok()) return model;
        const Status& st = model.status();
        // File problems are the same for every backend: report them, do not retry.
        if (st.code() != StatusCode::kUnimplemented && st.code() != StatusCode::kInternal) {
            return st;
        }
        spdlog::info("model '{}': onednn cannot run it ({}); using opencv", spec.id, st.message());
        return fallback_->Load(spec);
    }

  private:
    std::shared_ptr<Backend> onednn_;
    std::shared_ptr<Backend> fallback_;
};

}   // namespace

std::shared_ptr<Backend> MakeOneDnnBackend(const BackendConfig& config) {
    return std::make_shared<OneDnnBackend>(config.threads);
}

std::shared_ptr<Backend> MakeAutoBackend(const BackendConfig& config,
                                         std::shared_ptr<Backend> fallback) {
    return std::make_shared<AutoBackend>(MakeOneDnnBackend(config), std::move(fallback));
}

}   // namespace fg::infer::onednn
