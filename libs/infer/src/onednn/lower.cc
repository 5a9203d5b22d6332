// SPDX-License-Identifier: Apache-2.0
#include "lower.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include <omp.h>

#include <oneapi/dnnl/dnnl_debug.h>

namespace fg::infer::onednn {
namespace {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

Dims ToDims(const std::vector<std::int64_t>& shape) {
    if (shape.empty()) return {1};
    return Dims(shape.begin(), shape.end());
}

Tag PlainTag(std::size_t rank) {
    switch (rank) {
        case 1:
            return Tag::a;
        case 2:
            return Tag::ab;
        case 3:
            return Tag::abc;
        case 4:
            return Tag::abcd;
        case 5:
            return Tag::abcde;
        default:
            return Tag::abcdef;
    }
}

memory::desc Plain(const std::vector<std::int64_t>& shape) {
    const Dims d = ToDims(shape);
    if (d.size() > 6) {
        Dims strides(d.size(), 1);
        for (std::size_t k = d.size() - 1; k-- > 0;) strides[k] = strides[k + 1] * d[k + 1];
        return memory::desc(d, kF32, strides);
    }
    return memory::desc(d, kF32, PlainTag(d.size()));
}

/// The 4-d layouts oneDNN's convolutions pick, recognised on a descriptor (undef otherwise).
Tag LayoutTag(const memory::desc& md) {
    const Dims d = md.dims();
    if (d.size() != 4) return Tag::undef;
    for (Tag tag : {Tag::abcd, Tag::acdb, Tag::aBcd16b, Tag::aBcd8b}) {
        if (md == memory::desc(d, kF32, tag)) return tag;
    }
    return Tag::undef;
}

memory::desc Any(const std::vector<std::int64_t>& shape) {
    return memory::desc(ToDims(shape), kF32, Tag::any);
}

/// Right-aligns `shape` into `rank` dims (numpy broadcasting).
std::vector<std::int64_t> Align(const std::vector<std::int64_t>& shape, std::size_t rank) {
    std::vector<std::int64_t> r(rank > shape.size() ? rank - shape.size() : 0, 1);
    r.insert(r.end(), shape.begin(), shape.end());
    return r;
}

struct EltwiseSpec {
    dnnl::algorithm alg = dnnl::algorithm::undef;
    float alpha = 0.f;
    float beta = 0.f;
    bool identity = false;
};

/// The oneDNN eltwise for an ONNX activation node; nullopt-like alg undef when unsupported.
EltwiseSpec EltwiseOf(const Graph& g, const Node& n) {
    using A = dnnl::algorithm;
    EltwiseSpec e;
    if (n.op == "Relu")
        e.alg = A::eltwise_relu;
    else if (n.op == "LeakyRelu")
        e = {A::eltwise_relu, n.F("alpha", 0.01f), 0.f};
    else if (n.op == "Sigmoid")
        e.alg = A::eltwise_logistic;
    else if (n.op == "Tanh")
        e.alg = A::eltwise_tanh;
    else if (n.op == "Exp")
        e.alg = A::eltwise_exp;
    else if (n.op == "Sqrt")
        e.alg = A::eltwise_sqrt;
    else if (n.op == "Abs")
        e.alg = A::eltwise_abs;
    else if (n.op == "Elu")
        e = {A::eltwise_elu, n.F("alpha", 1.f), 0.f};
    else if (n.op == "Neg")
        e = {A::eltwise_linear, -1.f, 0.f};
    else if (n.op == "Identity" || n.op == "Dropout" || n.op == "Cast")
        e.identity = true;
    else if (n.op == "Clip") {
        float lo = n.F("min", -FLT_MAX), hi = n.F("max", FLT_MAX);
        if (g.opset >= 11) {
            lo = -FLT_MAX;
            hi = FLT_MAX;
            if (n.in.size() > 1 && n.in[1] >= 0)
                lo = static_cast<float>(g.values[n.in[1]].constant->At(0));
            if (n.in.size() > 2 && n.in[2] >= 0)
                hi = static_cast<float>(g.values[n.in[2]].constant->At(0));
        }
        e = {A::eltwise_clip, lo, hi};
    }
    return e;
}

/// Sets the calling thread's OpenMP thread count and restores the previous one when it ends.
class OmpThreadScope {
  public:
    OmpThreadScope() : saved_(omp_get_max_threads()), current_(saved_) {}
    ~OmpThreadScope() { Set(saved_); }
    void Set(int threads) {
        if (threads > 0 && threads != current_) omp_set_num_threads(current_ = threads);
    }
    OmpThreadScope(const OmpThreadScope&) = delete;
    OmpThreadScope& operator=(const OmpThreadScope&) = delete;

  private:
    int saved_;
    int current_;
};

class Lowerer {
  public:
    Lowerer(const Graph& g, const dnnl::engine& eng, const ThreadPolicy& threads)
        : g_(g), eng_(eng), stream_(eng), policy_(threads) {
        plan_ = std::make_shared<Plan>();
        plan_->engine = eng;
        pv_.assign(g.values.size(), -1);
        attr_.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    }

    Result<std::shared_ptr<const Plan>> Lower();

