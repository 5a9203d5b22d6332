// SPDX-License-Identifier: Apache-2.0
// Op-level tests of the onednn backend: tiny ONNX graphs built here, odd shapes (1x1 images,
// non-square inputs, channel counts that are not multiples of 8), compared with naive loops.
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "fg/infer/backend.h"
#include "fg/testing/testing.h"

namespace fg::infer {
namespace {

using Shape = std::vector<std::int64_t>;

std::vector<float> Rand(std::int64_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = d(rng);
    return v;
}

std::int64_t Count(const Shape& s) {
    std::int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
}

/// A one-input ONNX graph under construction.
class GraphBuilder {
  public:
    explicit GraphBuilder(int opset = 11) {
        model_.set_ir_version(7);
        model_.add_opset_import()->set_version(opset);
        g_ = model_.mutable_graph();
        g_->set_name("test");
    }
    /// Dims <= 0 are declared symbolic ("d0", "d1", ...): a dynamic shape.
    void Input(const std::string& name, const Shape& shape) {
        Declare(g_->add_input(), name, shape);
    }
    /// Outputs carry a type and rank (OpenCV 4.6 asserts both), dims left unknown.
    void Output(const std::string& name, int rank = 4) {
        auto* vi = g_->add_output();
        vi->set_name(name);
        auto* tt = vi->mutable_type()->mutable_tensor_type();
        tt->set_elem_type(onnx::TensorProto::FLOAT);
        for (int k = 0; k < rank; ++k) tt->mutable_shape()->add_dim();
    }
    void Init(const std::string& name, const Shape& shape, const std::vector<float>& v) {
        auto* t = g_->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        for (auto d : shape) t->add_dims(d);
        for (float x : v) t->add_float_data(x);
    }
    void InitInts(const std::string& name, const std::vector<std::int64_t>& v) {
        auto* t = g_->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::INT64);
        t->add_dims(static_cast<std::int64_t>(v.size()));
        for (auto x : v) t->add_int64_data(x);
    }
    onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in,
                          std::vector<std::string> out) {
        auto* n = g_->add_node();
        n->set_op_type(op);
        n->set_name(op + "_" + std::to_string(g_->node_size()));
        for (auto& s : in) n->add_input(s);
        for (auto& s : out) n->add_output(s);
        return n;
    }
    static void Ints(onnx::NodeProto* n, const std::string& k, std::vector<std::int64_t> v) {
        auto* a = n->add_attribute();
        a->set_name(k);
        a->set_type(onnx::AttributeProto::INTS);
        for (auto x : v) a->add_ints(x);
    }
    static void Int(onnx::NodeProto* n, const std::string& k, std::int64_t v) {
        auto* a = n->add_attribute();
        a->set_name(k);
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(v);
    }
    static void Str(onnx::NodeProto* n, const std::string& k, const std::string& v) {
        auto* a = n->add_attribute();
        a->set_name(k);
        a->set_type(onnx::AttributeProto::STRING);
        a->set_s(v);
    }
    std::filesystem::path Save(const fg::testing::TmpDir& dir, const std::string& name = "g.onnx") {
        const auto path = dir / name;
        std::ofstream out(path, std::ios::binary);
        model_.SerializeToOstream(&out);
        return path;
    }

  private:
    static void Declare(onnx::ValueInfoProto* vi, const std::string& name, const Shape& shape) {
        vi->set_name(name);
        auto* tt = vi->mutable_type()->mutable_tensor_type();
        tt->set_elem_type(onnx::TensorProto::FLOAT);
        for (std::size_t k = 0; k < shape.size(); ++k) {
            auto* dim = tt->mutable_shape()->add_dim();
            if (shape[k] > 0) {
                dim->set_dim_value(shape[k]);
            } else {
                dim->set_dim_param("d" + std::to_string(k));
            }
        }
    }
    onnx::ModelProto model_;
    onnx::GraphProto* g_;
};

Result<std::vector<Tensor>> RunOneDnn(const std::filesystem::path& path, const Tensor& in) {
    FG_ASSIGN_OR_RETURN(auto backend, MakeBackend({.name = "onednn", .threads = 1}));
    ModelSpec spec;
    spec.id = "test";
    spec.path = path;
    FG_ASSIGN_OR_RETURN(auto model, backend->Load(spec));
    FG_ASSIGN_OR_RETURN(auto session, model->CreateSession());
    std::vector<TensorView> outs;
    FG_RETURN_IF_ERROR(session->Run(std::vector<TensorView>{in.View()}, outs));
    std::vector<Tensor> r;
    for (const auto& o : outs) r.push_back({o.shape, {o.data, o.data + o.numel()}});
    return r;
}

