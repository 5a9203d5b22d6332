// SPDX-License-Identifier: Apache-2.0
#include "graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <unordered_map>

#include <onnx/onnx_pb.h>

namespace fg::infer::onednn {

std::int64_t Node::I(const std::string& key, std::int64_t def) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? def : it->second.i;
}
float Node::F(const std::string& key, float def) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? def : it->second.f;
}
std::string Node::S(const std::string& key, const std::string& def) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? def : it->second.s;
}
std::vector<std::int64_t> Node::Ints(const std::string& key, std::vector<std::int64_t> def) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? def : it->second.ints;
}

std::int64_t Numel(const std::vector<std::int64_t>& shape) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

std::string ShapeText(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        s += (i ? "," : "") + std::to_string(shape[i]);
    }
    return s + "]";
}

Result<std::vector<std::int64_t>> BroadcastShapes(const std::vector<std::int64_t>& a,
                                                  const std::vector<std::int64_t>& b) {
    const std::size_t rank = std::max(a.size(), b.size());
    std::vector<std::int64_t> out(rank);
    for (std::size_t k = 0; k < rank; ++k) {
        const std::int64_t da = k + a.size() >= rank ? a[k + a.size() - rank] : 1;
        const std::int64_t db = k + b.size() >= rank ? b[k + b.size() - rank] : 1;
        if (da != db && da != 1 && db != 1) {
            return InvalidArgument("shapes " + ShapeText(a) + " and " + ShapeText(b) +
                                   " do not broadcast");
        }
        out[k] = da == 1 ? db : da;
    }
    return out;
}

namespace {

/// Strides of `shape` (right-aligned into `rank` dims), 0 where the dim is broadcast.
std::vector<std::int64_t> BroadcastStrides(const std::vector<std::int64_t>& shape,
                                           const std::vector<std::int64_t>& out) {
    std::vector<std::int64_t> strides(out.size(), 0);
    std::int64_t s = 1;
    for (std::size_t k = 0; k < shape.size(); ++k) {
        const std::size_t src = shape.size() - 1 - k;
        const std::size_t dst = out.size() - 1 - k;
        strides[dst] = shape[src] == 1 ? 0 : s;
        s *= shape[src];
    }
    return strides;
}

template <class T, class F>
std::vector<T> Broadcast(const std::vector<T>& a, const std::vector<std::int64_t>& sa,
                         const std::vector<T>& b, const std::vector<std::int64_t>& sb,
                         const std::vector<std::int64_t>& out, F f) {
    const auto ta = BroadcastStrides(sa, out);
    const auto tb = BroadcastStrides(sb, out);
    std::vector<T> r(static_cast<std::size_t>(Numel(out)));
    std::vector<std::int64_t> idx(out.size(), 0);
    std::int64_t ia = 0, ib = 0;
    for (std::size_t n = 0; n < r.size(); ++n) {
        r[n] = f(a[ia], b[ib]);
        for (std::size_t k = out.size(); k-- > 0;) {
            if (++idx[k] < out[k]) {
                ia += ta[k];
                ib += tb[k];
                break;
            }
            ia -= ta[k] * (out[k] - 1);
            ib -= tb[k] * (out[k] - 1);
            idx[k] = 0;
        }
    }
    return r;
}

Result<std::shared_ptr<const Const>> ToConst(const onnx::TensorProto& t) {
    auto c = std::make_shared<Const>();
    std::int64_t count = 1;
    for (auto d : t.dims()) {
        // Untrusted dims (a Constant node's tensor, say): no negative, no overflow (fg_fuzz_onnx).
        if (d < 0 || (d > 0 && count > std::numeric_limits<std::int64_t>::max() / d)) {
            return InvalidArgument("tensor '" + t.name() + "' has invalid dims");
        }
        count *= d;
    }
    const bool raw = t.has_raw_data();
    switch (t.data_type()) {
        case onnx::TensorProto::FLOAT:
            c->f.resize(static_cast<std::size_t>(count));
            if (raw && !c->f.empty()) {   // SummarizeOnnx checked raw_data's size
                std::memcpy(c->f.data(), t.raw_data().data(), c->f.size() * sizeof(float));
            } else {
                c->f.assign(t.float_data().begin(), t.float_data().end());
            }
            break;
        case onnx::TensorProto::DOUBLE:
            c->f.resize(static_cast<std::size_t>(count));
            for (std::int64_t k = 0; k < count; ++k) {
                double v = 0;
                if (raw) {
                    std::memcpy(&v, t.raw_data().data() + k * sizeof(double), sizeof(double));
                } else {
                    v = t.double_data(static_cast<int>(k));
                }
                c->f[static_cast<std::size_t>(k)] = static_cast<float>(v);
            }
            break;
        case onnx::TensorProto::INT64:
            c->is_int = true;
            c->i.resize(static_cast<std::size_t>(count));
            if (raw && !c->i.empty()) {
                std::memcpy(c->i.data(), t.raw_data().data(), c->i.size() * sizeof(std::int64_t));
            } else {
                c->i.assign(t.int64_data().begin(), t.int64_data().end());
            }
            break;
        case onnx::TensorProto::INT32:
            c->is_int = true;
            c->i.resize(static_cast<std::size_t>(count));
            for (std::int64_t k = 0; k < count; ++k) {
                std::int32_t v = 0;
                if (raw) {
                    std::memcpy(&v, t.raw_data().data() + k * sizeof(v), sizeof(v));
                } else {
                    v = t.int32_data(static_cast<int>(k));
                }
                c->i[static_cast<std::size_t>(k)] = v;
            }
            break;
        default:
            return Unimplemented("tensor '" + t.name() + "' has data type " +
                                 std::to_string(t.data_type()) + " (only float/int supported)");
    }
    if (static_cast<std::int64_t>(c->size()) != count) {
        return InvalidArgument("tensor '" + t.name() + "' holds the wrong number of values");
    }
    return std::shared_ptr<const Const>(std::move(c));
}

std::vector<std::int64_t> DimsOf(const onnx::TensorProto& t) {
    return {t.dims().begin(), t.dims().end()};
}

std::shared_ptr<const Const> FloatConst(std::vector<float> f) {
    auto c = std::make_shared<Const>();
    c->f = std::move(f);
    return c;
}
std::shared_ptr<const Const> IntConst(std::vector<std::int64_t> i) {
    auto c = std::make_shared<Const>();
    c->is_int = true;
    c->i = std::move(i);
    return c;
}

std::vector<float> AsFloats(const Const& c) {
    if (!c.is_int) return c.f;
    return std::vector<float>(c.i.begin(), c.i.end());
}
std::vector<std::int64_t> AsInts(const Const& c) {
    if (c.is_int) return c.i;
    std::vector<std::int64_t> r;
    for (float v : c.f) r.push_back(static_cast<std::int64_t>(v));
    return r;
}

std::int64_t NormAxis(std::int64_t axis, std::size_t rank) {
    return axis < 0 ? axis + static_cast<std::int64_t>(rank) : axis;
}

}   // namespace