  private:
    Status Bad(const Node& n, const std::string& why) {
        return Unimplemented("op '" + n.op + "' (node '" + n.name + "'): " + why);
    }
    int NewTensor(const memory::desc& md) {
        Plan::Tensor t;
        t.md = md;
        t.root = static_cast<int>(plan_->tensors.size());
        plan_->tensors.push_back(t);
        return t.root;
    }
    int Alias(int src, const memory::desc& md) {
        Plan::Tensor t;
        t.md = md;
        t.root = plan_->tensors[src].root;
        plan_->tensors.push_back(t);
        aliased_.push_back(t.root);
        return static_cast<int>(plan_->tensors.size()) - 1;
    }
    const memory::desc& Md(int t) const { return plan_->tensors[t].md; }
    bool IsPlain(int t) const {
        const auto& md = Md(t);
        const Dims dims = md.dims();
        return md == Plain(std::vector<std::int64_t>(dims.begin(), dims.end()));
    }
    /// A constant in the given layout (converted from plain `dims` at load time).
    int ConstTensor(const std::vector<float>& data, const Dims& dims, const memory::desc& want) {
        memory::desc plain(dims, kF32, PlainTag(dims.size()));
        if (!data.empty() && data.size() * sizeof(float) != plain.get_size()) {
            // The graph checks should have caught it; never copy past the buffer.
            throw std::invalid_argument("constant of " + std::to_string(data.size()) +
                                        " values for dims of " +
                                        std::to_string(plain.get_size() / sizeof(float)));
        }
        memory src(plain, eng_);
        if (!data.empty()) {
            std::memcpy(src.get_data_handle(), data.data(), data.size() * sizeof(float));
        }
        memory dst = src;
        if (want != plain) {
            dst = memory(want, eng_);
            dnnl::reorder(src, dst).execute(stream_, src, dst);
            stream_.wait();
        }
        const int t = NewTensor(want);
        plan_->tensors[t].constant = dst;
        return t;
    }
    int TensorOf(int value) {
        if (pv_[value] >= 0) return pv_[value];
        const Value& v = g_.values[value];
        const auto data = v.constant->is_int
                              ? std::vector<float>(v.constant->i.begin(), v.constant->i.end())
                              : v.constant->f;
        const Dims d = ToDims(v.shape);
        pv_[value] = ConstTensor(data, d, Plain(v.shape));
        return pv_[value];
    }
    /// `src` in layout `md`, converted once: DenseNet's concats read the same tensor a dozen
    /// times and each would otherwise repeat the reorder.
    int Reorder(int src, memory::desc md) {
        if (Md(src) == md) return src;
        for (const auto& [cached_md, t] : reorder_cache_[src]) {
            if (cached_md == md) return t;
        }
        const int dst = NewTensor(md);
        reorder_cache_[src].push_back({md, dst});
        copies_.insert(dst);
        dnnl::reorder::primitive_desc pd(eng_, Md(src), eng_, md, attr_);
        AddPrim(dnnl::reorder(pd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}},
                pd.scratchpad_desc());
        return dst;
    }
    int PlainOf(int t) {
        if (IsPlain(t)) return t;
        if (auto it = plain_cache_.find(t); it != plain_cache_.end()) return it->second;
        const Dims dims = Md(t).dims();
        const int p = Reorder(t, Plain(std::vector<std::int64_t>(dims.begin(), dims.end())));
        plain_cache_[t] = p;
        copies_.insert(p);
        return p;
    }
    /// The value in plain layout viewed with `shape` (same element count).
    int PlainView(int value, const std::vector<std::int64_t>& shape) {
        const int p = PlainOf(TensorOf(value));
        if (Md(p) == Plain(shape)) return p;
        return Alias(p, Plain(shape));
    }
    void AddPrim(dnnl::primitive prim, std::vector<std::pair<int, int>> args,
                 const memory::desc& scratch) {
        Plan::Step s;
        s.prim = std::move(prim);
        s.args = std::move(args);
        s.scratchpad = scratch.get_size() > 0;
        s.threads = threads_;
        s.node = node_;
        plan_->threads = std::max(plan_->threads, threads_);
        plan_->scratchpad_bytes = std::max(plan_->scratchpad_bytes, scratch.get_size());
        plan_->steps.push_back(std::move(s));
    }
    /// The thread count for the primitives created from now on (see ThreadPolicy).
    void UseThreadsFor(std::int64_t work) {
        threads_ = work >= policy_.parallel_work ? std::max(1, policy_.max_threads) : 1;
        omp_.Set(threads_);
    }
    void AddLoop(std::vector<int> tensors, Plan::Loop loop) {
        Plan::Step s;
        s.loop = std::move(loop);
        s.loop_tensors = std::move(tensors);
        s.node = node_;
        plan_->steps.push_back(std::move(s));
    }
    const std::vector<std::int64_t>& Shape(int value) const { return g_.values[value].shape; }
    bool SingleUse(int value) const {
        const Value& v = g_.values[value];
        return !v.is_output && v.consumers.size() == 1;
    }

    /// The AveragePool that a Pad node alone feeds, when the Pad can be the pool's padding
    /// (constant zeros on H and W only, fewer than the kernel, a pool without padding of its
    /// own), else -1. fr_gender/fr_age pad before every average pool: lowered separately, the
    /// Pad filled a plain copy of the convolution's blocked output and the pool ran on that
    /// plain copy, a third of the model's time.
    int PoolTakingPad(int pad_index) const {
        const Node& p = g_.nodes[pad_index];
        if (p.dead || p.op != "Pad" || !SingleUse(p.out[0]) || p.F("value", 0.f) != 0.f) return -1;
        const int pool_index = g_.values[p.out[0]].consumers[0];
        const Node& pool = g_.nodes[pool_index];
        const auto pads = p.Ints("pads");
        if (pool.dead || pool.op != "AveragePool" || pads.size() != 8 ||
            pads[0] || pads[1] || pads[4] || pads[5]) {
            return -1;
        }
        const auto own = pool.Ints("fg_pads");
        const auto kernel = pool.Ints("kernel_shape");
        if (std::any_of(own.begin(), own.end(), [](std::int64_t v) { return v != 0; }) ||
            kernel.size() != 2) {
            return -1;
        }
        for (int k = 0; k < 2; ++k) {
            if (pads[2 + k] >= kernel[k] || pads[6 + k] >= kernel[k]) return -1;
        }
        return pool_index;
    }

    Status LowerNode(int index);
    Status LowerConvOrIp(int index);
    Status LowerEltwise(const Node& n);
    Status LowerBinary(const Node& n);
    Status LowerLoopBinary(const Node& n);
    Status LowerPool(const Node& n);
    Status LowerReduceMean(const Node& n);
    Status LowerConcat(const Node& n);
    Status LowerResize(const Node& n);
    Status LowerSoftmax(const Node& n);
    Status LowerTranspose(const Node& n);
    Status LowerLoopOp(const Node& n);
    Status LowerBatchNorm(const Node& n);
    Status LowerByReorder(const Node& n);
    void AssignSlots();

    const Graph& g_;
    dnnl::engine eng_;
    dnnl::stream stream_;
    dnnl::primitive_attr attr_;
    std::shared_ptr<Plan> plan_;
    std::vector<int> pv_;              // IR value -> tensor
    std::map<int, int> plain_cache_;   // tensor -> its plain copy
    std::map<int, std::vector<std::pair<memory::desc, int>>> reorder_cache_;   // tensor -> copies
    std::set<int> copies_;             // tensors that are cached copies: never written in place
    std::vector<int> aliased_;         // roots that have views
    std::vector<bool> fused_;
    ThreadPolicy policy_;
    OmpThreadScope omp_;   // restores the caller's count when the lowering ends
    int threads_ = 1;
    std::string node_;   // the node being lowered, named in each step for the profile
};

Result<std::shared_ptr<const Plan>> Lowerer::Lower() {
    fused_.assign(g_.nodes.size(), false);
    for (int in : g_.inputs) {
        const int t = NewTensor(Plain(Shape(in)));
        plan_->tensors[t].external = true;
        pv_[in] = t;
        plan_->inputs.push_back(t);
        plan_->input_shapes.push_back(Shape(in));
    }
    for (int k = 0; k < static_cast<int>(g_.nodes.size()); ++k) {
        if (g_.nodes[k].dead || fused_[k]) continue;
        const Node& n = g_.nodes[k];
        UseThreadsFor(NodeWork(g_, n));
        node_ = n.op + ":" + n.name;
        try {
            FG_RETURN_IF_ERROR(LowerNode(k));
        } catch (const dnnl::error& e) {
            return Internal("node '" + n.name + "' (" + n.op + ", " + ShapeText(Shape(n.in[0])) +
                            " -> " + ShapeText(Shape(n.out[0])) + "): oneDNN: " + e.what());
        } catch (const std::exception& e) {
            return Internal("node '" + n.name + "' (" + n.op + "): " + e.what());
        }
    }
    node_ = "output";
    for (int out : g_.outputs) {
        UseThreadsFor(100 * Numel(Shape(out)));
        int t = PlainOf(TensorOf(out));
        if (plan_->tensors[plan_->tensors[t].root].external) {
            // An input passed straight through still needs a buffer of its own.
            const int copy = NewTensor(Md(t));
            dnnl::reorder::primitive_desc pd(eng_, Md(t), eng_, Md(copy), attr_);
            AddPrim(dnnl::reorder(pd), {{DNNL_ARG_FROM, t}, {DNNL_ARG_TO, copy}},
                    pd.scratchpad_desc());
            t = copy;
        }
        plan_->outputs.push_back(t);
        plan_->output_shapes.push_back(Shape(out));
    }
    AssignSlots();
    return std::shared_ptr<const Plan>(plan_);
}

Status Lowerer::LowerNode(int index) {
    const Node& n = g_.nodes[index];
    const std::string& op = n.op;
    if (op == "Conv" || op == "Gemm" || op == "MatMul") return LowerConvOrIp(index);
    if (op == "Relu" || op == "LeakyRelu" || op == "Sigmoid" || op == "Tanh" || op == "Exp" ||
        op == "Sqrt" || op == "Abs" || op == "Elu" || op == "Neg" || op == "Clip" ||
        op == "Identity" || op == "Dropout" || op == "Cast" || op == "PRelu") {
        return LowerEltwise(n);
    }
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return LowerBinary(n);
    if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
        op == "GlobalMaxPool") {
        return LowerPool(n);
    }
    if (op == "ReduceMean") return LowerReduceMean(n);
    if (op == "Concat") return LowerConcat(n);
    if (op == "Resize" || op == "Upsample") return LowerResize(n);
    if (op == "Softmax") return LowerSoftmax(n);
    if (op == "Transpose") return LowerTranspose(n);
    if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
        pv_[n.out[0]] = PlainView(n.in[0], Shape(n.out[0]));
        return Status::Ok();
    }
    if (op == "BatchNormalization") return LowerBatchNorm(n);
    // Folded into the AveragePool it feeds (LowerPool).
    if (op == "Pad" && PoolTakingPad(index) >= 0) return Status::Ok();
    if (op == "Split" || op == "Slice" || op == "Pad") {
        // Views through submemory descriptors and reorders; a layout oneDNN cannot view that
        // way (e.g. a slice across a channel block) goes to the plain loops.
        try {
            return LowerByReorder(n);
        } catch (const dnnl::error&) {
        }
    }
    if (op == "Slice" || op == "Split" || op == "Pad" || op == "Gather") return LowerLoopOp(n);
    return Unimplemented("op '" + op + "' (node '" + n.name +
                         "') is not supported by the onednn backend");
}