void ExpectNear(const Tensor& got, const Shape& shape, const std::vector<float>& want) {
    ASSERT_EQ(got.shape, shape);
    ASSERT_EQ(got.data.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got.data[i], want[i], 1e-4f * (1.f + std::abs(want[i]))) << "at " << i;
    }
}

struct ConvCase {
    std::int64_t c, m, h, w, kh, kw, stride, pad, dil, group;
};

/// Naive NCHW convolution with bias, batch 1.
std::vector<float> NaiveConv(const ConvCase& p, const std::vector<float>& x,
                             const std::vector<float>& w, const std::vector<float>& b,
                             std::int64_t& oh, std::int64_t& ow) {
    oh = (p.h + 2 * p.pad - ((p.kh - 1) * p.dil + 1)) / p.stride + 1;
    ow = (p.w + 2 * p.pad - ((p.kw - 1) * p.dil + 1)) / p.stride + 1;
    const std::int64_t cg = p.c / p.group, mg = p.m / p.group;
    std::vector<float> y(static_cast<std::size_t>(p.m * oh * ow));
    for (std::int64_t m = 0; m < p.m; ++m) {
        const std::int64_t g = m / mg;
        for (std::int64_t i = 0; i < oh; ++i) {
            for (std::int64_t j = 0; j < ow; ++j) {
                double acc = b[m];
                for (std::int64_t c = 0; c < cg; ++c) {
                    for (std::int64_t u = 0; u < p.kh; ++u) {
                        for (std::int64_t v = 0; v < p.kw; ++v) {
                            const std::int64_t yy = i * p.stride - p.pad + u * p.dil;
                            const std::int64_t xx = j * p.stride - p.pad + v * p.dil;
                            if (yy < 0 || yy >= p.h || xx < 0 || xx >= p.w) continue;
                            acc += x[((g * cg + c) * p.h + yy) * p.w + xx] *
                                   w[((m * cg + c) * p.kh + u) * p.kw + v];
                        }
                    }
                }
                y[(m * oh + i) * ow + j] = static_cast<float>(acc);
            }
        }
    }
    return y;
}

TEST(OneDnnOpsTest, ConvVariantsWithBiasAndRelu) {
    const std::vector<ConvCase> cases = {
        {5, 7, 9, 6, 3, 3, 2, 1, 1, 1},     // non-square, odd channels, stride 2
        {6, 6, 1, 1, 3, 3, 1, 1, 1, 6},     // depthwise on a 1x1 image
        {4, 6, 7, 10, 3, 3, 1, 2, 2, 2},    // grouped, dilated
        {3, 10, 1, 1, 1, 1, 1, 0, 1, 1},    // 1x1 conv on 1x1
        {13, 11, 5, 3, 1, 3, 1, 0, 1, 1},   // non-square kernel
    };
    for (const auto& p : cases) {
        SCOPED_TRACE(::testing::Message()
                     << "c" << p.c << " m" << p.m << " " << p.h << "x" << p.w << " g" << p.group);
        fg::testing::TmpDir dir;
        GraphBuilder gb;
        gb.Input("x", {1, p.c, p.h, p.w});
        const auto w = Rand(p.m * (p.c / p.group) * p.kh * p.kw, 1);
        const auto b = Rand(p.m, 2);
        gb.Init("w", {p.m, p.c / p.group, p.kh, p.kw}, w);
        gb.Init("b", {p.m}, b);
        auto* conv = gb.Node("Conv", {"x", "w", "b"}, {"y"});
        GraphBuilder::Ints(conv, "kernel_shape", {p.kh, p.kw});
        GraphBuilder::Ints(conv, "strides", {p.stride, p.stride});
        GraphBuilder::Ints(conv, "pads", {p.pad, p.pad, p.pad, p.pad});
        GraphBuilder::Ints(conv, "dilations", {p.dil, p.dil});
        GraphBuilder::Int(conv, "group", p.group);
        gb.Node("Relu", {"y"}, {"z"});
        gb.Output("z");
        Tensor x{{1, p.c, p.h, p.w}, Rand(p.c * p.h * p.w, 3)};
        auto out = RunOneDnn(gb.Save(dir), x);
        ASSERT_TRUE(out.ok()) << out.status().ToString();
        std::int64_t oh = 0, ow = 0;
        auto want = NaiveConv(p, x.data, w, b, oh, ow);
        for (auto& v : want) v = std::max(v, 0.f);
        ExpectNear((*out)[0], {1, p.m, oh, ow}, want);
    }
}

