// SPDX-License-Identifier: Apache-2.0
#include "fg/infer/onnx_graph.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "fg/testing/testing.h"

namespace fg::infer {
namespace {

using fg::testing::ModelPath;

void AddTensorValue(onnx::ValueInfoProto* vi, const std::string& name,
                    const std::vector<std::int64_t>& dims) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
}

/// x [1,2,2] -> Reshape(x, const [1,4]) -> Relu -> y [1,4]; the weight-like initialiser `w` is
/// also listed as a graph input, as old exporters do.
onnx::ModelProto TinyReshapeModel(bool constant_node) {
    onnx::ModelProto m;
    m.set_ir_version(7);
    m.add_opset_import()->set_version(13);
    auto* g = m.mutable_graph();
    g->set_name("tiny");
    AddTensorValue(g->add_input(), "x", {1, 2, 2});
    AddTensorValue(g->add_input(), "w", {4});
    auto* w = g->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(4);
    for (int i = 0; i < 4; ++i) w->add_float_data(1.0f);

    onnx::TensorProto shape;
    shape.set_name("shape");
    shape.set_data_type(onnx::TensorProto::INT64);
    shape.add_dims(2);
    shape.add_int64_data(1);
    shape.add_int64_data(4);
    if (constant_node) {
        auto* c = g->add_node();
        c->set_op_type("Constant");
        c->add_output("shape");
        auto* a = c->add_attribute();
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        *a->mutable_t() = shape;
    } else {
        *g->add_initializer() = shape;
    }
    auto* r = g->add_node();
    r->set_op_type("Reshape");
    r->set_name("reshape");
    r->add_input("x");
    r->add_input("shape");
    r->add_output("r");
    auto* add = g->add_node();
    add->set_op_type("Add");
    add->add_input("r");
    add->add_input("w");
    add->add_output("y");
    AddTensorValue(g->add_output(), "y", {1, 4});
    AddTensorValue(g->add_value_info(), "r", {1, 4});
    return m;
}

std::string Bytes(const onnx::ModelProto& m) {
    std::string s;
    EXPECT_TRUE(m.SerializeToString(&s));
    return s;
}

onnx::ModelProto Parse(const std::string& bytes) {
    onnx::ModelProto m;
    EXPECT_TRUE(m.ParseFromString(bytes));
    return m;
}

std::vector<std::int64_t> ReshapeTarget(const onnx::ModelProto& m) {
    for (const auto& n : m.graph().node()) {
        if (n.op_type() != "Reshape") continue;
        for (const auto& t : m.graph().initializer()) {
            if (t.name() == n.input(1)) return {t.int64_data().begin(), t.int64_data().end()};
        }
    }
    return {};
}

TEST(OnnxGraphTest, SummaryExcludesInitialisers) {
    auto s = SummarizeOnnx(Bytes(TinyReshapeModel(false)));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->input_names, std::vector<std::string>{"x"});
    EXPECT_EQ(s->input_shapes, (std::vector<std::vector<std::int64_t>>{{1, 2, 2}}));
    EXPECT_EQ(s->output_names, std::vector<std::string>{"y"});
    EXPECT_EQ(s->op_types, (std::vector<std::string>{"Add", "Reshape"}));
}

TEST(OnnxGraphTest, SymbolicAndZeroDimsAreDynamic) {
    auto m = TinyReshapeModel(false);
    auto* dims =
        m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
    dims->mutable_dim(0)->set_dim_param("batch");
    dims->mutable_dim(1)->set_dim_value(0);
    auto s = SummarizeOnnx(Bytes(m));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->input_shapes[0], (std::vector<std::int64_t>{-1, -1, 2}));
}

TEST(OnnxGraphTest, RejectsBytesThatAreNotAModel) {
    EXPECT_EQ(SummarizeOnnx("").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(SummarizeOnnx("hello, this is a text file\nwith two lines\n").status().code(),
              StatusCode::kInvalidArgument);
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
        std::string junk(1 + rng() % 4096, '\0');
        for (auto& c : junk) c = static_cast<char>(rng());
        auto s = SummarizeOnnx(junk);
        EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << "trial " << trial;
    }
    // A model without nodes is not usable either.
    onnx::ModelProto empty;
    empty.set_ir_version(7);
    empty.add_opset_import()->set_version(13);
    EXPECT_EQ(SummarizeOnnx(Bytes(empty)).status().code(), StatusCode::kInvalidArgument);
}