/// Conv (and Gemm/MatMul as inner product) with bias and fused post-ops: activations that
/// follow directly, and a residual Add as a `sum` into the shortcut's buffer.
Status Lowerer::LowerConvOrIp(int index) {
    const Node& n = g_.nodes[index];
    const bool conv = n.op == "Conv";
    dnnl::post_ops ops;
    int shortcut = -1;   // tensor the conv accumulates into
    int out_value = n.out[0];
    std::vector<int> fused;
    for (int cur = n.out[0];;) {
        if (!SingleUse(cur)) break;
        const int next = g_.values[cur].consumers[0];
        const Node& c = g_.nodes[next];
        if (c.dead) break;
        EltwiseSpec e = EltwiseOf(g_, c);
        if (e.alg != dnnl::algorithm::undef && !e.identity) {
            ops.append_eltwise(1.f, e.alg, e.alpha, e.beta);
        } else if (conv && c.op == "Add" && shortcut < 0 && ops.len() == 0) {
            const int other = c.in[0] == cur ? c.in[1] : c.in[0];
            // The shortcut's buffer can be overwritten only when this Add is its last reader:
            // every other consumer (e.g. the block's first conv) has already been lowered.
            const auto& readers = other >= 0 ? g_.values[other].consumers : std::vector<int>{};
            const bool last_reader = std::all_of(readers.begin(), readers.end(),
                                                 [&](int r) { return r == next || r < index; });
            if (other < 0 || other == cur || pv_[other] < 0 || g_.values[other].is_output ||
                !last_reader || Shape(other) != Shape(cur)) {
                break;
            }
            const int t = pv_[other];
            const auto& tt = plan_->tensors[t];
            if (tt.root != t || tt.external || tt.constant || copies_.contains(t) ||
                std::find(aliased_.begin(), aliased_.end(), t) != aliased_.end()) {
                break;
            }
            shortcut = t;
            plain_cache_.erase(t);   // its copies, if any, are about to go stale
            reorder_cache_.erase(t);
            ops.append_sum(1.f);
        } else {
            break;
        }
        fused.push_back(next);
        out_value = c.out[0];
        cur = c.out[0];
    }
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(ops);

    const Value& w = g_.values[n.in[1]];
    const bool has_bias = n.in.size() > 2 && n.in[2] >= 0;
    if (conv) {
        const auto& x = Shape(n.in[0]);
        const std::int64_t group = n.I("group", 1);
        const auto& ws = w.shape;
        Dims wdims = group == 1 ? Dims{ws[0], ws[1], ws[2], ws[3]}
                                : Dims{group, ws[0] / group, ws[1], ws[2], ws[3]};
        const auto strides = n.Ints("strides", {1, 1});
        const auto dil = n.Ints("dilations", {1, 1});
        const auto pads = n.Ints("fg_pads");
        const memory::desc dst_md = shortcut >= 0 ? Md(shortcut) : Any(Shape(n.out[0]));
        memory::desc bias_md = has_bias ? memory::desc({ws[0]}, kF32, Tag::a) : memory::desc();
        dnnl::convolution_forward::desc d(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, Any(x),
            memory::desc(wdims, kF32, Tag::any), bias_md, dst_md, {strides[0], strides[1]},
            {dil[0] - 1, dil[1] - 1}, {pads[0], pads[1]}, {pads[2], pads[3]});
        dnnl::convolution_forward::primitive_desc pd(d, attr, eng_);
        const int src = Reorder(TensorOf(n.in[0]), pd.src_desc());
        const int wt = ConstTensor(w.constant->f, wdims, pd.weights_desc());
        std::vector<std::pair<int, int>> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wt}};
        if (has_bias) {
            args.push_back({DNNL_ARG_BIAS,
                            ConstTensor(g_.values[n.in[2]].constant->f, {ws[0]}, pd.bias_desc())});
        }
        const int dst = shortcut >= 0 ? shortcut : NewTensor(pd.dst_desc());
        args.push_back({DNNL_ARG_DST, dst});
        AddPrim(dnnl::convolution_forward(pd), args, pd.scratchpad_desc());
        pv_[out_value] = dst;
    } else {
        const auto& a = Shape(n.in[0]);
        const bool tb = n.op == "Gemm" && n.I("transB", 0) != 0;
        const float alpha = n.op == "Gemm" ? n.F("alpha", 1.f) : 1.f;
        const float beta = n.op == "Gemm" ? n.F("beta", 1.f) : 1.f;
        const std::int64_t k = a.back();
        const std::int64_t m = Numel(a) / k;
        const std::int64_t nn = tb ? w.shape[0] : w.shape[1];
        // oneDNN wants weights as [N, K]: transpose a [K, N] B and fold alpha in.
        std::vector<float> wt_data(static_cast<std::size_t>(nn * k));
        const auto wf = w.constant->is_int
                            ? std::vector<float>(w.constant->i.begin(), w.constant->i.end())
                            : w.constant->f;
        for (std::int64_t i = 0; i < nn; ++i) {
            for (std::int64_t j = 0; j < k; ++j) {
                wt_data[i * k + j] = alpha * (tb ? wf[i * k + j] : wf[j * nn + i]);
            }
        }
        std::vector<float> bias;
        if (has_bias) {
            const Const& c = *g_.values[n.in[2]].constant;
            if (static_cast<std::int64_t>(c.size()) == nn) {
                for (std::size_t i = 0; i < c.size(); ++i)
                    bias.push_back(beta * static_cast<float>(c.At(i)));
            } else if (c.size() == 1) {
                bias.assign(static_cast<std::size_t>(nn), beta * static_cast<float>(c.At(0)));
            } else {
                return Bad(n, "bias that is not per output");
            }
        }
        const int src = PlainView(n.in[0], {m, k});
        dnnl::inner_product_forward::desc d(
            dnnl::prop_kind::forward_inference, Md(src), memory::desc({nn, k}, kF32, Tag::any),
            bias.empty() ? memory::desc() : memory::desc({nn}, kF32, Tag::a),
            memory::desc({m, nn}, kF32, Tag::any));
        dnnl::inner_product_forward::primitive_desc pd(d, attr, eng_);
        const int s2 = Reorder(src, pd.src_desc());
        std::vector<std::pair<int, int>> args{
            {DNNL_ARG_SRC, s2},
            {DNNL_ARG_WEIGHTS, ConstTensor(wt_data, {nn, k}, pd.weights_desc())}};
        if (!bias.empty()) args.push_back({DNNL_ARG_BIAS, ConstTensor(bias, {nn}, pd.bias_desc())});
        const int dst = NewTensor(pd.dst_desc());
        args.push_back({DNNL_ARG_DST, dst});
        AddPrim(dnnl::inner_product_forward(pd), args, pd.scratchpad_desc());
        pv_[out_value] =
            Shape(out_value).size() == 2 ? dst : Alias(PlainOf(dst), Plain(Shape(out_value)));
    }
    for (int f : fused) fused_[f] = true;
    return Status::Ok();
}