TEST(OneDnnOpsTest, ResidualAddAsSumThenPRelu) {
    // y = conv(x); z = PRelu(conv2(y) + y): the Add becomes a sum post-op into y's buffer.
    const ConvCase p{12, 12, 5, 7, 3, 3, 1, 1, 1, 1};
    fg::testing::TmpDir dir;
    GraphBuilder gb;
    gb.Input("x", {1, p.c, p.h, p.w});
    const auto w1 = Rand(p.m * p.c * 9, 4), b1 = Rand(p.m, 5), w2 = Rand(p.m * p.m * 9, 6),
               b2 = Rand(p.m, 7), slope = Rand(p.m, 8);
    gb.Init("w1", {p.m, p.c, 3, 3}, w1);
    gb.Init("b1", {p.m}, b1);
    gb.Init("w2", {p.m, p.m, 3, 3}, w2);
    gb.Init("b2", {p.m}, b2);
    gb.Init("slope", {p.m, 1, 1}, slope);
    for (auto [in, w, b, out] :
         {std::tuple{"x", "w1", "b1", "y"}, std::tuple{"y", "w2", "b2", "y2"}}) {
        auto* conv = gb.Node("Conv", {in, w, b}, {out});
        GraphBuilder::Ints(conv, "kernel_shape", {3, 3});
        GraphBuilder::Ints(conv, "pads", {1, 1, 1, 1});
    }
    gb.Node("Add", {"y2", "y"}, {"s"});
    gb.Node("PRelu", {"s", "slope"}, {"z"});
    gb.Output("z");
    Tensor x{{1, p.c, p.h, p.w}, Rand(p.c * p.h * p.w, 9)};
    auto out = RunOneDnn(gb.Save(dir), x);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    std::int64_t oh, ow;
    const auto y = NaiveConv(p, x.data, w1, b1, oh, ow);
    auto want = NaiveConv(p, y, w2, b2, oh, ow);
    for (std::size_t i = 0; i < want.size(); ++i) {
        const float s = want[i] + y[i];
        want[i] = s >= 0 ? s : s * slope[i / (oh * ow)];
    }
    ExpectNear((*out)[0], {1, p.m, oh, ow}, want);
}

TEST(OneDnnOpsTest, PoolsWithCeilModeAndPadding) {
    const Shape in{1, 5, 7, 9};
    Tensor x{in, Rand(Count(in), 10)};
    for (const std::string op : {"MaxPool", "AveragePool", "GlobalAveragePool"}) {
        SCOPED_TRACE(op);
        fg::testing::TmpDir dir;
        GraphBuilder gb;
        gb.Input("x", in);
        auto* n = gb.Node(op, {"x"}, {"y"});
        const std::int64_t k = op == "GlobalAveragePool" ? 0 : 3, s = 2,
                           pad = op == "MaxPool" ? 1 : 0;
        if (k) {
            GraphBuilder::Ints(n, "kernel_shape", {k, k});
            GraphBuilder::Ints(n, "strides", {s, s});
            GraphBuilder::Ints(n, "pads", {pad, pad, pad, pad});
            GraphBuilder::Int(n, "ceil_mode", 1);
        }
        gb.Output("y");
        auto out = RunOneDnn(gb.Save(dir), x);
        ASSERT_TRUE(out.ok()) << out.status().ToString();
        Shape oshape{1, 5, 1, 1};
        std::vector<float> want;
        if (!k) {
            for (int c = 0; c < 5; ++c) {
                double sum = 0;
                for (int i = 0; i < 63; ++i) sum += x.data[c * 63 + i];
                want.push_back(static_cast<float>(sum / 63));
            }
        } else {
            auto odim = [&](std::int64_t d) {
                std::int64_t o = (d + 2 * pad - k + s - 1) / s + 1;
                if ((o - 1) * s >= d + pad) --o;
                return o;
            };
            oshape = {1, 5, odim(7), odim(9)};
            for (int c = 0; c < 5; ++c) {
                for (std::int64_t i = 0; i < oshape[2]; ++i) {
                    for (std::int64_t j = 0; j < oshape[3]; ++j) {
                        double acc = op == "MaxPool" ? -1e30 : 0;
                        int cnt = 0;
                        for (std::int64_t u = 0; u < k; ++u) {
                            for (std::int64_t v = 0; v < k; ++v) {
                                const std::int64_t yy = i * s - pad + u, xx = j * s - pad + v;
                                if (yy < 0 || yy >= 7 || xx < 0 || xx >= 9) continue;
                                const float val = x.data[(c * 7 + yy) * 9 + xx];
                                acc = op == "MaxPool" ? std::max<double>(acc, val) : acc + val;
                                ++cnt;
                            }
                        }
                        want.push_back(static_cast<float>(op == "MaxPool" ? acc : acc / cnt));
                    }
                }
            }
        }
        ExpectNear((*out)[0], oshape, want);
    }
}

