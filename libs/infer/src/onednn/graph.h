// SPDX-License-Identifier: Apache-2.0
// A small IR of an ONNX graph at fixed input shapes: every value has a static shape, constant
// subgraphs (shape arithmetic, Constant) are folded away and BatchNormalization is folded into
// the Conv before it. The lowering to oneDNN (lower.h) only sees what must run per inference.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fg/base/status.h"

namespace fg::infer::onednn {

/// A constant tensor: float data, or int64 data for shapes and indices.
struct Const {
    bool is_int = false;
    std::vector<float> f;
    std::vector<std::int64_t> i;

    std::size_t size() const { return is_int ? i.size() : f.size(); }
    double At(std::size_t k) const { return is_int ? static_cast<double>(i[k]) : f[k]; }
};

struct Attr {
    std::int64_t i = 0;
    float f = 0.f;
    std::string s;
    std::vector<std::int64_t> ints;
    std::vector<float> floats;
    std::shared_ptr<const Const> t;
    std::vector<std::int64_t> t_dims;
};

struct Value {
    std::string name;
    std::vector<std::int64_t> shape;
    std::shared_ptr<const Const> constant;   // set when the value is known at load time
    int producer = -1;                       // node index, -1 for inputs and constants
    std::vector<int> consumers;              // live node indices reading this value
    bool is_output = false;
};

struct Node {
    std::string op;
    std::string name;
    std::vector<int> in;   // value ids, -1 for an omitted optional input
    std::vector<int> out;
    std::map<std::string, Attr> attrs;
    bool dead = false;   // folded away or fused

    bool Has(const std::string& key) const { return attrs.contains(key); }
    std::int64_t I(const std::string& key, std::int64_t def) const;
    float F(const std::string& key, float def) const;
    std::string S(const std::string& key, const std::string& def) const;
    std::vector<std::int64_t> Ints(const std::string& key,
                                   std::vector<std::int64_t> def = {}) const;
};

struct Graph {
    std::vector<Value> values;
    std::vector<Node> nodes;
    std::vector<int> inputs;    // real graph inputs, in ONNX order
    std::vector<int> outputs;   // graph outputs, in ONNX order
    int opset = 0;
};

/// A parsed, validated ONNX model; immutable and shared by every plan built from it.
class OnnxSource {
  public:
    /// `bytes` must already have passed SummarizeOnnx (topology and tensor sizes checked).
    static Result<std::shared_ptr<const OnnxSource>> Parse(const std::string& bytes);
    ~OnnxSource();

    struct Impl;
    const Impl& impl() const { return *impl_; }

  private:
    OnnxSource();
    std::unique_ptr<Impl> impl_;
};

/// Builds the IR for concrete input shapes. Errors: Unimplemented naming the first op (and
/// node) that cannot run, InvalidArgument for inconsistent shapes or attributes.
Result<Graph> BuildGraph(const OnnxSource& source,
                         const std::vector<std::vector<std::int64_t>>& input_shapes);

/// Row-major element count.
std::int64_t Numel(const std::vector<std::int64_t>& shape);

/// Numpy-style broadcast of two shapes. Errors: InvalidArgument.
Result<std::vector<std::int64_t>> BroadcastShapes(const std::vector<std::int64_t>& a,
                                                  const std::vector<std::int64_t>& b);

/// "[1,3,112,112]".
std::string ShapeText(const std::vector<std::int64_t>& shape);

}   // namespace fg::infer::onednn