struct OnnxSource::Impl {
    onnx::ModelProto model;
    std::unordered_map<std::string, std::shared_ptr<const Const>> inits;
    std::unordered_map<std::string, std::vector<std::int64_t>> init_dims;
    std::vector<std::string> inputs;
    int opset = 0;
};

OnnxSource::OnnxSource() : impl_(std::make_unique<Impl>()) {}
OnnxSource::~OnnxSource() = default;

Result<std::shared_ptr<const OnnxSource>> OnnxSource::Parse(const std::string& bytes) try {
    std::shared_ptr<OnnxSource> src(new OnnxSource());
    Impl& m = *src->impl_;
    if (!m.model.ParseFromString(bytes)) {
        return InvalidArgument("not an ONNX model: protobuf parse failed (truncated or corrupt)");
    }
    for (const auto& op : m.model.opset_import()) {
        if (op.domain().empty() || op.domain() == "ai.onnx")
            m.opset = static_cast<int>(op.version());
    }
    const auto& graph = m.model.graph();
    for (const auto& t : graph.initializer()) {
        auto c = ToConst(t);
        if (!c.ok()) continue;   // only an error if a node reads it (reported there)
        m.inits[t.name()] = *c;
        m.init_dims[t.name()] = DimsOf(t);
    }
    for (const auto& vi : graph.input()) {
        if (!m.inits.contains(vi.name())) m.inputs.push_back(vi.name());
    }
    return std::shared_ptr<const OnnxSource>(std::move(src));
} catch (const std::exception& e) {
    return InvalidArgument(std::string("cannot read ONNX model: ") + e.what());
}

namespace {

class Builder {
  public:
    Builder(const OnnxSource::Impl& src) : src_(src) { g_.opset = src.opset; }

    Result<Graph> Build(const std::vector<std::vector<std::int64_t>>& input_shapes);

  private:
    int Define(const std::string& name, std::vector<std::int64_t> shape,
               std::shared_ptr<const Const> c = nullptr) {
        Value v;
        v.name = name;
        v.shape = std::move(shape);
        v.constant = std::move(c);
        g_.values.push_back(std::move(v));
        const int id = static_cast<int>(g_.values.size()) - 1;
        ids_[name] = id;
        return id;
    }

    Status Visit(Node& n);
    Status Fold(Node& n, bool& folded);
    Status InferShape(Node& n);
    void FoldBatchNorms();

    const Value& In(const Node& n, std::size_t k) const { return g_.values[n.in[k]]; }
    bool HasIn(const Node& n, std::size_t k) const { return k < n.in.size() && n.in[k] >= 0; }
    void SetOut(Node& n, std::size_t k, std::vector<std::int64_t> shape,
                std::shared_ptr<const Const> c = nullptr) {
        // A node of an untrusted file may declare fewer outputs than its op has (fg_fuzz_onnx:
        // an Add with none); an output nobody can name is simply not recorded.
        if (k >= n.out.size() || n.out[k] < 0) return;
        g_.values[n.out[k]].shape = std::move(shape);
        g_.values[n.out[k]].constant = std::move(c);
    }
    Status Bad(const Node& n, const std::string& why) const {
        return InvalidArgument("node '" + n.name + "' (" + n.op + "): " + why);
    }