// fr_gender/fr_age pad with zeros before each average pool: the Pad becomes the pool's own
// padding (counted in the average) on the convolution's blocked output. A non-zero pad value
// and a padded MaxPool keep the separate Pad and must give the same numbers either way.
TEST(OneDnnOpsTest, ZeroPadBeforeAveragePoolFoldsIntoThePool) {
    const ConvCase p{3, 10, 9, 7, 1, 1, 1, 0, 1, 1};
    const Shape in{1, p.c, p.h, p.w};
    Tensor x{in, Rand(Count(in), 20)};
    const auto w = Rand(p.m * p.c, 21), b = Rand(p.m, 22);
    std::int64_t oh, ow;
    const auto y = NaiveConv(p, x.data, w, b, oh, ow);
    const std::int64_t t = 1, l = 2, bo = 2, r = 0, k = 3, s = 2;   // pads < kernel
    const std::int64_t ph = oh + t + bo, pw = ow + l + r;
    for (const auto& [op, value] : std::vector<std::pair<std::string, float>>{
             {"AveragePool", 0.f}, {"AveragePool", 0.5f}, {"MaxPool", 0.f}}) {
        SCOPED_TRACE(op + " after a pad of " + std::to_string(value));
        fg::testing::TmpDir dir;
        GraphBuilder gb;
        gb.Input("x", in);
        gb.Init("w", {p.m, p.c, 1, 1}, w);
        gb.Init("b", {p.m}, b);
        gb.InitInts("pads", {0, 0, t, l, 0, 0, bo, r});
        gb.Init("v", {}, {value});
        gb.Node("Conv", {"x", "w", "b"}, {"c"});
        gb.Node("Pad", {"c", "pads", "v"}, {"p"});
        auto* n = gb.Node(op, {"p"}, {"y"});
        GraphBuilder::Ints(n, "kernel_shape", {k, k});
        GraphBuilder::Ints(n, "strides", {s, s});
        gb.Output("y");
        auto out = RunOneDnn(gb.Save(dir), x);
        ASSERT_TRUE(out.ok()) << out.status().ToString();
        const std::int64_t qh = (ph - k) / s + 1, qw = (pw - k) / s + 1;
        std::vector<float> want;
        for (std::int64_t c = 0; c < p.m; ++c) {
            for (std::int64_t i = 0; i < qh; ++i) {
                for (std::int64_t j = 0; j < qw; ++j) {
                    double acc = op == "MaxPool" ? -1e30 : 0;
                    for (std::int64_t u = 0; u < k; ++u) {
                        for (std::int64_t v = 0; v < k; ++v) {
                            const std::int64_t yy = i * s + u - t, xx = j * s + v - l;
                            const bool inside = yy >= 0 && yy < oh && xx >= 0 && xx < ow;
                            const double val = inside ? y[(c * oh + yy) * ow + xx] : value;
                            acc = op == "MaxPool" ? std::max(acc, val) : acc + val;
                        }
                    }
                    want.push_back(static_cast<float>(op == "MaxPool" ? acc : acc / (k * k)));
                }
            }
        }
        ExpectNear((*out)[0], {1, p.m, qh, qw}, want);
    }
}

TEST(OneDnnOpsTest, GemmSoftmaxTransposeConcatResize) {
    // x[1,6,2,3] -> Transpose(0,2,3,1) -> Reshape[6,6] -> Gemm(transB) -> Softmax(axis 1)
    // and x -> Resize nearest x2 -> Concat with itself on channels: two outputs.
    fg::testing::TmpDir dir;
    GraphBuilder gb;
    const Shape in{1, 6, 2, 3};
    gb.Input("x", in);
    const auto w = Rand(5 * 6, 11), b = Rand(5, 12);
    gb.Init("w", {5, 6}, w);
    gb.Init("b", {5}, b);
    gb.InitInts("shape", {6, 6});
    gb.Init("scales", {4}, {1.f, 1.f, 2.f, 2.f});
    auto* t = gb.Node("Transpose", {"x"}, {"t"});
    GraphBuilder::Ints(t, "perm", {0, 2, 3, 1});
    gb.Node("Reshape", {"t", "shape"}, {"r"});
    auto* gemm = gb.Node("Gemm", {"r", "w", "b"}, {"g"});
    GraphBuilder::Int(gemm, "transB", 1);
    auto* sm = gb.Node("Softmax", {"g"}, {"p"});
    GraphBuilder::Int(sm, "axis", 1);
    auto* rs = gb.Node("Resize", {"x", "", "scales"}, {"u"});
    GraphBuilder::Str(rs, "mode", "nearest");
    GraphBuilder::Str(rs, "coordinate_transformation_mode", "asymmetric");
    GraphBuilder::Str(rs, "nearest_mode", "floor");
    auto* cat = gb.Node("Concat", {"u", "u"}, {"c"});
    GraphBuilder::Int(cat, "axis", 1);
    gb.Output("p", 2);
    gb.Output("c");
    Tensor x{in, Rand(Count(in), 13)};
    auto out = RunOneDnn(gb.Save(dir), x);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->size(), 2u);
    // Transposed row r = (h, w) position, column = channel.
    std::vector<float> want;
    for (int r = 0; r < 6; ++r) {
        std::vector<double> logits(5);
        double mx = -1e30;
        for (int o = 0; o < 5; ++o) {
            double acc = b[o];
            for (int c = 0; c < 6; ++c) acc += x.data[c * 6 + r] * w[o * 6 + c];
            logits[o] = acc;
            mx = std::max(mx, acc);
        }
        double sum = 0;
        for (auto& l : logits) sum += (l = std::exp(l - mx));
        for (auto l : logits) want.push_back(static_cast<float>(l / sum));
    }
    ExpectNear((*out)[0], {6, 5}, want);
    std::vector<float> up;
    for (int rep = 0; rep < 2; ++rep) {
        for (int c = 0; c < 6; ++c) {
            for (int i = 0; i < 4; ++i) {
                for (int j = 0; j < 6; ++j) up.push_back(x.data[(c * 2 + i / 2) * 3 + j / 2]);
            }
        }
    }
    ExpectNear((*out)[1], {1, 12, 4, 6}, up);
}