Status Lowerer::LowerEltwise(const Node& n) {
    const int x = TensorOf(n.in[0]);
    if (n.op == "PRelu") {
        // A standalone prelu primitive: fused into the conv as a post-op it runs the reference
        // kernel (docs/ONEDNN.md).
        const auto& xs = Shape(n.in[0]);
        const Value& slope = g_.values[n.in[1]];
        const auto aligned = Align(slope.shape, xs.size());
        if (aligned.size() != xs.size()) return Bad(n, "slope of higher rank than the input");
        dnnl::prelu_forward::desc d(dnnl::prop_kind::forward_inference, Md(x),
                                    memory::desc(ToDims(aligned), kF32, Tag::any));
        dnnl::prelu_forward::primitive_desc pd(d, attr_, eng_);
        const int wt = ConstTensor(slope.constant->f, ToDims(aligned), pd.weights_desc());
        const int dst = NewTensor(pd.dst_desc());
        AddPrim(dnnl::prelu_forward(pd),
                {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, wt}, {DNNL_ARG_DST, dst}},
                pd.scratchpad_desc());
        pv_[n.out[0]] = dst;
        return Status::Ok();
    }
    const EltwiseSpec e = EltwiseOf(g_, n);
    if (e.identity) {
        pv_[n.out[0]] = x;
        return Status::Ok();
    }
    if (e.alg == dnnl::algorithm::undef) return Bad(n, "no oneDNN eltwise");
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, e.alg, Md(x), e.alpha,
                                  e.beta);
    dnnl::eltwise_forward::primitive_desc pd(d, attr_, eng_);
    const int dst = NewTensor(pd.dst_desc());
    AddPrim(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, dst}},
            pd.scratchpad_desc());
    pv_[n.out[0]] = dst;
    return Status::Ok();
}

Status Lowerer::LowerBinary(const Node& n) {
    using A = dnnl::algorithm;
    const A alg = n.op == "Add"   ? A::binary_add
                  : n.op == "Sub" ? A::binary_sub
                  : n.op == "Mul" ? A::binary_mul
                                  : A::binary_div;
    int a = n.in[0], b = n.in[1];
    const auto& out = Shape(n.out[0]);
    if (Shape(a) != out && (n.op == "Add" || n.op == "Mul")) std::swap(a, b);
    if (Shape(a) != out || out.empty()) return LowerLoopBinary(n);
    const int ta = TensorOf(a);
    int tb;
    if (Shape(b) == out) {
        tb = Reorder(TensorOf(b), Md(ta));
    } else {
        const auto aligned = Align(Shape(b), out.size());
        tb = g_.values[b].constant
                 ? ConstTensor(g_.values[b].constant->is_int
                                   ? std::vector<float>(g_.values[b].constant->i.begin(),
                                                        g_.values[b].constant->i.end())
                                   : g_.values[b].constant->f,
                               ToDims(aligned), Plain(aligned))
                 : PlainView(b, aligned);
    }
    dnnl::binary::desc d(alg, Md(ta), Md(tb), Md(ta));
    dnnl::binary::primitive_desc pd(d, attr_, eng_);
    const int dst = NewTensor(pd.dst_desc());
    AddPrim(dnnl::binary(pd), {{DNNL_ARG_SRC_0, ta}, {DNNL_ARG_SRC_1, tb}, {DNNL_ARG_DST, dst}},
            pd.scratchpad_desc());
    pv_[n.out[0]] = dst;
    return Status::Ok();
}

/// Numpy broadcasting on plain buffers, for the rare cases oneDNN's binary does not cover
/// (the first operand is the broadcast one of a Sub/Div).
Status Lowerer::LowerLoopBinary(const Node& n) {
    const auto out = Shape(n.out[0]);
    const auto sa = Align(Shape(n.in[0]), out.size());
    const auto sb = Align(Shape(n.in[1]), out.size());
    const int ta = PlainView(n.in[0], sa.empty() ? std::vector<std::int64_t>{1} : sa);
    const int tb = PlainView(n.in[1], sb.empty() ? std::vector<std::int64_t>{1} : sb);
    const int dst = NewTensor(Plain(out));
    const char op = n.op == "Add" ? '+' : n.op == "Sub" ? '-' : n.op == "Mul" ? '*' : '/';
    auto strides = [&](const std::vector<std::int64_t>& s) {
        std::vector<std::int64_t> st(out.size(), 0);
        std::int64_t m = 1;
        for (std::size_t k = s.size(); k-- > 0;) {
            st[k] = s[k] == 1 ? 0 : m;
            m *= s[k];
        }
        return st;
    };
    AddLoop({ta, tb, dst}, [out, st_a = strides(sa), st_b = strides(sb), op](float* const* p) {
        const std::int64_t total = Numel(out);
        std::vector<std::int64_t> idx(out.size(), 0);
        for (std::int64_t i = 0; i < total; ++i) {
            std::int64_t ia = 0, ib = 0, r = i;
            for (std::size_t k = out.size(); k-- > 0;) {
                const std::int64_t c = r % out[k];
                r /= out[k];
                ia += c * st_a[k];
                ib += c * st_b[k];
            }
            const float x = p[0][ia], y = p[1][ib];
            p[2][i] = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
        }
    });
    pv_[n.out[0]] = dst;
    return Status::Ok();
}