    const OnnxSource::Impl& src_;
    Graph g_;
    std::unordered_map<std::string, int> ids_;
};

Result<Attr> ReadAttr(const onnx::AttributeProto& a) {
    Attr r;
    r.i = a.i();
    r.f = a.f();
    r.s = a.s();
    r.ints.assign(a.ints().begin(), a.ints().end());
    r.floats.assign(a.floats().begin(), a.floats().end());
    if (a.has_t()) {
        FG_ASSIGN_OR_RETURN(r.t, ToConst(a.t()));
        r.t_dims = DimsOf(a.t());
    }
    return r;
}

Result<Graph> Builder::Build(const std::vector<std::vector<std::int64_t>>& input_shapes) {
    const auto& graph = src_.model.graph();
    if (input_shapes.size() != src_.inputs.size()) {
        return InvalidArgument("graph has " + std::to_string(src_.inputs.size()) + " inputs, got " +
                               std::to_string(input_shapes.size()) + " shapes");
    }
    for (std::size_t k = 0; k < src_.inputs.size(); ++k) {
        g_.inputs.push_back(Define(src_.inputs[k], input_shapes[k]));
    }
    for (const auto& [name, c] : src_.inits) Define(name, src_.init_dims.at(name), c);
    for (const auto& pn : graph.node()) {
        Node n;
        n.op = pn.op_type();
        n.name = pn.name().empty() ? (pn.output_size() ? pn.output(0) : n.op) : pn.name();
        if (!pn.domain().empty() && pn.domain() != "ai.onnx") {
            return Unimplemented("op '" + pn.domain() + "." + n.op + "' (node '" + n.name +
                                 "') is not supported by the onednn backend");
        }
        for (const auto& a : pn.attribute()) {
            auto attr = ReadAttr(a);
            if (!attr.ok()) return attr.status().WithContext("node '" + n.name + "'");
            n.attrs[a.name()] = std::move(attr).value();
        }
        for (const auto& in : pn.input()) {
            if (in.empty()) {
                n.in.push_back(-1);
                continue;
            }
            auto it = ids_.find(in);
            if (it == ids_.end()) return InvalidArgument("undefined tensor '" + in + "'");
            n.in.push_back(it->second);
        }
        for (const auto& out : pn.output()) n.out.push_back(Define(out, {}));
        g_.nodes.push_back(std::move(n));
        const int index = static_cast<int>(g_.nodes.size()) - 1;
        FG_RETURN_IF_ERROR(Visit(g_.nodes[index]));
        for (int o : g_.nodes[index].out) {
            // Untrusted file: oneDNN divides by an empty run-time tensor's size (fg_fuzz_onnx).
            const Value& v = g_.values[o];
            if (!v.constant) {
                for (std::int64_t d : v.shape) {
                    if (d <= 0) return Bad(g_.nodes[index], "empty or negative output shape");
                }
            }
            g_.values[o].producer = index;
        }
    }
    for (const auto& out : graph.output()) {
        auto it = ids_.find(out.name());
        if (it == ids_.end()) return InvalidArgument("undefined output '" + out.name() + "'");
        g_.outputs.push_back(it->second);
        g_.values[it->second].is_output = true;
    }
    // Consumers of values that are computed at run time.
    for (int k = 0; k < static_cast<int>(g_.nodes.size()); ++k) {
        const Node& n = g_.nodes[k];
        if (n.dead) continue;
        for (int in : n.in) {
            if (in >= 0) g_.values[in].consumers.push_back(k);
        }
    }
    FoldBatchNorms();
    return std::move(g_);
}

Status Builder::Visit(Node& n) {
    // Every ONNX op has an output; the shape rules and folding write the first one.
    if (n.out.empty() || n.out[0] < 0) return Bad(n, "the node has no output");
    bool folded = false;
    FG_RETURN_IF_ERROR(Fold(n, folded));
    if (folded) {
        n.dead = true;
        return Status::Ok();
    }
    return InferShape(n);
}

/// Evaluates nodes whose inputs are all known at load time (shape arithmetic, Constant).
Status Builder::Fold(Node& n, bool& folded) {
    const std::string& op = n.op;
    if (op == "Constant") {
        auto it = n.attrs.find("value");
        if (it != n.attrs.end() && it->second.t) {
            SetOut(n, 0, it->second.t_dims, it->second.t);
        } else if (n.Has("value_float")) {
            SetOut(n, 0, {}, FloatConst({n.F("value_float", 0)}));
        } else if (n.Has("value_floats")) {
            auto f = n.attrs["value_floats"].floats;
            SetOut(n, 0, {static_cast<std::int64_t>(f.size())}, FloatConst(f));
        } else if (n.Has("value_int")) {
            SetOut(n, 0, {}, IntConst({n.I("value_int", 0)}));
        } else if (n.Has("value_ints")) {
            auto i = n.Ints("value_ints");
            SetOut(n, 0, {static_cast<std::int64_t>(i.size())}, IntConst(i));
        } else {
            return Unimplemented("Constant node '" + n.name + "' without a supported value");
        }
        folded = true;
        return Status::Ok();
    }
    if (op == "Shape") {
        const auto& s = In(n, 0).shape;
        SetOut(n, 0, {static_cast<std::int64_t>(s.size())}, IntConst(s));
        folded = true;
        return Status::Ok();
    }
    static const char* kFoldable[] = {"Gather",  "Unsqueeze", "Squeeze",  "Concat", "Cast", "Slice",
                                      "Reshape", "Flatten",   "Identity", "Add",    "Sub",  "Mul",
                                      "Div",     "Floor",     "Ceil",     "Sqrt"};
    if (std::find_if(std::begin(kFoldable), std::end(kFoldable),
                     [&](const char* k) { return op == k; }) == std::end(kFoldable)) {
        return Status::Ok();
    }
    for (std::size_t k = 0; k < n.in.size(); ++k) {
        if (HasIn(n, k) && !In(n, k).constant) return Status::Ok();
    }
    if (n.in.empty() || !HasIn(n, 0)) return Status::Ok();
    // Run the ordinary shape rule first, then compute the values.
    FG_RETURN_IF_ERROR(InferShape(n));
    const Value& x = In(n, 0);
    const Const& cx = *x.constant;
    const auto& out_shape = g_.values[n.out[0]].shape;
    std::shared_ptr<const Const> result;
    if (op == "Unsqueeze" || op == "Squeeze" || op == "Reshape" || op == "Flatten" ||
        op == "Identity") {
        result = x.constant;
    } else if (op == "Cast") {
        const auto to = n.I("to", 1);
        if (to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE) {
            result = FloatConst(AsFloats(cx));
        } else {
            result = IntConst(AsInts(cx));
        }
    } else if (op == "Floor" || op == "Ceil" || op == "Sqrt") {
        auto f = AsFloats(cx);
        for (auto& v : f)
            v = op == "Floor" ? std::floor(v) : op == "Ceil" ? std::ceil(v) : std::sqrt(v);
        result = cx.is_int ? IntConst(AsInts(*FloatConst(f))) : FloatConst(f);
    } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
        const Value& y = In(n, 1);
        const Const& cy = *y.constant;
        if (cx.is_int && cy.is_int) {
            result = IntConst(Broadcast<std::int64_t>(cx.i, x.shape, cy.i, y.shape, out_shape,
                                                      [&](std::int64_t a, std::int64_t b) {
                                                          if (op == "Add") return a + b;
                                                          if (op == "Sub") return a - b;
                                                          if (op == "Mul") return a * b;
                                                          return b == 0 ? std::int64_t{0} : a / b;
                                                      }));
        } else {
            result = FloatConst(Broadcast<float>(AsFloats(cx), x.shape, AsFloats(cy), y.shape,
                                                 out_shape, [&](float a, float b) {
                                                     if (op == "Add") return a + b;
                                                     if (op == "Sub") return a - b;
                                                     if (op == "Mul") return a * b;
                                                     return a / b;
                                                 }));
        }
    } else if (op == "Gather" || op == "Concat" || op == "Slice") {
        // Index arithmetic on small constants: go through doubles and convert back.
        auto make = [&](const std::vector<double>& v) {
            if (cx.is_int) {
                std::vector<std::int64_t> r(v.begin(), v.end());
                return IntConst(r);
            }
            return FloatConst(std::vector<float>(v.begin(), v.end()));
        };
        std::vector<double> out;
        if (op == "Gather") {
            const auto axis = NormAxis(n.I("axis", 0), x.shape.size());
            const auto idx = AsInts(*In(n, 1).constant);
            std::int64_t outer = 1, inner = 1;
            for (std::int64_t k = 0; k < axis; ++k) outer *= x.shape[k];
            for (std::size_t k = axis + 1; k < x.shape.size(); ++k) inner *= x.shape[k];
            const std::int64_t dim = x.shape[axis];
            for (std::int64_t o = 0; o < outer; ++o) {
                for (auto i : idx) {
                    if (i < 0) i += dim;
                    if (i < 0 || i >= dim) return Bad(n, "index out of range");
                    for (std::int64_t r = 0; r < inner; ++r) {
                        out.push_back(cx.At((o * dim + i) * inner + r));
                    }
                }
            }
        } else if (op == "Concat") {
            const auto axis = NormAxis(n.I("axis", 0), out_shape.size());
            std::int64_t outer = 1;
            for (std::int64_t k = 0; k < axis; ++k) outer *= out_shape[k];
            for (std::int64_t o = 0; o < outer; ++o) {
                for (std::size_t k = 0; k < n.in.size(); ++k) {
                    const Value& v = In(n, k);
                    const std::int64_t chunk = outer ? Numel(v.shape) / outer : 0;
                    for (std::int64_t r = 0; r < chunk; ++r) {
                        out.push_back(v.constant->At(o * chunk + r));
                    }
                }
            }
        } else {
            if (x.shape.size() != 1) return Status::Ok();   // only 1-D slices of shapes fold
            const auto starts = n.Ints("fg_starts");
            const std::int64_t step = n.Ints("fg_steps")[0];
            for (std::int64_t k = 0; k < out_shape[0]; ++k)
                out.push_back(cx.At(starts[0] + k * step));
        }
        result = make(out);
    }
    if (!result) return Status::Ok();
    g_.values[n.out[0]].constant = result;
    folded = true;
    return Status::Ok();
}