TEST(OneDnnOpsTest, UnsupportedOpIsNamedAndAutoFallsBack) {
    fg::testing::TmpDir dir;
    GraphBuilder gb;
    gb.Input("x", {1, 3, 4, 4});
    gb.Node("Erf", {"x"}, {"y"});
    gb.Output("y");
    const auto path = gb.Save(dir);
    Tensor x{{1, 3, 4, 4}, Rand(48, 14)};
    auto out = RunOneDnn(path, x);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(out.status().message().find("'Erf'"), std::string::npos) << out.status().ToString();
    // "auto" logs and falls back to OpenCV DNN for an op only OpenCV knows (LRN).
    fg::testing::TmpDir dir2;
    GraphBuilder lrn;
    lrn.Input("x", {1, 3, 4, 4});
    GraphBuilder::Int(lrn.Node("LRN", {"x"}, {"y"}), "size", 3);
    lrn.Output("y");
    auto autob = MakeBackend({.name = "auto", .threads = 1});
    ASSERT_TRUE(autob.ok());
    ModelSpec spec;
    spec.id = "lrn";
    spec.path = lrn.Save(dir2);
    auto model = (*autob)->Load(spec);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto session = (*model)->CreateSession();
    ASSERT_TRUE(session.ok());
    std::vector<TensorView> outs;
    EXPECT_TRUE((*session)->Run(std::vector<TensorView>{x.View()}, outs).ok());
}

TEST(OneDnnOpsTest, CorruptAndInconsistentFilesFailCleanly) {
    fg::testing::TmpDir dir;
    auto backend = MakeBackend({.name = "onednn", .threads = 1});
    ASSERT_TRUE(backend.ok());
    { std::ofstream(dir / "junk.onnx") << "this is not a protobuf at all \x01\x02\x03"; }
    ModelSpec spec;
    spec.id = "junk";
    spec.path = dir / "junk.onnx";
    auto junk = (*backend)->Load(spec);
    ASSERT_FALSE(junk.ok());
    EXPECT_EQ(junk.status().code(), StatusCode::kInvalidArgument) << junk.status().ToString();
    // An initialiser smaller than its dims.
    GraphBuilder gb;
    gb.Input("x", {1, 3, 4, 4});
    gb.Init("w", {4, 3, 3, 3}, Rand(10, 1));
    auto* conv = gb.Node("Conv", {"x", "w"}, {"y"});
    GraphBuilder::Ints(conv, "kernel_shape", {3, 3});
    gb.Output("y");
    spec.path = gb.Save(dir, "short.onnx");
    auto short_w = (*backend)->Load(spec);
    ASSERT_FALSE(short_w.ok());
    EXPECT_EQ(short_w.status().code(), StatusCode::kInvalidArgument) << short_w.status().ToString();
    // Channels that do not match the weights.
    GraphBuilder gb2;
    gb2.Input("x", {1, 5, 4, 4});
    gb2.Init("w", {4, 3, 3, 3}, Rand(108, 1));
    auto* conv2 = gb2.Node("Conv", {"x", "w"}, {"y"});
    GraphBuilder::Ints(conv2, "kernel_shape", {3, 3});
    gb2.Output("y");
    spec.path = gb2.Save(dir, "mismatch.onnx");
    auto mismatch = (*backend)->Load(spec);
    ASSERT_FALSE(mismatch.ok());
    EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument)
        << mismatch.status().ToString();
}