Status Lowerer::LowerPool(const Node& n) {
    const auto& x = Shape(n.in[0]);
    const bool global = n.op.starts_with("Global");
    const bool max = n.op == "MaxPool" || n.op == "GlobalMaxPool";
    Dims kernel{x[2], x[3]}, strides{1, 1}, pl{0, 0}, pr{0, 0};
    if (!global) {
        const auto k = n.Ints("kernel_shape");
        const auto s = n.Ints("strides", {1, 1});
        const auto p = n.Ints("fg_pads");
        kernel = {k[0], k[1]};
        strides = {s[0], s[1]};
        pl = {p[0], p[1]};
        pr = {p[2], p[3]};
    }
    auto alg = max                           ? dnnl::algorithm::pooling_max
               : n.I("count_include_pad", 0) ? dnnl::algorithm::pooling_avg_include_padding
                                             : dnnl::algorithm::pooling_avg_exclude_padding;
    int src_value = n.in[0];
    if (const int pad = g_.values[n.in[0]].producer; pad >= 0 && PoolTakingPad(pad) >= 0) {
        // The zero Pad before it becomes the pool's own padding, counted in the average.
        const Node& p = g_.nodes[pad];
        const auto pp = p.Ints("pads");
        src_value = p.in[0];
        pl = {pp[2], pp[3]};
        pr = {pp[6], pp[7]};
        alg = dnnl::algorithm::pooling_avg_include_padding;
    }
    const int src = TensorOf(src_value);
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, Md(src),
                                  Any(Shape(n.out[0])), strides, kernel, pl, pr);
    dnnl::pooling_forward::primitive_desc pd(d, attr_, eng_);
    const int s2 = Reorder(src, pd.src_desc());
    const int dst = NewTensor(pd.dst_desc());
    AddPrim(dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, s2}, {DNNL_ARG_DST, dst}},
            pd.scratchpad_desc());
    pv_[n.out[0]] = dst;
    return Status::Ok();
}

Status Lowerer::LowerReduceMean(const Node& n) {
    auto x = Shape(n.in[0]);
    auto keep = x;
    for (auto a : n.Ints("axes")) keep[a] = 1;
    const int src = PlainOf(TensorOf(n.in[0]));
    dnnl::reduction::desc d(dnnl::algorithm::reduction_mean, Md(src), Plain(keep), 0.f, 0.f);
    dnnl::reduction::primitive_desc pd(d, attr_, eng_);
    const int dst = NewTensor(pd.dst_desc());
    AddPrim(dnnl::reduction(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, pd.scratchpad_desc());
    pv_[n.out[0]] = keep == Shape(n.out[0]) ? dst : Alias(dst, Plain(Shape(n.out[0])));
    return Status::Ok();
}

Status Lowerer::LowerConcat(const Node& n) {
    const auto& out = Shape(n.out[0]);
    const int axis =
        static_cast<int>(n.I("axis", 0) < 0 ? n.I("axis", 0) + out.size() : n.I("axis", 0));
    std::vector<memory::desc> mds;
    std::vector<int> srcs;
    for (int in : n.in) {
        if (Numel(Shape(in)) == 0) continue;
        srcs.push_back(TensorOf(in));
    }
    // Mixed layouts send oneDNN to its reference concat, and a plain result then sends the
    // next op (DenseNet's BatchNorm) to the slow `ncsp_bnorm`: bring every input to the
    // non-plain layout most inputs already have (the convolutions' choice), so the concat is a
    // plain copy and its consumers keep that layout. Blocked layouts only when every input
    // fills whole channel blocks; plain when every input is plain.
    Tag target = Tag::undef;
    if (out.size() == 4 && axis == 1) {
        std::map<Tag, int> votes;
        for (int t : srcs) ++votes[LayoutTag(Md(t))];
        for (const auto& [tag, count] : votes) {
            if (tag == Tag::undef || tag == Tag::abcd) continue;
            const std::int64_t block = tag == Tag::aBcd16b ? 16 : tag == Tag::aBcd8b ? 8 : 1;
            bool fits = true;
            for (int t : srcs) fits = fits && Md(t).dims()[1] % block == 0;
            if (fits && (target == Tag::undef || count > votes.at(target))) target = tag;
        }
    }
    for (int& t : srcs) {
        if (target == Tag::undef) {
            t = PlainOf(t);
        } else {
            t = Reorder(t, memory::desc(Md(t).dims(), kF32, target));
        }
        mds.push_back(Md(t));
    }
    const memory::desc dst_md =
        target == Tag::undef ? memory::desc() : memory::desc(ToDims(out), kF32, target);
    dnnl::concat::primitive_desc pd = target == Tag::undef
                                          ? dnnl::concat::primitive_desc(axis, mds, eng_, attr_)
                                          : dnnl::concat::primitive_desc(dst_md, axis, mds,
                                                                         eng_, attr_);
    const int dst = NewTensor(pd.dst_desc());
    std::vector<std::pair<int, int>> args;
    for (std::size_t k = 0; k < srcs.size(); ++k) {
        args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k), srcs[k]});
    }
    args.push_back({DNNL_ARG_DST, dst});
    AddPrim(dnnl::concat(pd), args, pd.scratchpad_desc());
    pv_[n.out[0]] = dst;
    return Status::Ok();
}

Status Lowerer::LowerResize(const Node& n) {
    const auto& x = Shape(n.in[0]);
    const auto& out = Shape(n.out[0]);
    std::string mode = n.S("mode", "nearest");
    const bool v11 = n.op == "Resize" && g_.opset >= 11;
    const std::string ctm =
        v11 ? n.S("coordinate_transformation_mode", "half_pixel") : "asymmetric";
    const std::string nm = v11 ? n.S("nearest_mode", "round_prefer_floor") : "floor";
    dnnl::algorithm alg;
    if (mode == "nearest") {
        // oneDNN's nearest samples round((o + 0.5) * in / out - 0.5); with integer upscales that
        // equals ONNX's asymmetric-floor and half_pixel-round_prefer_floor rules.
        for (int k = 2; k < 4; ++k) {
            // An empty input or output dim would divide by zero (fg_fuzz_onnx).
            if (x[k] <= 0 || out[k] <= 0) return Bad(n, "resize of an empty image");
            if (out[k] % x[k] != 0) return Bad(n, "nearest with a non-integer scale");
        }
        if (!((ctm == "asymmetric" && (nm == "floor" || nm == "round_prefer_floor")) ||
              (ctm == "half_pixel" && nm == "round_prefer_floor"))) {
            return Bad(n, "nearest with " + ctm + "/" + nm);
        }
        alg = dnnl::algorithm::resampling_nearest;
    } else if (mode == "linear" || mode == "bilinear") {
        if (ctm != "half_pixel" && ctm != "pytorch_half_pixel") return Bad(n, "linear with " + ctm);
        alg = dnnl::algorithm::resampling_linear;
    } else {
        return Bad(n, "mode " + mode);
    }
    const int src = TensorOf(n.in[0]);
    dnnl::resampling_forward::desc d(dnnl::prop_kind::forward_inference, alg, Md(src), Any(out));
    dnnl::resampling_forward::primitive_desc pd(d, attr_, eng_);
    const int dst = NewTensor(pd.dst_desc());
    AddPrim(dnnl::resampling_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}},
            pd.scratchpad_desc());
    pv_[n.out[0]] = dst;
    return Status::Ok();
}