namespace {

/// Resolves auto_pad and returns [begin..., end...] pads for `spatial` dims. The attributes
/// come from an untrusted file: a zero stride would divide by zero and `pads` of the wrong
/// length would be written past, so every one is checked before use.
Result<std::vector<std::int64_t>> ResolvePads(const Node& n, const std::vector<std::int64_t>& in,
                                              const std::vector<std::int64_t>& kernel,
                                              const std::vector<std::int64_t>& strides,
                                              const std::vector<std::int64_t>& dilations) {
    const std::size_t sp = kernel.size();
    if (in.size() != sp || strides.size() != sp || dilations.size() != sp) {
        return InvalidArgument("kernel_shape, strides and dilations must have " +
                               std::to_string(in.size()) + " values");
    }
    for (std::size_t k = 0; k < sp; ++k) {
        if (kernel[k] <= 0 || strides[k] <= 0 || dilations[k] <= 0) {
            return InvalidArgument("kernel_shape, strides and dilations must be positive");
        }
    }
    std::vector<std::int64_t> pads = n.Ints("pads", std::vector<std::int64_t>(2 * sp, 0));
    if (pads.size() != 2 * sp) {
        return InvalidArgument("pads must have " + std::to_string(2 * sp) + " values, not " +
                               std::to_string(pads.size()));
    }
    for (std::int64_t p : pads) {
        if (p < 0) return InvalidArgument("pads must not be negative");
    }
    const std::string autopad = n.S("auto_pad", "NOTSET");
    if (autopad == "SAME_UPPER" || autopad == "SAME_LOWER") {
        for (std::size_t k = 0; k < sp; ++k) {
            const std::int64_t out = (in[k] + strides[k] - 1) / strides[k];
            const std::int64_t ek = (kernel[k] - 1) * dilations[k] + 1;
            const std::int64_t total =
                std::max<std::int64_t>(0, (out - 1) * strides[k] + ek - in[k]);
            const std::int64_t small = total / 2;
            pads[k] = autopad == "SAME_UPPER" ? small : total - small;
            pads[k + sp] = total - pads[k];
        }
    } else if (autopad == "VALID") {
        std::fill(pads.begin(), pads.end(), 0);
    }
    return pads;
}

bool IsEltwiseOp(const std::string& op) {
    return op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Exp" || op == "LeakyRelu" ||
           op == "Clip" || op == "Identity" || op == "Dropout" || op == "Sqrt" || op == "Abs" ||
           op == "Neg" || op == "Elu";
}

}   // namespace