/// Loads `path` with `backend` and, when that works, runs it on `in`: the Status of whichever
/// failed first (never a crash: this runs under ASan too).
Status LoadAndRun(const std::string& backend, const std::filesystem::path& path, const Tensor& in) {
    FG_ASSIGN_OR_RETURN(auto b, MakeBackend({.name = backend, .threads = 1}));
    ModelSpec spec;
    spec.id = "test";
    spec.path = path;
    FG_ASSIGN_OR_RETURN(auto model, b->Load(spec));
    FG_ASSIGN_OR_RETURN(auto session, model->CreateSession());
    std::vector<TensorView> outs;
    return session->Run(std::vector<TensorView>{in.View()}, outs);
}

TEST(OneDnnOpsTest, InitialisersOfTheWrongSizeAreRefused) {
    fg::testing::TmpDir dir;
    const Tensor x{{1, 3, 4, 4}, Rand(48, 3)};
    struct Case {
        std::string name;
        std::function<void(GraphBuilder&)> build;
    };
    const std::vector<Case> cases = {
        {"conv bias of 3 for 4 channels",
         [](GraphBuilder& g) {
             g.Init("w", {4, 3, 1, 1}, Rand(12, 1));
             g.Init("b", {3}, Rand(3, 2));
             GraphBuilder::Ints(g.Node("Conv", {"x", "w", "b"}, {"y"}), "kernel_shape", {1, 1});
         }},
        {"conv bias of 5 for 4 channels, then a BatchNorm to fold",
         [](GraphBuilder& g) {
             g.Init("w", {4, 3, 1, 1}, Rand(12, 1));
             g.Init("b", {5}, Rand(5, 2));
             for (const char* k : {"s", "sh", "m"}) g.Init(k, {4}, Rand(4, 3));
             g.Init("v", {4}, std::vector<float>(4, 1.f));
             GraphBuilder::Ints(g.Node("Conv", {"x", "w", "b"}, {"c"}), "kernel_shape", {1, 1});
             g.Node("BatchNormalization", {"c", "s", "sh", "m", "v"}, {"y"});
         }},
        {"BatchNorm statistics of 2 for 3 channels",
         [](GraphBuilder& g) {
             for (const char* k : {"s", "sh", "m"}) g.Init(k, {2}, Rand(2, 3));
             g.Init("v", {2}, std::vector<float>(2, 1.f));
             g.Node("BatchNormalization", {"x", "s", "sh", "m", "v"}, {"y"});
         }},
        {"PRelu slope of 2 for 3 channels",
         [](GraphBuilder& g) {
             g.Init("a", {2, 1, 1}, Rand(2, 4));
             g.Node("PRelu", {"x", "a"}, {"y"});
         }},
        {"Gemm bias of 3 for 5 outputs",
         [](GraphBuilder& g) {
             g.Init("w", {48, 5}, Rand(240, 5));
             g.Init("b", {3}, Rand(3, 6));
             GraphBuilder::Int(g.Node("Flatten", {"x"}, {"f"}), "axis", 1);
             g.Node("Gemm", {"f", "w", "b"}, {"y"});
         }},
        {"Add of a constant that does not broadcast",
         [](GraphBuilder& g) {
             g.Init("c", {2, 4, 4}, Rand(32, 7));
             g.Node("Add", {"x", "c"}, {"y"});
         }},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        GraphBuilder g;
        g.Input("x", {1, 3, 4, 4});
        c.build(g);
        g.Output("y");
        const auto path = g.Save(dir, "bad.onnx");
        const Status st = LoadAndRun("onednn", path, x);
        EXPECT_FALSE(st.ok());
        EXPECT_TRUE(st.code() == StatusCode::kInvalidArgument ||
                    st.code() == StatusCode::kUnimplemented || st.code() == StatusCode::kInternal)
            << st.ToString();
        std::cout << "[ refused  ] " << c.name << ": " << st.ToString() << "\n";
    }
}