Status Lowerer::LowerSoftmax(const Node& n) {
    const auto& x = Shape(n.in[0]);
    std::int64_t axis = n.I("axis", g_.opset >= 13 ? -1 : 1);
    if (axis < 0) axis += static_cast<std::int64_t>(x.size());
    std::vector<std::int64_t> view = x;
    int dnnl_axis = static_cast<int>(axis);
    if (g_.opset < 13) {
        // Before opset 13 Softmax flattens to [prod(dims < axis), prod(dims >= axis)].
        std::int64_t a = 1, b = 1;
        for (std::size_t k = 0; k < x.size(); ++k)
            (static_cast<std::int64_t>(k) < axis ? a : b) *= x[k];
        view = {a, b};
        dnnl_axis = 1;
    }
    const int src = PlainView(n.in[0], view);
    dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, Md(src), dnnl_axis);
    dnnl::softmax_forward::primitive_desc pd(d, attr_, eng_);
    const int dst = NewTensor(pd.dst_desc());
    AddPrim(dnnl::softmax_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}},
            pd.scratchpad_desc());
    pv_[n.out[0]] = Alias(dst, Plain(Shape(n.out[0])));
    return Status::Ok();
}

/// A reorder into a buffer whose strides put each input element at its transposed position.
Status Lowerer::LowerTranspose(const Node& n) {
    const auto& x = Shape(n.in[0]);
    const auto& out = Shape(n.out[0]);
    const auto perm = n.Ints("perm");
    if (x.size() > 6 || x.empty()) return Bad(n, "rank " + std::to_string(x.size()));
    Dims out_strides(out.size(), 1);
    for (std::size_t k = out.size() - 1; k-- > 0;) out_strides[k] = out_strides[k + 1] * out[k + 1];
    Dims in_strides(x.size());
    for (std::size_t k = 0; k < perm.size(); ++k) in_strides[perm[k]] = out_strides[k];
    const int src = TensorOf(n.in[0]);
    const int dst = NewTensor(memory::desc(ToDims(x), kF32, in_strides));
    dnnl::reorder::primitive_desc pd(eng_, Md(src), eng_, Md(dst), attr_);
    AddPrim(dnnl::reorder(pd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, pd.scratchpad_desc());
    pv_[n.out[0]] = Alias(dst, Plain(out));
    return Status::Ok();
}

/// Inference batch norm on whatever layout the input has (a standalone BN, e.g. DenseNet's
/// pre-activation BN that has no Conv before it to fold into).
Status Lowerer::LowerBatchNorm(const Node& n) {
    const auto& x = Shape(n.in[0]);
    if (x.size() < 2) return Bad(n, "rank < 2");
    const std::int64_t c = x[1];
    const auto floats = [&](int k) {
        const Const& cst = *g_.values[n.in[k]].constant;
        std::vector<float> v;
        for (std::size_t i = 0; i < cst.size(); ++i) v.push_back(static_cast<float>(cst.At(i)));
        return v;
    };
    for (int k = 1; k < 5; ++k) {
        if (static_cast<std::int64_t>(g_.values[n.in[k]].constant->size()) != c) {
            return Bad(n, "statistics of the wrong size");
        }
    }
    const int src = TensorOf(n.in[0]);
    using F = dnnl::normalization_flags;
    F flags = F::use_global_stats | F::use_scale | F::use_shift;
    // DenseNet's pre-activation BN -> ReLU runs as one pass.
    int out_value = n.out[0];
    if (SingleUse(out_value)) {
        const int next = g_.values[out_value].consumers[0];
        if (g_.nodes[next].op == "Relu" && !g_.nodes[next].dead) {
            flags = flags | F::fuse_norm_relu;
            fused_[next] = true;
            out_value = g_.nodes[next].out[0];
        }
    }
    dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_inference, Md(src),
                                              n.F("epsilon", 1e-5f), flags);
    dnnl::batch_normalization_forward::primitive_desc pd(d, attr_, eng_);
    const memory::desc vec({c}, kF32, Tag::a);
    const int dst = NewTensor(pd.dst_desc());
    AddPrim(dnnl::batch_normalization_forward(pd),
            {{DNNL_ARG_SRC, src},
             {DNNL_ARG_SCALE, ConstTensor(floats(1), {c}, vec)},
             {DNNL_ARG_SHIFT, ConstTensor(floats(2), {c}, vec)},
             {DNNL_ARG_MEAN, ConstTensor(floats(3), {c}, vec)},
             {DNNL_ARG_VARIANCE, ConstTensor(floats(4), {c}, vec)},
             {DNNL_ARG_DST, dst}},
            pd.scratchpad_desc());
    pv_[out_value] = dst;
    return Status::Ok();
}

/// Split, unit-step Slice and constant Pad as reorders between a tensor and a window of
/// another (submemory descriptors). Throws dnnl::error when the layout cannot be windowed.
Status Lowerer::LowerByReorder(const Node& n) {
    const auto& x = Shape(n.in[0]);
    const Dims xdims = ToDims(x);
    auto copy_window = [&](int src, const Dims& dims, const Dims& offsets, int out_value) {
        const memory::desc window = Md(src).submemory_desc(dims, offsets);
        const int view = Alias(src, window);
        const int dst = NewTensor(Plain(Shape(out_value)));
        dnnl::reorder::primitive_desc pd(eng_, window, eng_, Md(dst), attr_);
        AddPrim(dnnl::reorder(pd), {{DNNL_ARG_FROM, view}, {DNNL_ARG_TO, dst}},
                pd.scratchpad_desc());
        pv_[out_value] = dst;
    };
    if (n.op == "Split") {
        const auto axis = n.I("axis", 0);
        const auto split = n.Ints("split");
        const int src = TensorOf(n.in[0]);
        std::int64_t offset = 0;
        for (std::size_t k = 0; k < n.out.size(); ++k) {
            Dims offsets(x.size(), 0);
            offsets[axis] = offset;
            offset += split[k];
            copy_window(src, ToDims(Shape(n.out[k])), offsets, n.out[k]);
        }
        return Status::Ok();
    }
    if (n.op == "Slice") {
        const auto steps = n.Ints("fg_steps");
        if (std::any_of(steps.begin(), steps.end(), [](std::int64_t s) { return s != 1; })) {
            throw dnnl::error(dnnl_unimplemented, "strided slice");
        }
        const auto starts = n.Ints("fg_starts");
        copy_window(TensorOf(n.in[0]), ToDims(Shape(n.out[0])), Dims(starts.begin(), starts.end()),
                    n.out[0]);
        return Status::Ok();
    }
    // Pad: fill the whole output with the pad value, then copy the input into its window.
    const auto pads = n.Ints("pads");
    const auto& out = Shape(n.out[0]);
    const int src = TensorOf(n.in[0]);
    const int dst = NewTensor(Plain(out));
    const memory::desc window =
        Md(dst).submemory_desc(xdims, Dims(pads.begin(), pads.begin() + x.size()));
    const int view = Alias(dst, window);
    const float value = n.F("value", 0.f);
    const std::int64_t total = Numel(out);
    AddLoop({dst}, [total, value](float* const* p) { std::fill(p[0], p[0] + total, value); });
    dnnl::reorder::primitive_desc pd(eng_, Md(src), eng_, window, attr_);
    AddPrim(dnnl::reorder(pd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, view}}, pd.scratchpad_desc());
    pv_[n.out[0]] = dst;
    return Status::Ok();
}