Status Builder::InferShape(Node& n) {
    const std::string& op = n.op;
    for (std::size_t k = 0; k < n.in.size(); ++k) {
        if (HasIn(n, k) && In(n, k).shape.empty() && !In(n, k).constant && op != "Constant") {
            // Scalars are fine; an unknown shape is not.
        }
    }
    auto need_inputs = [&](std::size_t count) -> Status {
        for (std::size_t k = 0; k < count; ++k) {
            if (!HasIn(n, k)) return Bad(n, "missing input " + std::to_string(k));
        }
        return Status::Ok();
    };
    auto const_input = [&](std::size_t k) -> const Const* {
        return HasIn(n, k) ? In(n, k).constant.get() : nullptr;
    };
    if (IsEltwiseOp(op) || op == "PRelu" || op == "BatchNormalization" || op == "Softmax") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        if (op == "PRelu" && !const_input(1)) return Unimplemented("PRelu with a computed slope");
        if (op == "BatchNormalization") {
            FG_RETURN_IF_ERROR(need_inputs(5));
            for (std::size_t k = 1; k < 5; ++k) {
                if (!const_input(k)) return Unimplemented("BatchNormalization with computed stats");
            }
        }
        if (op == "Clip" &&
            ((HasIn(n, 1) && !const_input(1)) || (HasIn(n, 2) && !const_input(2)))) {
            return Unimplemented("Clip with computed bounds");
        }
        SetOut(n, 0, In(n, 0).shape);
        for (std::size_t k = 1; k < n.out.size(); ++k) SetOut(n, k, {});
        return Status::Ok();
    }
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
        FG_RETURN_IF_ERROR(need_inputs(2));
        auto shape = BroadcastShapes(In(n, 0).shape, In(n, 1).shape);
        if (!shape.ok()) return Bad(n, shape.status().message());
        SetOut(n, 0, *shape);
        return Status::Ok();
    }
    if (op == "Conv") {
        FG_RETURN_IF_ERROR(need_inputs(2));
        const auto& x = In(n, 0).shape;
        const auto& w = In(n, 1).shape;
        if (!const_input(1)) return Unimplemented("Conv with computed weights");
        if (HasIn(n, 2) && !const_input(2)) return Unimplemented("Conv with a computed bias");
        if (x.size() != 4 || w.size() != 4) return Unimplemented("Conv that is not 2-D");
        // Checked here: the BatchNorm fold and the lowering index the bias by output channel.
        if (HasIn(n, 2) && static_cast<std::int64_t>(const_input(2)->size()) != w[0]) {
            return Bad(n, "bias of " + std::to_string(const_input(2)->size()) + " values for " +
                              std::to_string(w[0]) + " output channels");
        }
        const std::int64_t group = n.I("group", 1);
        if (group <= 0 || x[1] != w[1] * group || w[0] % group != 0) {
            return Bad(n, "channels " + ShapeText(x) + " do not match weights " + ShapeText(w));
        }
        const std::vector<std::int64_t> kernel{w[2], w[3]};
        const auto strides = n.Ints("strides", {1, 1});
        const auto dil = n.Ints("dilations", {1, 1});
        if (strides.size() != 2 || dil.size() != 2) return Bad(n, "bad strides/dilations");
        Result<std::vector<std::int64_t>> resolved = ResolvePads(n, {x[2], x[3]}, kernel, strides, dil);
        if (!resolved.ok()) return Bad(n, resolved.status().message());
        const std::vector<std::int64_t>& pads = *resolved;
        std::vector<std::int64_t> out{x[0], w[0], 0, 0};
        for (int k = 0; k < 2; ++k) {
            const std::int64_t ek = (kernel[k] - 1) * dil[k] + 1;
            out[2 + k] = (x[2 + k] + pads[k] + pads[k + 2] - ek) / strides[k] + 1;
            if (out[2 + k] <= 0) return Bad(n, "empty output");
        }
        n.attrs["fg_pads"].ints = pads;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "MaxPool" || op == "AveragePool") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        if (x.size() != 4) return Unimplemented(op + " that is not 2-D");
        const auto kernel = n.Ints("kernel_shape");
        if (kernel.size() != 2) return Bad(n, "kernel_shape must have 2 dims");
        const auto strides = n.Ints("strides", {1, 1});
        const auto dil = n.Ints("dilations", {1, 1});
        if (dil != std::vector<std::int64_t>{1, 1}) return Unimplemented(op + " with dilations");
        Result<std::vector<std::int64_t>> resolved = ResolvePads(n, {x[2], x[3]}, kernel, strides, dil);
        if (!resolved.ok()) return Bad(n, resolved.status().message());
        std::vector<std::int64_t> pads = std::move(*resolved);
        const bool ceil = n.I("ceil_mode", 0) != 0;
        std::vector<std::int64_t> out{x[0], x[1], 0, 0};
        for (int k = 0; k < 2; ++k) {
            const std::int64_t span = x[2 + k] + pads[k] + pads[k + 2] - kernel[k];
            if (span < 0) return Bad(n, "kernel larger than the padded input");
            out[2 + k] = (ceil ? (span + strides[k] - 1) / strides[k] : span / strides[k]) + 1;
            // A last window starting inside the right padding is dropped (ONNX/PyTorch rule).
            if (ceil && (out[2 + k] - 1) * strides[k] >= x[2 + k] + pads[k]) --out[2 + k];
            // oneDNN wants the right padding that yields exactly this output size.
            pads[k + 2] = (out[2 + k] - 1) * strides[k] + kernel[k] - x[2 + k] - pads[k];
        }
        n.attrs["fg_pads"].ints = pads;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        if (x.size() != 4) return Unimplemented(op + " that is not 2-D");
        SetOut(n, 0, {x[0], x[1], 1, 1});
        return Status::Ok();
    }
    if (op == "ReduceMean") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        auto x = In(n, 0).shape;
        auto axes = n.Ints("axes");
        if (axes.empty()) return Unimplemented("ReduceMean over all axes");
        for (auto& a : axes) a = NormAxis(a, x.size());
        std::sort(axes.begin(), axes.end());
        std::vector<std::int64_t> out;
        for (std::size_t k = 0; k < x.size(); ++k) {
            const bool reduced = std::binary_search(axes.begin(), axes.end(), k);
            if (!reduced)
                out.push_back(x[k]);
            else if (n.I("keepdims", 1))
                out.push_back(1);
        }
        n.attrs["axes"].ints = axes;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Gemm" || op == "MatMul") {
        FG_RETURN_IF_ERROR(need_inputs(2));
        const auto& a = In(n, 0).shape;
        const auto& b = In(n, 1).shape;
        if (!const_input(1)) return Unimplemented(op + " with a computed right-hand side");
        if (b.size() != 2 || a.empty()) return Unimplemented(op + " with rank " + ShapeText(b));
        if (op == "Gemm" && (a.size() != 2 || n.I("transA", 0) != 0)) {
            return Unimplemented("Gemm with transA or a non-2-D input");
        }
        if (HasIn(n, 2) && !const_input(2)) return Unimplemented("Gemm with a computed bias");
        const bool tb = op == "Gemm" && n.I("transB", 0) != 0;
        const std::int64_t kdim = tb ? b[1] : b[0];
        const std::int64_t ndim = tb ? b[0] : b[1];
        if (a.back() != kdim) return Bad(n, ShapeText(a) + " x " + ShapeText(b));
        auto out = a;
        out.back() = ndim;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Concat") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        auto out = In(n, 0).shape;
        const auto axis = NormAxis(n.I("axis", 0), out.size());
        if (axis < 0 || axis >= static_cast<std::int64_t>(out.size())) return Bad(n, "bad axis");
        out[axis] = 0;
        for (std::size_t k = 0; k < n.in.size(); ++k) {
            FG_RETURN_IF_ERROR(need_inputs(k + 1));
            const auto& s = In(n, k).shape;
            if (s.size() != out.size()) return Bad(n, "inputs of different rank");
            for (std::size_t d = 0; d < s.size(); ++d) {
                if (static_cast<std::int64_t>(d) != axis && s[d] != out[d]) {
                    return Bad(n, "inputs " + ShapeText(s) + " and " + ShapeText(out) + " differ");
                }
            }
            out[axis] += s[axis];
        }
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Resize" || op == "Upsample") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        std::vector<float> scales;
        std::vector<std::int64_t> sizes;
        if (op == "Upsample" || g_.opset < 11) {
            if (n.Has("scales"))
                scales = n.attrs["scales"].floats;
            else if (const Const* c = const_input(1))
                scales = AsFloats(*c);
        } else {
            if (const Const* c = const_input(3); c && c->size())
                sizes = AsInts(*c);
            else if (const Const* s = const_input(2))
                scales = AsFloats(*s);
        }
        std::vector<std::int64_t> out = x;
        if (!sizes.empty()) {
            if (sizes.size() != x.size()) return Bad(n, "sizes of the wrong rank");
            for (std::int64_t d : sizes) {
                if (d <= 0) return Bad(n, "sizes must be positive");
            }
            out = sizes;
        } else if (scales.size() == x.size()) {
            for (std::size_t k = 0; k < x.size(); ++k) {
                // Untrusted scales: NaN, negative or huge would convert with undefined behaviour
                // (fg_fuzz_onnx); 2^40 is far beyond any tensor we could allocate.
                const double v = std::floor(static_cast<double>(x[k]) * scales[k]);
                if (!(v >= 0 && v <= 1099511627776.0)) return Bad(n, "scales out of range");
                out[k] = static_cast<std::int64_t>(v);
            }
        } else {
            return Unimplemented(op + " with computed scales or sizes");
        }
        if (x.size() != 4 || out[0] != x[0] || out[1] != x[1]) {
            return Unimplemented(op + " of other than the spatial dims");
        }
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Transpose") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        auto perm = n.Ints("perm");
        if (perm.empty()) {
            for (std::size_t k = x.size(); k-- > 0;) perm.push_back(static_cast<std::int64_t>(k));
        }
        if (perm.size() != x.size()) return Bad(n, "perm of the wrong rank");
        std::vector<std::int64_t> out;
        for (auto p : perm) {
            if (p < 0 || p >= static_cast<std::int64_t>(x.size())) return Bad(n, "bad perm");
            out.push_back(x[p]);
        }
        n.attrs["perm"].ints = perm;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Reshape") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        std::vector<std::int64_t> target;
        if (const Const* c = const_input(1))
            target = AsInts(*c);
        else if (n.Has("shape"))
            target = n.Ints("shape");
        else
            return Unimplemented("Reshape to a shape computed at run time");
        std::int64_t known = 1;
        int infer = -1;
        for (std::size_t k = 0; k < target.size(); ++k) {
            if (target[k] == 0 && !n.I("allowzero", 0)) target[k] = k < x.size() ? x[k] : 1;
            if (target[k] == -1) {
                if (infer >= 0) return Bad(n, "two -1 in the target");
                infer = static_cast<int>(k);
            } else if (target[k] < 0) {
                return Bad(n, "a negative target dim other than -1");
            } else if (target[k] > 0 && known > std::numeric_limits<std::int64_t>::max() / target[k]) {
                // Untrusted file: the product overflowed (fg_fuzz_onnx).
                return Bad(n, "the target " + ShapeText(target) + " is too large");
            } else {
                known *= target[k];
            }
        }
        if (infer >= 0 && known > 0) target[infer] = Numel(x) / known;
        if (Numel(target) != Numel(x)) {
            return Bad(n, "cannot reshape " + ShapeText(x) + " to " + ShapeText(target));
        }
        SetOut(n, 0, target);
        return Status::Ok();
    }
    if (op == "Flatten") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        const auto axis = NormAxis(n.I("axis", 1), x.size());
        std::int64_t a = 1, b = 1;
        for (std::size_t k = 0; k < x.size(); ++k)
            (static_cast<std::int64_t>(k) < axis ? a : b) *= x[k];
        SetOut(n, 0, {a, b});
        return Status::Ok();
    }
    if (op == "Squeeze" || op == "Unsqueeze") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        auto axes = n.Ints("axes");
        if (const Const* c = const_input(1)) axes = AsInts(*c);
        std::vector<std::int64_t> out;
        if (op == "Squeeze") {
            for (auto& a : axes) a = NormAxis(a, x.size());
            for (std::size_t k = 0; k < x.size(); ++k) {
                const bool listed = std::find(axes.begin(), axes.end(), k) != axes.end();
                if (axes.empty() ? x[k] != 1 : !listed) out.push_back(x[k]);
            }
        } else {
            const std::size_t rank = x.size() + axes.size();
            for (auto& a : axes) a = NormAxis(a, rank);
            std::size_t src = 0;
            for (std::size_t k = 0; k < rank; ++k) {
                if (std::find(axes.begin(), axes.end(), k) != axes.end())
                    out.push_back(1);
                else if (src < x.size())
                    out.push_back(x[src++]);
            }
        }
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Slice") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        std::vector<std::int64_t> starts, ends, axes, steps;
        if (g_.opset < 10) {
            starts = n.Ints("starts");
            ends = n.Ints("ends");
            axes = n.Ints("axes");
        } else {
            for (std::size_t k = 1; k < n.in.size(); ++k) {
                if (HasIn(n, k) && !const_input(k))
                    return Unimplemented("Slice with computed bounds");
            }
            if (!const_input(1) || !const_input(2)) return Bad(n, "missing starts/ends");
            starts = AsInts(*const_input(1));
            ends = AsInts(*const_input(2));
            if (const Const* c = const_input(3)) axes = AsInts(*c);
            if (const Const* c = const_input(4)) steps = AsInts(*c);
        }
        if (axes.empty()) {
            for (std::size_t k = 0; k < starts.size(); ++k)
                axes.push_back(static_cast<std::int64_t>(k));
        }
        if (steps.empty()) steps.assign(starts.size(), 1);
        if (ends.size() != starts.size() || axes.size() != starts.size() ||
            steps.size() != starts.size()) {
            return Bad(n, "starts/ends/axes/steps differ in length");
        }
        std::vector<std::int64_t> all_starts(x.size(), 0), all_steps(x.size(), 1), out = x;
        for (std::size_t k = 0; k < starts.size(); ++k) {
            const auto axis = NormAxis(axes[k], x.size());
            if (axis < 0 || axis >= static_cast<std::int64_t>(x.size())) return Bad(n, "bad axis");
            const std::int64_t dim = x[axis];
            const std::int64_t step = steps[k];
            if (step == 0) return Bad(n, "step 0");
            auto clamp = [&](std::int64_t v, bool is_end) {
                if (v < 0) v += dim;
                if (step > 0) return std::clamp<std::int64_t>(v, 0, dim);
                return std::clamp<std::int64_t>(v, -1, dim - 1) + (is_end ? 0 : 0);
            };
            const std::int64_t s = clamp(starts[k], false);
            const std::int64_t e =
                clamp(std::clamp<std::int64_t>(ends[k], -(1LL << 40), 1LL << 40), true);
            const std::int64_t len = step > 0
                                         ? std::max<std::int64_t>(0, (e - s + step - 1) / step)
                                         : std::max<std::int64_t>(0, (s - e - step - 1) / -step);
            all_starts[axis] = s;
            all_steps[axis] = step;
            out[axis] = len;
        }
        n.attrs["fg_starts"].ints = all_starts;
        n.attrs["fg_steps"].ints = all_steps;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Gather") {
        FG_RETURN_IF_ERROR(need_inputs(2));
        if (!const_input(1)) return Unimplemented("Gather with computed indices");
        const auto& x = In(n, 0).shape;
        const auto axis = NormAxis(n.I("axis", 0), x.size());
        if (axis < 0 || axis >= static_cast<std::int64_t>(x.size())) return Bad(n, "bad axis");
        std::vector<std::int64_t> out(x.begin(), x.begin() + axis);
        for (auto d : In(n, 1).shape) out.push_back(d);
        out.insert(out.end(), x.begin() + axis + 1, x.end());
        n.attrs["axis"].i = axis;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Split") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        const auto axis = NormAxis(n.I("axis", 0), x.size());
        if (axis < 0 || axis >= static_cast<std::int64_t>(x.size())) return Bad(n, "bad axis");
        auto split = n.Ints("split");
        if (const Const* c = const_input(1)) split = AsInts(*c);
        if (split.empty()) {
            const auto parts = static_cast<std::int64_t>(n.out.size());
            if (x[axis] % parts != 0) return Bad(n, "uneven split");
            split.assign(parts, x[axis] / parts);
        }
        if (split.size() != n.out.size()) return Bad(n, "split sizes do not match outputs");
        std::int64_t total = 0;
        for (std::size_t k = 0; k < split.size(); ++k) {
            auto out = x;
            out[axis] = split[k];
            total += split[k];
            SetOut(n, k, out);
        }
        if (total != x[axis]) return Bad(n, "split sizes do not add up");
        n.attrs["axis"].i = axis;
        n.attrs["split"].ints = split;
        return Status::Ok();
    }
    if (op == "Pad") {
        FG_RETURN_IF_ERROR(need_inputs(1));
        const auto& x = In(n, 0).shape;
        auto pads = n.Ints("pads");
        float value = n.F("value", 0.f);
        if (g_.opset >= 11) {
            if (!const_input(1)) return Unimplemented("Pad with computed pads");
            pads = AsInts(*const_input(1));
            if (const Const* c = const_input(2); c && c->size())
                value = static_cast<float>(c->At(0));
        }
        if (n.S("mode", "constant") != "constant")
            return Unimplemented("Pad mode " + n.S("mode", ""));
        if (pads.size() != 2 * x.size()) return Bad(n, "pads of the wrong length");
        auto out = x;
        for (std::size_t k = 0; k < x.size(); ++k) {
            if (pads[k] < 0 || pads[k + x.size()] < 0)
                return Unimplemented("Pad with negative pads");
            out[k] += pads[k] + pads[k + x.size()];
        }
        n.attrs["pads"].ints = pads;
        n.attrs["value"].f = value;
        SetOut(n, 0, out);
        return Status::Ok();
    }
    if (op == "Cast") {
        const auto to = n.I("to", 1);
        if (to != onnx::TensorProto::FLOAT && !const_input(0))
            return Unimplemented("Cast to a non-float type at run time");
        SetOut(n, 0, In(n, 0).shape);
        return Status::Ok();
    }
    return Unimplemented("op '" + op + "' (node '" + n.name +
                         "') is not supported by the onednn backend");
}