TEST(OnnxGraphTest, RejectsTensorsSmallerThanTheirDims) {
    auto raw = TinyReshapeModel(false);
    raw.mutable_graph()->mutable_initializer(0)->set_dims(0, 4000);   // w holds 4 floats
    auto s = SummarizeOnnx(Bytes(raw));
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("'w'"), std::string::npos) << s.status().message();

    auto packed = TinyReshapeModel(false);
    auto* w = packed.mutable_graph()->mutable_initializer(0);
    w->clear_float_data();
    w->set_raw_data(std::string(12, '\0'));   // 3 floats for dims [4]
    EXPECT_EQ(SummarizeOnnx(Bytes(packed)).status().code(), StatusCode::kInvalidArgument);

    auto external = TinyReshapeModel(false);
    external.mutable_graph()->mutable_initializer(0)->set_data_location(
        onnx::TensorProto::EXTERNAL);
    EXPECT_EQ(SummarizeOnnx(Bytes(external)).status().code(), StatusCode::kInvalidArgument);
}

TEST(OnnxGraphTest, RejectsTruncatedRealModels) {
    const auto path = ModelPath("fr_detect.onnx");
    FG_REQUIRE_PATH(path);
    auto bytes = ReadFileBytes(path);
    ASSERT_TRUE(bytes.ok());
    for (std::size_t cut : {bytes->size() / 2, bytes->size() - 1, std::size_t{100}}) {
        auto s = SummarizeOnnx(bytes->substr(0, cut));
        EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << "cut at " << cut;
    }
}

TEST(OnnxGraphTest, SummarizesFrDetect) {
    const auto path = ModelPath("fr_detect.onnx");
    FG_REQUIRE_PATH(path);
    auto bytes = ReadFileBytes(path);
    ASSERT_TRUE(bytes.ok());
    auto s = SummarizeOnnx(*bytes);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->input_names, std::vector<std::string>{"input"});
    EXPECT_EQ(s->input_shapes[0], (std::vector<std::int64_t>{1, 3, 240, 320}));
    EXPECT_EQ(s->output_names, (std::vector<std::string>{"scores", "boxes"}));
    EXPECT_TRUE(std::is_sorted(s->op_types.begin(), s->op_types.end()));
    EXPECT_NE(std::find(s->op_types.begin(), s->op_types.end(), "Conv"), s->op_types.end());
}

TEST(OnnxGraphTest, FixInputShapeOnTinyModel) {
    auto m = TinyReshapeModel(false);
    m.mutable_graph()
        ->mutable_input(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->mutable_shape()
        ->mutable_dim(2)
        ->set_dim_param("w");
    auto fixed = FixOnnxInputShape(Bytes(m), {1, 2, 2});
    ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
    auto out = Parse(*fixed);
    EXPECT_EQ(out.graph().value_info_size(), 0);
    const auto& out_shape = out.graph().output(0).type().tensor_type().shape();
    ASSERT_EQ(out_shape.dim_size(), 2);
    for (const auto& d : out_shape.dim()) EXPECT_FALSE(d.has_dim_value() || d.has_dim_param());
    auto s = SummarizeOnnx(*fixed);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->input_shapes[0], (std::vector<std::int64_t>{1, 2, 2}));
}

