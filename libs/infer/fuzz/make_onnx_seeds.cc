// SPDX-License-Identifier: Apache-2.0
// Writes the ONNX fuzzer's seed corpus (libs/infer/fuzz/corpus/onnx/): tiny graphs built here,
// one per family of ops the oneDNN lowering handles, so that no model file from elsewhere is
// committed. Rebuild the seeds with:
//   cmake --build build/fuzz --target fg_fuzz_onnx_seeds
//   build/fuzz/libs/infer/fg_fuzz_onnx_seeds libs/infer/fuzz/corpus/onnx
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace {

using Shape = std::vector<std::int64_t>;

class Builder {
  public:
    Builder() {
        model_.set_ir_version(7);
        model_.add_opset_import()->set_version(11);
        g_ = model_.mutable_graph();
        g_->set_name("seed");
    }
    void Input(const std::string& name, const Shape& shape) { Declare(g_->add_input(), name, shape); }
    void Output(const std::string& name, int rank) {
        auto* tt = g_->add_output();
        tt->set_name(name);
        auto* t = tt->mutable_type()->mutable_tensor_type();
        t->set_elem_type(onnx::TensorProto::FLOAT);
        for (int k = 0; k < rank; ++k) t->mutable_shape()->add_dim();
    }
    void Floats(const std::string& name, const Shape& shape) {
        auto* t = g_->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        std::int64_t n = 1;
        for (auto d : shape) {
            t->add_dims(d);
            n *= d;
        }
        for (std::int64_t i = 0; i < n; ++i) t->add_float_data(static_cast<float>(i % 7) * 0.25f - 0.5f);
    }
    void Ints(const std::string& name, const Shape& v) {
        auto* t = g_->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::INT64);
        t->add_dims(static_cast<std::int64_t>(v.size()));
        for (auto x : v) t->add_int64_data(x);
    }
    onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
        auto* n = g_->add_node();
        n->set_op_type(op);
        n->set_name(op + std::to_string(g_->node_size()));
        for (auto& s : in) n->add_input(s);
        for (auto& s : out) n->add_output(s);
        return n;
    }
    static void AttrInts(onnx::NodeProto* n, const std::string& k, const Shape& v) {
        auto* a = n->add_attribute();
        a->set_name(k);
        a->set_type(onnx::AttributeProto::INTS);
        for (auto x : v) a->add_ints(x);
    }
    static void AttrInt(onnx::NodeProto* n, const std::string& k, std::int64_t v) {
        auto* a = n->add_attribute();
        a->set_name(k);
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(v);
    }
    static void AttrStr(onnx::NodeProto* n, const std::string& k, const std::string& v) {
        auto* a = n->add_attribute();
        a->set_name(k);
        a->set_type(onnx::AttributeProto::STRING);
        a->set_s(v);
    }
    bool Save(const std::string& path) const {
        std::ofstream out(path, std::ios::binary);
        return model_.SerializeToOstream(&out);
    }

  private:
    static void Declare(onnx::ValueInfoProto* vi, const std::string& name, const Shape& shape) {
        vi->set_name(name);
        auto* t = vi->mutable_type()->mutable_tensor_type();
        t->set_elem_type(onnx::TensorProto::FLOAT);
        for (std::size_t k = 0; k < shape.size(); ++k) {
            auto* d = t->mutable_shape()->add_dim();
            if (shape[k] > 0) {
                d->set_dim_value(shape[k]);
            } else {
                d->set_dim_param("d" + std::to_string(k));
            }
        }
    }
    onnx::ModelProto model_;
    onnx::GraphProto* g_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fg_fuzz_onnx_seeds OUT_DIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    bool ok = true;
    {   // Conv (padded, strided) -> Relu -> MaxPool: the detectors' backbone.
        Builder b;
        b.Input("x", {1, 3, 8, 8});
        b.Floats("w", {4, 3, 3, 3});
        b.Floats("bias", {4});
        auto* c = b.Node("Conv", {"x", "w", "bias"}, {"c"});
        Builder::AttrInts(c, "kernel_shape", {3, 3});
        Builder::AttrInts(c, "pads", {1, 1, 1, 1});
        Builder::AttrInts(c, "strides", {1, 1});
        b.Node("Relu", {"c"}, {"r"});
        auto* p = b.Node("MaxPool", {"r"}, {"y"});
        Builder::AttrInts(p, "kernel_shape", {2, 2});
        Builder::AttrInts(p, "strides", {2, 2});
        b.Output("y", 4);
        ok &= b.Save(dir + "/conv_relu_maxpool.onnx");
    }
    {   // Depthwise conv with SAME padding, BatchNorm, PRelu, global pooling: the embedders.
        Builder b;
        b.Input("x", {1, 2, 6, 6});
        b.Floats("w", {2, 1, 3, 3});
        auto* c = b.Node("Conv", {"x", "w"}, {"c"});
        Builder::AttrInt(c, "group", 2);
        Builder::AttrStr(c, "auto_pad", "SAME_UPPER");
        Builder::AttrInts(c, "strides", {2, 2});
        for (const char* n : {"s", "o", "m"}) b.Floats(n, {2});
        b.Floats("v", {2});
        b.Node("BatchNormalization", {"c", "s", "o", "m", "v"}, {"bn"});
        b.Floats("slope", {2, 1, 1});
        b.Node("PRelu", {"bn", "slope"}, {"pr"});
        b.Node("GlobalAveragePool", {"pr"}, {"y"});
        b.Output("y", 4);
        ok &= b.Save(dir + "/dwconv_bn_prelu_gap.onnx");
    }
    {   // Flatten -> Gemm -> Softmax: a classifier head.
        Builder b;
        b.Input("x", {1, 4, 2, 2});
        b.Node("Flatten", {"x"}, {"f"});
        b.Floats("w", {3, 16});
        b.Floats("bias", {3});
        auto* g = b.Node("Gemm", {"f", "w", "bias"}, {"g"});
        Builder::AttrInt(g, "transB", 1);
        b.Node("Softmax", {"g"}, {"y"});
        b.Output("y", 2);
        ok &= b.Save(dir + "/flatten_gemm_softmax.onnx");
    }
    {   // Broadcast arithmetic, Concat, Transpose, Reshape: the detector heads.
        Builder b;
        b.Input("x", {1, 2, 3, 4});
        b.Floats("k", {1, 2, 1, 1});
        b.Node("Add", {"x", "k"}, {"a"});
        b.Node("Mul", {"a", "x"}, {"m"});
        b.Node("Sigmoid", {"m"}, {"s"});
        auto* cat = b.Node("Concat", {"s", "x"}, {"c"});
        Builder::AttrInt(cat, "axis", 1);
        auto* t = b.Node("Transpose", {"c"}, {"t"});
        Builder::AttrInts(t, "perm", {0, 2, 3, 1});
        b.Ints("shape", {1, -1, 4});
        b.Node("Reshape", {"t", "shape"}, {"y"});
        b.Output("y", 3);
        ok &= b.Save(dir + "/eltwise_concat_transpose_reshape.onnx");
    }
    {   // Resize (nearest, x2), Slice, Pad: the FPN of SCRFD/YuNet.
        Builder b;
        b.Input("x", {1, 2, 4, 4});
        b.Floats("roi", {0});
        auto* sc = b.Node("Constant", {}, {"scales"});
        auto* a = sc->add_attribute();
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        auto* tv = a->mutable_t();
        tv->set_data_type(onnx::TensorProto::FLOAT);
        tv->add_dims(4);
        for (float f : {1.f, 1.f, 2.f, 2.f}) tv->add_float_data(f);
        auto* r = b.Node("Resize", {"x", "roi", "scales"}, {"r"});
        Builder::AttrStr(r, "mode", "nearest");
        b.Ints("starts", {1, 1});
        b.Ints("ends", {7, 7});
        b.Ints("axes", {2, 3});
        b.Node("Slice", {"r", "starts", "ends", "axes"}, {"sl"});
        b.Ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
        b.Node("Pad", {"sl", "pads"}, {"y"});
        b.Output("y", 4);
        ok &= b.Save(dir + "/resize_slice_pad.onnx");
    }
    {   // A dynamic batch: Conv 1x1 then Reshape [1, -1] (the batch rewrite's case) and MatMul.
        Builder b;
        b.Input("x", {0, 3, 2, 2});
        b.Floats("w", {2, 3, 1, 1});
        b.Node("Conv", {"x", "w"}, {"c"});
        b.Ints("shape", {1, -1});
        b.Node("Reshape", {"c", "shape"}, {"f"});
        b.Floats("m", {8, 2});
        b.Node("MatMul", {"f", "m"}, {"y"});
        b.Output("y", 2);
        ok &= b.Save(dir + "/dynamic_batch_matmul.onnx");
    }
    if (!ok) std::cerr << "fg_fuzz_onnx_seeds: cannot write to " << dir << "\n";
    return ok ? 0 : 1;
}