// Attributes from a malicious file: a zero stride divided by zero and `pads` of the wrong length
// (with auto_pad, which writes both halves) were written past a vector. Each is refused by name.
TEST(OneDnnOpsTest, MaliciousConvAndPoolAttributesAreRefused) {
    fg::testing::TmpDir dir;
    const Tensor x{{1, 3, 8, 8}, Rand(192, 3)};
    struct Case {
        std::string name;
        std::function<void(GraphBuilder&)> build;
    };
    auto conv = [](GraphBuilder& g) {
        g.Init("w", {4, 3, 3, 3}, Rand(108, 1));
        auto* n = g.Node("Conv", {"x", "w"}, {"y"});
        GraphBuilder::Ints(n, "kernel_shape", {3, 3});
        return n;
    };
    auto pool = [](GraphBuilder& g) {
        auto* n = g.Node("MaxPool", {"x"}, {"y"});
        GraphBuilder::Ints(n, "kernel_shape", {2, 2});
        return n;
    };
    const std::vector<Case> cases = {
        {"conv stride 0", [&](GraphBuilder& g) { GraphBuilder::Ints(conv(g), "strides", {0, 1}); }},
        {"conv stride 0 with SAME padding",
         [&](GraphBuilder& g) {
             auto* n = conv(g);
             GraphBuilder::Ints(n, "strides", {1, 0});
             GraphBuilder::Str(n, "auto_pad", "SAME_UPPER");
         }},
        {"conv dilation 0", [&](GraphBuilder& g) { GraphBuilder::Ints(conv(g), "dilations", {0, 1}); }},
        {"conv pads of 2 values with SAME padding",
         [&](GraphBuilder& g) {
             auto* n = conv(g);
             GraphBuilder::Ints(n, "pads", {1, 1});
             GraphBuilder::Str(n, "auto_pad", "SAME_LOWER");
         }},
        {"conv pads of 6 values", [&](GraphBuilder& g) { GraphBuilder::Ints(conv(g), "pads", {1, 1, 1, 1, 1, 1}); }},
        {"conv negative pads", [&](GraphBuilder& g) { GraphBuilder::Ints(conv(g), "pads", {-5, 0, 0, 0}); }},
        {"pool stride 0", [&](GraphBuilder& g) { GraphBuilder::Ints(pool(g), "strides", {0, 0}); }},
        {"pool strides of 1 value", [&](GraphBuilder& g) { GraphBuilder::Ints(pool(g), "strides", {2}); }},
        {"pool pads of 2 values with SAME padding",
         [&](GraphBuilder& g) {
             auto* n = pool(g);
             GraphBuilder::Ints(n, "pads", {0, 0});
             GraphBuilder::Str(n, "auto_pad", "SAME_UPPER");
         }},
        {"pool kernel 0",
         [&](GraphBuilder& g) {
             auto* n = g.Node("AveragePool", {"x"}, {"y"});
             GraphBuilder::Ints(n, "kernel_shape", {0, 2});
         }},
        {"pool kernel larger than the input",
         [&](GraphBuilder& g) {
             auto* n = g.Node("MaxPool", {"x"}, {"y"});
             GraphBuilder::Ints(n, "kernel_shape", {20, 20});
         }},
        // fg_fuzz_onnx: the product of a Reshape target overflowed int64 (UBSan).
        {"reshape target whose product overflows",
         [&](GraphBuilder& g) {
             g.InitInts("shape", {144115188075855871, 639, -1});
             g.Node("Reshape", {"x", "shape"}, {"y"});
         }},
        // fg_fuzz_onnx: a huge Resize scale converted to int64 with undefined behaviour.
        {"resize scale beyond any tensor",
         [&](GraphBuilder& g) {
             g.Init("roi", {0}, {});
             g.Init("scales", {4}, {1.f, 1.f, 1e35f, 1.f});
             auto* n = g.Node("Resize", {"x", "roi", "scales"}, {"y"});
             GraphBuilder::Str(n, "mode", "nearest");
         }},
        // fg_fuzz_onnx: a Resize to or from an empty dim divided by zero in the lowering.
        {"resize to an empty image",
         [&](GraphBuilder& g) {
             g.Init("roi", {0}, {});
             g.Init("scales", {4}, {1.f, 1.f, 0.1f, 1.f});
             auto* n = g.Node("Resize", {"x", "roi", "scales"}, {"y"});
             GraphBuilder::Str(n, "mode", "nearest");
         }},
        // fg_fuzz_onnx: a node without outputs was written past its (empty) output list.
        {"node without outputs",
         [&](GraphBuilder& g) {
             g.Node("Add", {"x", "x"}, {});
             g.Node("Relu", {"x"}, {"y"});
         }},
        // fg_fuzz_onnx: an empty run-time tensor (a Slice to nothing, then a Pad) divided by
        // zero inside oneDNN; every run-time output must have a positive size.
        {"slice to an empty tensor",
         [&](GraphBuilder& g) {
             g.InitInts("starts", {4});
             g.InitInts("ends", {4});
             g.InitInts("axes", {2});
             g.Node("Slice", {"x", "starts", "ends", "axes"}, {"y"});
         }},
        {"reshape target with a negative dim other than -1",
         [&](GraphBuilder& g) {
             g.InitInts("shape", {-2, -96});
             g.Node("Reshape", {"x", "shape"}, {"y"});
         }},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        GraphBuilder g;
        g.Input("x", {1, 3, 8, 8});
        c.build(g);
        g.Output("y");
        const Status st = LoadAndRun("onednn", g.Save(dir, "bad.onnx"), x);
        EXPECT_FALSE(st.ok());
        EXPECT_NE(st.code(), StatusCode::kOk);
        std::cout << "[ refused  ] " << c.name << ": " << st.ToString() << "\n";
    }
}