/// Small data-movement ops (detector heads, ShuffleNet splits, padding) as plain loops.
Status Lowerer::LowerLoopOp(const Node& n) {
    const auto x = Shape(n.in[0]);
    const int src = PlainView(n.in[0], x);
    // Row-major strides of x.
    std::vector<std::int64_t> xs(x.size(), 1);
    for (std::size_t k = x.size() - 1; k-- > 0 && !x.empty();) xs[k] = xs[k + 1] * x[k + 1];
    if (n.op == "BatchNormalization") {
        const std::int64_t c = x.size() > 1 ? x[1] : 1;
        const std::int64_t inner = x.size() > 2 ? Numel(x) / x[0] / c : 1;
        const float eps = n.F("epsilon", 1e-5f);
        std::vector<float> scale(c), shift(c);
        for (std::int64_t i = 0; i < c; ++i) {
            const auto& v = g_.values;
            const double s =
                v[n.in[1]].constant->At(i) / std::sqrt(v[n.in[4]].constant->At(i) + eps);
            scale[i] = static_cast<float>(s);
            shift[i] =
                static_cast<float>(v[n.in[2]].constant->At(i) - v[n.in[3]].constant->At(i) * s);
        }
        const int dst = NewTensor(Plain(x));
        AddLoop({src, dst}, [n0 = x[0], c, inner, scale, shift](float* const* p) {
            for (std::int64_t b = 0; b < n0; ++b) {
                for (std::int64_t ch = 0; ch < c; ++ch) {
                    const std::int64_t off = (b * c + ch) * inner;
                    for (std::int64_t i = 0; i < inner; ++i)
                        p[1][off + i] = p[0][off + i] * scale[ch] + shift[ch];
                }
            }
        });
        pv_[n.out[0]] = dst;
        return Status::Ok();
    }
    // Every remaining op maps each output element to one input element (or a pad value):
    // describe it as per-dim (start, step) over the input plus, for Gather, an index table.
    struct Gen {
        std::vector<std::int64_t> out, start, step;
        std::int64_t gather_axis = -1;
        std::vector<std::int64_t> gather_idx;
        bool pad = false;
        float pad_value = 0.f;
    };
    auto make = [](std::vector<std::int64_t> out, std::vector<std::int64_t> start,
                   std::vector<std::int64_t> step) {
        Gen g;
        g.out = std::move(out);
        g.start = std::move(start);
        g.step = std::move(step);
        return g;
    };
    auto emit = [&](int out_value, Gen gen) {
        const int dst = NewTensor(Plain(gen.out));
        AddLoop({src, dst}, [gen, x, xs](float* const* p) {
            const std::int64_t total = Numel(gen.out);
            const std::size_t rank = gen.out.size();
            for (std::int64_t i = 0; i < total; ++i) {
                std::int64_t r = i, off = 0;
                bool inside = true;
                for (std::size_t k = rank; k-- > 0;) {
                    const std::int64_t c = r % gen.out[k];
                    r /= gen.out[k];
                    std::int64_t src_i = gen.start[k] + c * gen.step[k];
                    if (static_cast<std::int64_t>(k) == gen.gather_axis) src_i = gen.gather_idx[c];
                    if (src_i < 0 || src_i >= x[k]) {
                        inside = false;
                        break;
                    }
                    off += src_i * xs[k];
                }
                p[1][i] = inside ? p[0][off] : gen.pad_value;
            }
        });
        pv_[out_value] = dst;
    };
    const std::vector<std::int64_t> zeros(x.size(), 0), ones(x.size(), 1);
    if (n.op == "Slice") {
        emit(n.out[0], make(Shape(n.out[0]), n.Ints("fg_starts"), n.Ints("fg_steps")));
    } else if (n.op == "Split") {
        const auto axis = n.I("axis", 0);
        std::int64_t offset = 0;
        for (std::size_t k = 0; k < n.out.size(); ++k) {
            auto start = zeros;
            start[axis] = offset;
            offset += n.Ints("split")[k];
            emit(n.out[k], make(Shape(n.out[k]), start, ones));
        }
    } else if (n.op == "Pad") {
        const auto pads = n.Ints("pads");
        auto start = zeros;
        for (std::size_t k = 0; k < x.size(); ++k) start[k] = -pads[k];
        Gen gen = make(Shape(n.out[0]), start, ones);
        gen.pad = true;
        gen.pad_value = n.F("value", 0.f);
        emit(n.out[0], gen);
    } else if (n.op == "Gather") {
        const auto& idx_c = *g_.values[n.in[1]].constant;
        if (g_.values[n.in[1]].shape.size() != 1 && idx_c.size() != 1) {
            return Bad(n, "indices of rank > 1");
        }
        const auto axis = n.I("axis", 0);
        // A scalar index drops the axis: gather with one index, then view without it.
        std::vector<std::int64_t> idx;
        for (std::size_t k = 0; k < idx_c.size(); ++k) {
            auto v = static_cast<std::int64_t>(idx_c.At(k));
            idx.push_back(v < 0 ? v + x[axis] : v);
        }
        auto kept = x;
        kept[axis] = static_cast<std::int64_t>(idx.size());
        Gen gen = make(kept, zeros, ones);
        gen.gather_axis = axis;
        gen.gather_idx = idx;
        emit(n.out[0], gen);
        if (kept != Shape(n.out[0])) pv_[n.out[0]] = Alias(pv_[n.out[0]], Plain(Shape(n.out[0])));
    } else {
        return Bad(n, "no lowering");
    }
    return Status::Ok();
}

/// Liveness-based buffer reuse: a root's slot is free again after the last step touching any
/// tensor that views it; graph outputs stay live to the end.
void Lowerer::AssignSlots() {
    auto& ts = plan_->tensors;
    const int nsteps = static_cast<int>(plan_->steps.size());
    std::vector<int> first(ts.size(), std::numeric_limits<int>::max()), last(ts.size(), -1);
    for (int s = 0; s < nsteps; ++s) {
        const auto& st = plan_->steps[s];
        auto touch = [&](int t) {
            const int r = ts[t].root;
            first[r] = std::min(first[r], s);
            last[r] = std::max(last[r], s);
        };
        for (const auto& [arg, t] : st.args) touch(t);
        for (int t : st.loop_tensors) touch(t);
    }
    for (int t : plan_->outputs) last[ts[t].root] = nsteps;
    std::vector<std::vector<int>> born(nsteps + 1), dies(nsteps + 1);
    for (std::size_t r = 0; r < ts.size(); ++r) {
        if (ts[r].root != static_cast<int>(r) || ts[r].external || ts[r].constant || last[r] < 0)
            continue;
        born[first[r]].push_back(static_cast<int>(r));
        dies[last[r]].push_back(static_cast<int>(r));
    }
    std::vector<int> free_slots;
    for (int s = 0; s <= nsteps; ++s) {
        for (int r : born[s]) {
            const std::size_t need = ts[r].md.get_size();
            int best = -1;
            for (std::size_t k = 0; k < free_slots.size(); ++k) {
                const std::size_t have = plan_->slot_bytes[free_slots[k]];
                const std::size_t cur = best < 0 ? 0 : plan_->slot_bytes[free_slots[best]];
                if (best < 0 || (have >= need && (cur < need || have < cur)) ||
                    (have < need && cur < need && have > cur)) {
                    best = static_cast<int>(k);
                }
            }
            int slot;
            if (best >= 0) {
                slot = free_slots[best];
                free_slots.erase(free_slots.begin() + best);
                plan_->slot_bytes[slot] = std::max(plan_->slot_bytes[slot], need);
            } else {
                slot = static_cast<int>(plan_->slot_bytes.size());
                plan_->slot_bytes.push_back(need);
            }
            ts[r].slot = slot;
        }
        for (int r : dies[s]) free_slots.push_back(ts[r].slot);
    }
}

}   // namespace