TEST(OnnxGraphTest, FixInputShapeErrors) {
    const std::string bytes = Bytes(TinyReshapeModel(false));
    EXPECT_EQ(FixOnnxInputShape(bytes, {}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(FixOnnxInputShape(bytes, {1, 0, 2}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(FixOnnxInputShape(bytes, {1, 4}).status().code(),
              StatusCode::kInvalidArgument);   // rank
    EXPECT_EQ(FixOnnxInputShape(bytes, {1, 2, 3}).status().code(),
              StatusCode::kInvalidArgument);   // fixed dim
    // Index 1 would be the initialiser `w`, which is not a real input.
    EXPECT_EQ(FixOnnxInputShape(bytes, {4}, 1).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(FixOnnxInputShape("junk", {1, 2, 2}).status().code(), StatusCode::kInvalidArgument);
}

TEST(OnnxGraphTest, BatchDynamicRewritesInitialiserAndConstantTargets) {
    for (bool constant_node : {false, true}) {
        SCOPED_TRACE(constant_node ? "Constant node" : "initialiser");
        auto rewritten = MakeOnnxBatchDynamic(Bytes(TinyReshapeModel(constant_node)));
        ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
        auto m = Parse(*rewritten);
        const auto& dim0 = m.graph().input(0).type().tensor_type().shape().dim(0);
        EXPECT_EQ(dim0.dim_param(), "N");
        EXPECT_EQ(ReshapeTarget(m), (std::vector<std::int64_t>{-1, 4}));
        EXPECT_EQ(m.graph().value_info_size(), 0);
        auto s = SummarizeOnnx(*rewritten);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->input_names, std::vector<std::string>{"x"});
        EXPECT_EQ(s->input_shapes[0], (std::vector<std::int64_t>{-1, 2, 2}));
    }
}

TEST(OnnxGraphTest, BatchDynamicUsesZeroWhenTargetAlreadyInfers) {
    auto m = TinyReshapeModel(false);
    for (auto& t : *m.mutable_graph()->mutable_initializer()) {
        if (t.name() == "shape") t.set_int64_data(1, -1);
    }
    auto rewritten = MakeOnnxBatchDynamic(Bytes(m));
    ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
    EXPECT_EQ(ReshapeTarget(Parse(*rewritten)), (std::vector<std::int64_t>{0, -1}));
}

TEST(OnnxGraphTest, BatchDynamicReportsAssumptionsItCannotRemove) {
    // x [1,4] -> Squeeze(axis 0) -> y [4]: the batch is squeezed away.
    onnx::ModelProto m;
    m.set_ir_version(7);
    m.add_opset_import()->set_version(11);
    auto* g = m.mutable_graph();
    AddTensorValue(g->add_input(), "x", {1, 4});
    auto* n = g->add_node();
    n->set_op_type("Squeeze");
    n->add_input("x");
    n->add_output("y");
    auto* axes = n->add_attribute();
    axes->set_name("axes");
    axes->set_type(onnx::AttributeProto::INTS);
    axes->add_ints(0);
    AddTensorValue(g->add_output(), "y", {4});
    auto r = MakeOnnxBatchDynamic(Bytes(m));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(r.status().message().find("'y'"), std::string::npos) << r.status().message();
}

TEST(OnnxGraphTest, BatchDynamicOnRealEmbedders) {
    for (auto [name, shared, reshape_target] :
         // Both flatten with a [1, -1] target; the batch becomes 0 ("copy the input's dim").
         {std::tuple{"fr_feature.onnx", false, std::vector<std::int64_t>{0, -1}},
          std::tuple{"mobilefacenet_128d.onnx", true, std::vector<std::int64_t>{0, -1}}}) {
        SCOPED_TRACE(name);
        const auto path = ModelPath(name, shared);
        FG_REQUIRE_PATH(path);
        auto bytes = ReadFileBytes(path);
        ASSERT_TRUE(bytes.ok());
        auto rewritten = MakeOnnxBatchDynamic(*bytes);
        ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
        EXPECT_EQ(ReshapeTarget(Parse(*rewritten)), reshape_target);
        auto s = SummarizeOnnx(*rewritten);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->input_shapes[0], (std::vector<std::int64_t>{-1, 3, 112, 112}));
    }
}

TEST(OnnxGraphTest, FixDynamicScrfdInput) {
    const auto path = ModelPath("scrfd_500m_dynamic_insightface.onnx", true);
    FG_REQUIRE_PATH(path);
    auto bytes = ReadFileBytes(path);
    ASSERT_TRUE(bytes.ok());
    auto before = SummarizeOnnx(*bytes);
    ASSERT_TRUE(before.ok());
    EXPECT_EQ(before->input_names, std::vector<std::string>{"input.1"});
    EXPECT_EQ(before->input_shapes[0], (std::vector<std::int64_t>{1, 3, -1, -1}));
    auto fixed = FixOnnxInputShape(*bytes, {1, 3, 640, 640});
    ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
    auto after = SummarizeOnnx(*fixed);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->input_shapes[0], (std::vector<std::int64_t>{1, 3, 640, 640}));
    EXPECT_EQ(after->output_names, before->output_names);
    EXPECT_EQ(Parse(*fixed).graph().value_info_size(), 0);
}

TEST(OnnxGraphTest, ReadFileBytesErrors) {
    fg::testing::TmpDir tmp;
    EXPECT_EQ(ReadFileBytes(tmp / "missing").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(ReadFileBytes(tmp.path()).status().code(), StatusCode::kInvalidArgument);
    std::ofstream(tmp / "empty").close();
    EXPECT_EQ(ReadFileBytes(tmp / "empty").status().code(), StatusCode::kInvalidArgument);
    std::ofstream(tmp / "abc") << "abc";
    auto abc = ReadFileBytes(tmp / "abc");
    ASSERT_TRUE(abc.ok());
    EXPECT_EQ(*abc, "abc");
}

TEST(OnnxGraphTest, Sha256) {
    fg::testing::TmpDir tmp;
    std::ofstream(tmp / "abc") << "abc";
    auto h = Sha256File(tmp / "abc");
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(*h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    std::ofstream(tmp / "empty").close();
    EXPECT_EQ(*Sha256File(tmp / "empty"),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(Sha256File(tmp / "missing").status().code(), StatusCode::kNotFound);

    // Larger than one read chunk.
    std::string big(3 * (1 << 20) + 17, 'x');
    std::ofstream(tmp / "big", std::ios::binary) << big;
    auto hb = Sha256File(tmp / "big");
    ASSERT_TRUE(hb.ok());
    EXPECT_EQ(*hb, "6f82050b9ee115847382cbdec71f9269e2f842af979d1af5de548c572436c5de");

    const auto path = ModelPath("fr_eye.onnx");
    FG_REQUIRE_PATH(path);
    EXPECT_EQ(*Sha256File(path),
              "1afcea006abc1ccac3c517022abde0aa092bed74ff3c9fe6878483ef9e6e38de");
}

TEST(OnnxGraphTest, BatchDynamicSurvivesMalformedConvFoundByFuzzing) {
    // fg_fuzz_onnx: a Conv with auto_pad SAME_UPPER, no strides and no kernel_shape, over an
    // input whose last dim has neither a value nor a name, crashed libonnx 1.12's shape
    // inference (convPoolShapeInference) inside MakeOnnxBatchDynamic. It must come back as a
    // result (the rewrite, or an error), never a crash.
    onnx::ModelProto m;
    m.set_ir_version(7);
    m.add_opset_import()->set_version(11);
    auto* g = m.mutable_graph();
    auto* x = g->add_input();
    AddTensorValue(x, "x", {1, 2, 6});
    x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim();  // no value, no name
    auto* w = g->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : {2, 1, 3, 3}) w->add_dims(d);
    for (int i = 0; i < 18; ++i) w->add_float_data(0.5f);
    auto* n = g->add_node();
    n->set_op_type("Conv");
    n->add_input("x");
    n->add_input("w");
    n->add_output("y");
    auto* group = n->add_attribute();
    group->set_name("group");
    group->set_type(onnx::AttributeProto::INT);
    group->set_i(2);
    auto* pad = n->add_attribute();
    pad->set_name("auto_pad");
    pad->set_type(onnx::AttributeProto::STRING);
    pad->set_s("SAME_UPPER");
    auto* y = g->add_output();
    y->set_name("y");
    y->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    auto r = MakeOnnxBatchDynamic(Bytes(m));
    if (r.ok()) {
        EXPECT_TRUE(SummarizeOnnx(*r).ok());
    }
}

TEST(OnnxGraphTest, HugeDimsOfAnUncheckedTensorTypeAreRefusedNotOverflowed) {
    // fg_fuzz_onnx: a string-typed initialiser (whose size SummarizeOnnx does not check) with
    // dims whose product overflows int64 overflowed in the oneDNN IR's constant reader (UBSan,
    // under the asan preset); it is an error now.
    auto m = TinyReshapeModel(false);
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("big");
    t->set_data_type(onnx::TensorProto::STRING);
    t->add_dims(1679587377584688000);
    t->add_dims(97);
    auto r = MakeOnnxBatchDynamic(Bytes(m));
    if (r.ok()) {
        EXPECT_TRUE(SummarizeOnnx(*r).ok());
    }
}

}   // namespace
}   // namespace fg::infer