/// y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta folds into the conv's weights/bias.
void Builder::FoldBatchNorms() {
    for (std::size_t k = 0; k < g_.nodes.size(); ++k) {
        Node& bn = g_.nodes[k];
        if (bn.dead || bn.op != "BatchNormalization" || bn.out.size() != 1) continue;
        Value& x = g_.values[bn.in[0]];
        if (x.producer < 0 || x.is_output || x.consumers.size() != 1) continue;
        // Indices, not references: values grows below (push_back invalidates them).
        const int conv_index = x.producer;
        Node& conv = g_.nodes[conv_index];
        if (conv.op != "Conv" || conv.dead) continue;
        const Const& gamma = *g_.values[bn.in[1]].constant;
        const Const& beta = *g_.values[bn.in[2]].constant;
        const Const& mean = *g_.values[bn.in[3]].constant;
        const Const& var = *g_.values[bn.in[4]].constant;
        const Const& w = *g_.values[conv.in[1]].constant;
        const std::int64_t oc = g_.values[conv.in[1]].shape[0];
        if (static_cast<std::int64_t>(gamma.size()) != oc || beta.size() != gamma.size() ||
            mean.size() != gamma.size() || var.size() != gamma.size() || w.is_int) {
            continue;
        }
        const float eps = bn.F("epsilon", 1e-5f);
        std::vector<float> nw = w.f;
        std::vector<float> nb(static_cast<std::size_t>(oc), 0.f);
        if (conv.in.size() > 2 && conv.in[2] >= 0) nb = AsFloats(*g_.values[conv.in[2]].constant);
        const std::size_t per = nw.size() / static_cast<std::size_t>(oc);
        for (std::int64_t c = 0; c < oc; ++c) {
            const double s = gamma.At(c) / std::sqrt(var.At(c) + eps);
            for (std::size_t j = 0; j < per; ++j)
                nw[c * per + j] = static_cast<float>(nw[c * per + j] * s);
            nb[c] = static_cast<float>((nb[c] - mean.At(c)) * s + beta.At(c));
        }
        Value wv;
        wv.name = conv.name + "/fg_bn_weight";
        wv.shape = g_.values[conv.in[1]].shape;
        wv.constant = FloatConst(std::move(nw));
        Value bv;
        bv.name = conv.name + "/fg_bn_bias";
        bv.shape = {oc};
        bv.constant = FloatConst(std::move(nb));
        g_.values.push_back(std::move(wv));
        conv.in.resize(3);
        conv.in[1] = static_cast<int>(g_.values.size()) - 1;
        g_.values.push_back(std::move(bv));
        conv.in[2] = static_cast<int>(g_.values.size()) - 1;
        // The conv now writes the BN's output directly.
        const int y = bn.out[0];
        g_.values[y].producer = conv_index;
        conv.out[0] = y;
        bn.dead = true;
        g_.values[bn.in[0]].consumers.clear();
    }
}

}   // namespace

Result<Graph> BuildGraph(const OnnxSource& source,
                         const std::vector<std::vector<std::int64_t>>& input_shapes) {
    try {
        Builder b(source.impl());
        return b.Build(input_shapes);
    } catch (const std::exception& e) {
        return Internal(std::string("onednn graph build failed: ") + e.what());
    }
}

}   // namespace fg::infer::onednn