TEST(OneDnnOpsTest, DynamicShapesResolveAtRunOrFailClearly) {
    fg::testing::TmpDir dir;
    // Height and width symbolic: nothing is planned at load; each input shape is planned on
    // first use, so one model serves any frame size. (The batch stays capped at 1 unless the
    // spec asks for dynamic_batch.)
    GraphBuilder g;
    g.Input("x", {0, 3, 0, 0});
    g.Init("w", {4, 3, 3, 3}, Rand(108, 1));
    auto* conv = g.Node("Conv", {"x", "w"}, {"c"});
    GraphBuilder::Ints(conv, "kernel_shape", {3, 3});
    GraphBuilder::Ints(conv, "pads", {1, 1, 1, 1});
    g.Node("Relu", {"c"}, {"y"});
    g.Output("y");
    auto backend = MakeBackend({.name = "onednn", .threads = 1});
    ASSERT_TRUE(backend.ok());
    ModelSpec spec;
    spec.id = "dynamic";
    spec.path = g.Save(dir, "dynamic.onnx");
    auto model = (*backend)->Load(spec);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto session = (*model)->CreateSession();
    ASSERT_TRUE(session.ok());
    for (const Shape& shape : {Shape{1, 3, 5, 7}, Shape{1, 3, 1, 1}, Shape{1, 3, 5, 7}}) {
        const Tensor x{shape, Rand(Count(shape), 9)};
        std::vector<TensorView> outs;
        const Status st = (*session)->Run(std::vector<TensorView>{x.View()}, outs);
        ASSERT_TRUE(st.ok()) << st.ToString();
        EXPECT_EQ(outs[0].shape, (Shape{shape[0], 4, shape[2], shape[3]}));
    }
    // A fixed channel count still holds.
    const Tensor wrong{{1, 5, 4, 4}, Rand(80, 9)};
    std::vector<TensorView> outs;
    EXPECT_EQ((*session)->Run(std::vector<TensorView>{wrong.View()}, outs).code(),
              StatusCode::kInvalidArgument);

    // A Reshape whose target is computed from the data cannot be planned: a clear error at
    // load for a static input (or a dynamic batch only: batch 1 is planned at load), at the
    // first run when other dims are dynamic; never a crash.
    for (const Shape& declared : {Shape{1, 4, 2, 2}, Shape{0, 4, 2, 2}, Shape{1, 4, 0, 0}}) {
        GraphBuilder r;
        r.Input("x", declared);
        auto* mean = r.Node("ReduceMean", {"x"}, {"m"});
        GraphBuilder::Ints(mean, "axes", {2, 3});
        GraphBuilder::Int(mean, "keepdims", 0);
        GraphBuilder::Int(r.Node("Cast", {"m"}, {"s"}), "to", onnx::TensorProto::INT64);
        r.Node("Reshape", {"x", "s"}, {"y"});
        r.Output("y");
        const auto path = r.Save(dir, "computed_shape.onnx");
        const Tensor x{{1, 4, 2, 2}, Rand(16, 2)};
        const Status st = LoadAndRun("onednn", path, x);
        EXPECT_EQ(st.code(), StatusCode::kUnimplemented) << st.ToString();
        EXPECT_NE(st.message().find("run time"), std::string::npos) << st.ToString();
    }
}

TEST(OneDnnOpsTest, DamagedRealModelsNeverCrash) {
    // Flipped bytes in a real model, as BackendTest.CorruptedModelsNeverCrash does for OpenCV:
    // whatever the Status, Load and Run return one (under ASan: without touching bad memory).
    const auto path = fg::testing::ModelPath("fr_eye.onnx");
    FG_REQUIRE_PATH(path);
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    fg::testing::TmpDir dir;
    std::mt19937 rng(1234);
    int ran = 0;
    for (int trial = 0; trial < 40; ++trial) {
        std::string copy = bytes;
        const std::size_t span = trial % 2 ? copy.size() : std::min<std::size_t>(copy.size(), 4096);
        for (int k = 0; k < 4; ++k) copy[rng() % span] = static_cast<char>(rng());
        {
            std::ofstream out(dir / "damaged.onnx", std::ios::binary);
            out.write(copy.data(), static_cast<std::streamsize>(copy.size()));
        }
        const Tensor x{{1, 1, 24, 24}, Rand(576, trial)};
        for (const char* backend : {"onednn", "auto"}) {
            if (LoadAndRun(backend, dir / "damaged.onnx", x).ok()) ++ran;
        }
    }
    std::cout << "[ measured ] damaged fr_eye copies that still ran (onednn + auto): " << ran
              << "/80\n";
}

}   // namespace
}   // namespace fg::infer