std::int64_t NodeWork(const Graph& graph, const Node& n) {
    if (n.dead || n.out.empty() || n.out[0] < 0) return 0;
    const auto& out = graph.values[n.out[0]].shape;
    if (n.in.size() >= 2 && n.in[0] >= 0 && n.in[1] >= 0) {
        const auto& w = graph.values[n.in[1]].shape;
        if (n.op == "Conv" && w.size() >= 2 && w[0] > 0) {
            // Each output element is a dot product over Cin/group x kernel = w[1] x kernel.
            return 2 * Numel(out) * (Numel(w) / w[0]);
        }
        const auto& a = graph.values[n.in[0]].shape;
        if ((n.op == "Gemm" || n.op == "MatMul") && !a.empty()) return 2 * Numel(out) * a.back();
    }
    return 100 * Numel(out);
}

std::int64_t GraphWork(const Graph& graph) {
    std::int64_t work = 0;
    for (const Node& n : graph.nodes) work += NodeWork(graph, n);
    return work;
}

Result<std::shared_ptr<const Plan>> LowerGraph(const Graph& graph, const dnnl::engine& engine,
                                               const ThreadPolicy& threads) {
    try {
        Lowerer l(graph, engine, threads);
        return l.Lower();
    } catch (const dnnl::error& e) {
        return Internal(std::string("oneDNN cannot create a primitive: ") + e.what());
    } catch (const std::exception& e) {
        return Internal(std::string("onednn lowering failed: ") + e.what());
    }
}

Result<std::unique_ptr<Executor>> Executor::Create(std::shared_ptr<const Plan> plan) try {
    auto ex = std::unique_ptr<Executor>(new Executor());
    const Plan& p = *plan;
    auto alloc = [](std::size_t bytes) {
        return std::unique_ptr<void, Buffer>(std::aligned_alloc(64, ((bytes + 63) / 64) * 64 + 64));
    };
    for (std::size_t b : p.slot_bytes) {
        ex->slots_.push_back(alloc(b));
        if (!ex->slots_.back()) return ResourceExhausted("cannot allocate activation buffers");
    }
    ex->scratchpad_ = alloc(p.scratchpad_bytes);
    for (const auto& t : p.tensors) {
        const auto& root = p.tensors[t.root];
        if (t.constant) {
            ex->memories_.push_back(t.constant);
        } else if (root.external) {
            ex->memories_.emplace_back(t.md, p.engine, static_cast<void*>(nullptr));
        } else {
            ex->memories_.emplace_back(t.md, p.engine, ex->slots_[root.slot].get());
        }
    }
    dnnl::memory scratch(
        memory::desc({static_cast<memory::dim>(p.scratchpad_bytes)}, memory::data_type::u8, Tag::a),
        p.engine, ex->scratchpad_.get());
    for (const auto& st : p.steps) {
        std::unordered_map<int, dnnl::memory> args;
        for (const auto& [arg, t] : st.args) args[arg] = ex->memories_[t];
        if (st.scratchpad) args[DNNL_ARG_SCRATCHPAD] = scratch;
        ex->args_.push_back(std::move(args));
        std::vector<float*> ptrs;
        for (int t : st.loop_tensors) {
            const auto& root = p.tensors[p.tensors[t].root];
            ptrs.push_back(root.external ? nullptr
                                         : static_cast<float*>(ex->memories_[t].get_data_handle()));
        }
        ex->loop_ptrs_.push_back(std::move(ptrs));
    }
    ex->plan_ = std::move(plan);
    return ex;
} catch (const dnnl::error& e) {
    return Internal(std::string("oneDNN cannot allocate session buffers: ") + e.what());
} catch (const std::exception& e) {
    return ResourceExhausted(std::string("cannot allocate session buffers: ") + e.what());
}

void Executor::RunStep(dnnl::stream& stream, std::size_t s) {
    const Plan& p = *plan_;
    const auto& st = p.steps[s];
    if (!st.loop) {
        st.prim.execute(stream, args_[s]);
        return;
    }
    // A plain C++ loop reads buffers directly: wait for the primitives before it, and pass the
    // current handles of external (caller-owned) tensors.
    stream.wait();
    auto& ptrs = loop_ptrs_[s];
    for (std::size_t k = 0; k < st.loop_tensors.size(); ++k) {
        const int t = st.loop_tensors[k];
        if (p.tensors[p.tensors[t].root].external) {
            ptrs[k] = static_cast<float*>(memories_[t].get_data_handle());
        }
    }
    st.loop(ptrs.data());
}

Status Executor::Run(dnnl::stream& stream, std::span<const float* const> inputs,
                     std::vector<const float*>& outputs) try {
    const Plan& p = *plan_;
    // The caller's buffers are only read: oneDNN takes non-const handles.
    for (std::size_t k = 0; k < p.tensors.size(); ++k) {
        const auto& t = p.tensors[k];
        if (!p.tensors[t.root].external) continue;
        for (std::size_t i = 0; i < p.inputs.size(); ++i) {
            if (p.inputs[i] == t.root) memories_[k].set_data_handle(const_cast<float*>(inputs[i]));
        }
    }
    RunSteps(stream);
    stream.wait();
    outputs.clear();
    for (int t : p.outputs)
        outputs.push_back(static_cast<const float*>(memories_[t].get_data_handle()));
    return Status::Ok();
} catch (const dnnl::error& e) {
    return Internal(std::string("oneDNN execution failed: ") + e.what());
} catch (const std::exception& e) {
    return Internal(std::string("onednn execution failed: ") + e.what());
}

void Executor::RunSteps(dnnl::stream& stream) {
    const Plan& p = *plan_;
    // Each step runs on the thread count its primitive was created for: kernels that size
    // their parallel region at execution time would otherwise wake threads for tiny steps.
    OmpThreadScope omp;
    // FG_ONEDNN_PROFILE=1 prints each step's time (stderr): which primitive or loop is slow.
    static const bool profile = std::getenv("FG_ONEDNN_PROFILE") != nullptr;
    for (std::size_t s = 0; s < p.steps.size(); ++s) {
        const auto& st = p.steps[s];
        omp.Set(st.threads);
        const auto t0 = std::chrono::steady_clock::now();
        if (profile) {
            struct Report {
                const Plan::Step& st;
                dnnl::stream& stream;
                std::size_t index;
                std::chrono::steady_clock::time_point t0;
                ~Report() {
                    stream.wait();
                    const double ms = std::chrono::duration<double, std::milli>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count();
                    const char* kind =
                        st.loop ? "loop"
                                : dnnl_prim_kind2str(
                                      static_cast<dnnl_primitive_kind_t>(st.prim.get_kind()));
                    std::fprintf(stderr, "fg_onednn_profile,%zu,%s,%d,%.4f,%s\n", index, kind,
                                 st.threads, ms, st.node.c_str());
                }
            } report{st, stream, s, t0};
            RunStep(stream, s);
            continue;
        }
        RunStep(stream, s);
    }
}

}   // namespace fg::infer::onednn
