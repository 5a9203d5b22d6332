// SPDX-License-Identifier: Apache-2.0
#include "fg/infer/onnx_graph.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include <onnx/onnx_pb.h>

#include "onednn/graph.h"
#include "sha256.h"

namespace fg::infer {
namespace {

/// Bytes per element of a tensor stored in raw_data; 0 for types we do not size-check.
std::size_t ElementSize(int data_type) {
    switch (data_type) {
        case onnx::TensorProto::UINT8:
        case onnx::TensorProto::INT8:
        case onnx::TensorProto::BOOL: return 1;
        case onnx::TensorProto::UINT16:
        case onnx::TensorProto::INT16:
        case onnx::TensorProto::FLOAT16:
        case onnx::TensorProto::BFLOAT16: return 2;
        case onnx::TensorProto::FLOAT:
        case onnx::TensorProto::INT32:
        case onnx::TensorProto::UINT32: return 4;
        case onnx::TensorProto::INT64:
        case onnx::TensorProto::UINT64:
        case onnx::TensorProto::DOUBLE: return 8;
        default: return 0;
    }
}

/// Number of values held in the typed (non-raw) field that `data_type` uses.
std::int64_t TypedCount(const onnx::TensorProto& t) {
    switch (t.data_type()) {
        case onnx::TensorProto::FLOAT: return t.float_data_size();
        case onnx::TensorProto::INT64: return t.int64_data_size();
        case onnx::TensorProto::DOUBLE: return t.double_data_size();
        case onnx::TensorProto::UINT32:
        case onnx::TensorProto::UINT64: return t.uint64_data_size();
        default: return t.int32_data_size();
    }
}

/// Backends index weight buffers by the declared dims; a corrupt file whose dims promise more
/// data than it holds must be refused here rather than read out of bounds later.
Status CheckTensor(const onnx::TensorProto& t) {
    const std::string label = "tensor '" + t.name() + "'";
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
        return InvalidArgument(label + " uses external data, which is not supported");
    }
    if (t.data_type() == onnx::TensorProto::STRING ||
        t.data_type() == onnx::TensorProto::UNDEFINED) {
        return Status::Ok();
    }
    std::int64_t count = 1;
    for (auto d : t.dims()) {
        if (d < 0 || (d > 0 && count > std::numeric_limits<std::int64_t>::max() / d)) {
            return InvalidArgument(label + " has invalid dims");
        }
        count *= d;
    }
    if (t.has_raw_data()) {
        const std::uint64_t need = static_cast<std::uint64_t>(count) * ElementSize(t.data_type());
        if (need != 0 && t.raw_data().size() != need) {
            return InvalidArgument(label + " holds " + std::to_string(t.raw_data().size()) +
                                   " bytes, its dims need " + std::to_string(need));
        }
        return Status::Ok();
    }
    if (ElementSize(t.data_type()) != 0 && TypedCount(t) != count) {
        return InvalidArgument(label + " holds " + std::to_string(TypedCount(t)) +
                               " values, its dims need " + std::to_string(count));
    }
    return Status::Ok();
}

Status CheckTensors(const onnx::GraphProto& graph) {
    for (const auto& t : graph.initializer()) FG_RETURN_IF_ERROR(CheckTensor(t));
    for (const auto& n : graph.node()) {
        for (const auto& a : n.attribute()) {
            if (a.has_t()) FG_RETURN_IF_ERROR(CheckTensor(a.t()));
            for (const auto& t : a.tensors()) FG_RETURN_IF_ERROR(CheckTensor(t));
        }
    }
    return Status::Ok();
}

/// ONNX requires nodes in topological order, each input defined before use. OpenCV 4.6 crashes
/// on a dangling reference (e.g. one flipped byte in a weight name), so refuse it here.
Status CheckTopology(const onnx::GraphProto& graph) {
    std::unordered_set<std::string> defined;
    for (const auto& vi : graph.input()) defined.insert(vi.name());
    for (const auto& t : graph.initializer()) defined.insert(t.name());
    for (const auto& t : graph.sparse_initializer()) defined.insert(t.values().name());
    for (int i = 0; i < graph.node_size(); ++i) {
        const auto& n = graph.node(i);
        if (n.op_type().empty()) {
            return InvalidArgument("node " + std::to_string(i) + " has no op_type");
        }
        for (const auto& in : n.input()) {
            if (!in.empty() && !defined.contains(in)) {
                return InvalidArgument("node " + std::to_string(i) + " ('" + n.name() + "', " +
                                       n.op_type() + ") reads undefined tensor '" + in + "'");
            }
        }
        for (const auto& out : n.output()) {
            if (!out.empty()) defined.insert(out);
        }
    }
    for (const auto& out : graph.output()) {
        if (!defined.contains(out.name())) {
            return InvalidArgument("graph output '" + out.name() + "' is not produced by any node");
        }
    }
    return Status::Ok();
}

Result<onnx::ModelProto> ParseModel(const std::string& bytes) {
    if (bytes.empty()) return InvalidArgument("not an ONNX model: empty buffer");
    onnx::ModelProto model;
    try {
        if (!model.ParseFromString(bytes)) {
            return InvalidArgument(
                "not an ONNX model: protobuf parse failed (truncated or corrupt)");
        }
    } catch (const std::exception& e) {
        return InvalidArgument(std::string("not an ONNX model: ") + e.what());
    }
    // Protobuf is lenient: arbitrary bytes sometimes parse as a message made of unknown fields.
    // A usable model has an opset, a graph with nodes and at least one output.
    if (model.opset_import_size() == 0 || !model.has_graph() || model.graph().node_size() == 0 ||
        model.graph().output_size() == 0) {
        return InvalidArgument("not an ONNX model: no opset, graph nodes or graph outputs");
    }
    if (Status st = CheckTopology(model.graph()); !st.ok()) {
        return InvalidArgument("corrupt ONNX model: " + st.message());
    }
    if (Status st = CheckTensors(model.graph()); !st.ok()) {
        return InvalidArgument("corrupt ONNX model: " + st.message());
    }
    return model;
}

Result<std::string> Serialize(const onnx::ModelProto& model) {
    std::string out;
    if (!model.SerializeToString(&out)) {
        return Internal("cannot serialize the rewritten ONNX model");
    }
    // Re-parse so a rewrite can never hand an unreadable buffer to a backend.
    FG_RETURN_IF_ERROR(ParseModel(out).status());
    return out;
}

std::unordered_set<std::string> InitializerNames(const onnx::GraphProto& graph) {
    std::unordered_set<std::string> names;
    for (const auto& t : graph.initializer()) names.insert(t.name());
    for (const auto& t : graph.sparse_initializer()) names.insert(t.values().name());
    return names;
}

/// Indices into graph.input() of the real inputs (those not backed by an initialiser).
std::vector<int> RealInputIndices(const onnx::GraphProto& graph) {
    const auto inits = InitializerNames(graph);
    std::vector<int> idx;
    for (int i = 0; i < graph.input_size(); ++i) {
        if (!inits.contains(graph.input(i).name())) idx.push_back(i);
    }
    return idx;
}

std::vector<std::int64_t> ShapeOf(const onnx::ValueInfoProto& vi) {
    std::vector<std::int64_t> shape;
    if (!vi.type().has_tensor_type() || !vi.type().tensor_type().has_shape()) return shape;
    for (const auto& d : vi.type().tensor_type().shape().dim()) {
        // dim_value 0 is how some exporters spell "dynamic" (OpenCV calls it a 'zero' shape).
        shape.push_back(d.has_dim_value() && d.dim_value() > 0 ? d.dim_value() : -1);
    }
    return shape;
}

/// Drops recorded intermediate shapes and makes every output dim unknown. The output ranks stay:
/// OpenCV 4.6 asserts that each graph output has a shape, though it never reads the dims.
void ClearValueShapes(onnx::GraphProto& graph) {
    graph.clear_value_info();
    for (auto& out : *graph.mutable_output()) {
        if (!out.type().has_tensor_type() || !out.type().tensor_type().has_shape()) continue;
        for (auto& d : *out.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim()) {
            d.Clear();
        }
    }
}

/// Reads an INT64 tensor held in int64_data or raw_data (little-endian).
bool ReadInt64Tensor(const onnx::TensorProto& t, std::vector<std::int64_t>& values) {
    if (t.data_type() != onnx::TensorProto::INT64 ||
        (t.has_data_location() && t.data_location() == onnx::TensorProto::EXTERNAL)) {
        return false;
    }
    values.clear();
    if (t.has_raw_data()) {
        const std::string& raw = t.raw_data();
        if (raw.size() % sizeof(std::int64_t) != 0) return false;
        values.resize(raw.size() / sizeof(std::int64_t));
        std::memcpy(values.data(), raw.data(), raw.size());   // x86/ARM hosts are little-endian
    } else {
        values.assign(t.int64_data().begin(), t.int64_data().end());
    }
    return true;
}

void WriteInt64Tensor(onnx::TensorProto& t, const std::vector<std::int64_t>& values) {
    t.clear_raw_data();
    t.clear_int64_data();
    for (auto v : values) t.add_int64_data(v);
}

/// The constant tensor behind `name`: an initialiser or the output of a Constant node.
const onnx::TensorProto* FindConstant(const onnx::GraphProto& graph, const std::string& name) {
    for (const auto& t : graph.initializer()) {
        if (t.name() == name) return &t;
    }
    for (const auto& n : graph.node()) {
        if (n.op_type() != "Constant" || n.output_size() != 1 || n.output(0) != name) continue;
        for (const auto& a : n.attribute()) {
            if (a.name() == "value" && a.has_t()) return &a.t();
        }
    }
    return nullptr;
}

bool HasAllowZero(const onnx::NodeProto& node) {
    return std::any_of(node.attribute().begin(), node.attribute().end(),
                       [](const auto& a) { return a.name() == "allowzero" && a.i() != 0; });
}

/// Output shapes of a serialized model with every real input's batch set to `batch`, through the
/// oneDNN backend's own IR (BuildGraph validates every attribute it reads) rather than ONNX's
/// shape inference: libonnx 1.12's inference reads out of bounds on malformed attributes (found
/// by fuzzing: a Conv with auto_pad SAME_UPPER, no strides and a dim without a value crashes in
/// convPoolShapeInference), and this runs on untrusted files. nullopt when the graph does not
/// build (an op the IR lacks, dynamic dims besides the batch): the backends' own batch probes
/// at load time are then the only guard.
std::optional<std::vector<std::vector<std::int64_t>>> IrOutputShapes(const std::string& bytes,
                                                                     std::int64_t batch) {
    auto summary = SummarizeOnnx(bytes);
    if (!summary.ok()) return std::nullopt;
    std::vector<std::vector<std::int64_t>> shapes = summary->input_shapes;
    for (auto& shape : shapes) {
        if (shape.empty()) return std::nullopt;
        shape[0] = batch;
        for (auto d : shape) {
            if (d <= 0) return std::nullopt;
        }
    }
    try {
        auto source = onednn::OnnxSource::Parse(bytes);
        if (!source.ok()) return std::nullopt;
        auto graph = onednn::BuildGraph(**source, shapes);
        if (!graph.ok()) return std::nullopt;
        std::vector<std::vector<std::int64_t>> out;
        for (int v : graph->outputs) out.push_back(graph->values[static_cast<std::size_t>(v)].shape);
        return out;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}   // namespace

Result<OnnxGraphSummary> SummarizeOnnx(const std::string& bytes) {
    FG_ASSIGN_OR_RETURN(onnx::ModelProto model, ParseModel(bytes));
    const auto& graph = model.graph();
    OnnxGraphSummary s;
    for (int i : RealInputIndices(graph)) {
        s.input_names.push_back(graph.input(i).name());
        s.input_shapes.push_back(ShapeOf(graph.input(i)));
    }
    for (const auto& out : graph.output()) s.output_names.push_back(out.name());
    std::set<std::string> ops;
    for (const auto& n : graph.node()) ops.insert(n.op_type());
    s.op_types.assign(ops.begin(), ops.end());
    return s;
}

Result<std::string> FixOnnxInputShape(const std::string& bytes,
                                      const std::vector<std::int64_t>& shape, int index) {
    if (shape.empty()) return InvalidArgument("FixOnnxInputShape: empty shape");
    for (auto d : shape) {
        if (d <= 0) return InvalidArgument("FixOnnxInputShape: dims must be positive");
    }
    FG_ASSIGN_OR_RETURN(onnx::ModelProto model, ParseModel(bytes));
    auto* graph = model.mutable_graph();
    const auto real = RealInputIndices(*graph);
    if (index < 0 || index >= static_cast<int>(real.size())) {
        return InvalidArgument("FixOnnxInputShape: input index " + std::to_string(index) +
                               " out of range (graph has " + std::to_string(real.size()) +
                               " inputs)");
    }
    auto* input = graph->mutable_input(real[index]);
    const auto old = ShapeOf(*input);
    if (!old.empty() && old.size() != shape.size()) {
        return InvalidArgument("FixOnnxInputShape: input '" + input->name() + "' has rank " +
                               std::to_string(old.size()) + ", asked to fix to rank " +
                               std::to_string(shape.size()));
    }
    for (std::size_t i = 0; i < old.size(); ++i) {
        if (old[i] > 0 && old[i] != shape[i]) {
            return InvalidArgument("FixOnnxInputShape: input '" + input->name() + "' dim " +
                                   std::to_string(i) + " is fixed at " + std::to_string(old[i]) +
                                   ", cannot set " + std::to_string(shape[i]));
        }
    }
    auto* tensor_shape = input->mutable_type()->mutable_tensor_type()->mutable_shape();
    tensor_shape->clear_dim();
    for (auto d : shape) tensor_shape->add_dim()->set_dim_value(d);
    ClearValueShapes(*graph);
    return Serialize(model);
}

Result<std::string> MakeOnnxBatchDynamic(const std::string& bytes) {
    FG_ASSIGN_OR_RETURN(onnx::ModelProto model, ParseModel(bytes));
    auto* graph = model.mutable_graph();
    const auto real = RealInputIndices(*graph);
    if (real.empty()) return InvalidArgument("MakeOnnxBatchDynamic: graph has no inputs");
    for (int i : real) {
        auto* input = graph->mutable_input(i);
        if (!input->type().has_tensor_type() || !input->type().tensor_type().has_shape() ||
            input->type().tensor_type().shape().dim_size() == 0) {
            continue;   // unknown rank: already as free as it gets
        }
        auto* dim0 = input->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0);
        if (dim0->has_dim_value() && dim0->dim_value() > 1) {
            return Unimplemented("MakeOnnxBatchDynamic: input '" + input->name() +
                                 "' has a fixed batch of " + std::to_string(dim0->dim_value()));
        }
        dim0->set_dim_param("N");
    }

    // Constant Reshape targets [1, ...] pin the batch. Each rewritten target gets its own
    // initialiser so a constant shared with another consumer keeps its value there.
    std::unordered_map<std::string, std::string> rewritten;   // old constant -> new initialiser
    for (auto& node : *graph->mutable_node()) {
        if (node.op_type() != "Reshape" || node.input_size() < 2) continue;
        const std::string shape_name = node.input(1);
        if (auto it = rewritten.find(shape_name); it != rewritten.end()) {
            node.set_input(1, it->second);
            continue;
        }
        const onnx::TensorProto* constant = FindConstant(*graph, shape_name);
        if (constant == nullptr) continue;   // computed at run time (e.g. Shape->Gather->Concat)
        std::vector<std::int64_t> target;
        if (!ReadInt64Tensor(*constant, target) || target.empty() || target[0] != 1) continue;
        const bool has_infer = std::find(target.begin() + 1, target.end(), -1) != target.end();
        if (has_infer) {
            // Only one -1 is allowed; 0 copies the input's dim 0 (the batch) instead.
            if (HasAllowZero(node)) {
                return Unimplemented("MakeOnnxBatchDynamic: Reshape '" + node.name() +
                                     "' targets [1, ..., -1, ...] with allowzero=1");
            }
            target[0] = 0;
        } else {
            target[0] = -1;
        }
        onnx::TensorProto fresh = *constant;   // copy before add_initializer may reallocate
        std::string fresh_name = shape_name + "__fg_dynamic_batch";
        fresh.set_name(fresh_name);
        WriteInt64Tensor(fresh, target);
        *graph->add_initializer() = std::move(fresh);
        if (model.ir_version() < 4) {
            // Before IR 4 every initialiser must also be declared as a graph input.
            auto* vi = graph->add_input();
            vi->set_name(fresh_name);
            auto* tt = vi->mutable_type()->mutable_tensor_type();
            tt->set_elem_type(onnx::TensorProto::INT64);
            tt->mutable_shape()->add_dim()->set_dim_value(static_cast<std::int64_t>(target.size()));
        }
        rewritten.emplace(shape_name, fresh_name);
        node.set_input(1, fresh_name);
    }
    ClearValueShapes(*graph);
    FG_ASSIGN_OR_RETURN(std::string result, Serialize(model));

    // At a batch of 2 every output's leading dim must be 2. Anything else means a batch-1
    // assumption survived (Squeeze of axis 0, a Concat with a constant [1, ...], a Reshape
    // target computed at run time from constants, ...); a graph that builds for a batch of 1
    // but not of 2 is the same, named by the output that does not start with the batch.
    std::optional<std::vector<std::vector<std::int64_t>>> outs = IrOutputShapes(result, 2);
    std::int64_t want = 2;
    if (!outs) {
        outs = IrOutputShapes(result, 1);
        want = 1;
    }
    const std::size_t n_out = outs ? std::min<std::size_t>(outs->size(), graph->output_size()) : 0;
    for (std::size_t i = 0; i < n_out; ++i) {
        const auto& shape = (*outs)[i];
        if (shape.empty() || shape[0] != want) {
            return Unimplemented("MakeOnnxBatchDynamic: output '" +
                                 graph->output(static_cast<int>(i)).name() +
                                 "' keeps a fixed leading dim of " +
                                 (shape.empty() ? std::string("(scalar)") : std::to_string(shape[0])) +
                                 " after the rewrite");
        }
    }
    if (want == 1 && outs) {
        return Unimplemented("MakeOnnxBatchDynamic: the graph builds for a batch of 1 but not of 2");
    }
    return result;
}

Result<std::string> ReadFileBytes(const std::filesystem::path& path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) return NotFound("no such file: " + path.string());
    if (std::filesystem::is_directory(status)) {
        return InvalidArgument("is a directory, not a file: " + path.string());
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return FailedPrecondition("cannot open " + path.string());
    std::string bytes;
    try {
        in.seekg(0, std::ios::end);
        const auto size = in.tellg();
        if (size < 0) return FailedPrecondition("cannot read " + path.string());
        bytes.resize(static_cast<std::size_t>(size));
        in.seekg(0, std::ios::beg);
        in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!in) return FailedPrecondition("read error in " + path.string());
    } catch (const std::exception& e) {
        return ResourceExhausted("cannot read " + path.string() + ": " + e.what());
    }
    if (bytes.empty()) return InvalidArgument("empty file: " + path.string());
    return bytes;
}

namespace {

using EvpContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

Result<EvpContext> NewSha256() {
    EvpContext ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
        return Internal("OpenSSL: cannot initialise SHA-256");
    }
    return ctx;
}

Result<std::string> FinishHex(EVP_MD_CTX* ctx) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, digest.data(), &len) != 1) {
        return Internal("OpenSSL: SHA-256 final failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        hex.push_back(kHex[digest[i] >> 4]);
        hex.push_back(kHex[digest[i] & 0xF]);
    }
    return hex;
}

}   // namespace

Result<std::string> Sha256File(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        return NotFound("no such file: " + path.string());
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return FailedPrecondition("cannot open " + path.string());
    FG_ASSIGN_OR_RETURN(EvpContext ctx, NewSha256());
    std::vector<char> chunk(1 << 20);
    while (in) {
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        const auto got = in.gcount();
        if (got > 0 &&
            EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<std::size_t>(got)) != 1) {
            return Internal("OpenSSL: SHA-256 update failed for " + path.string());
        }
    }
    if (in.bad()) return FailedPrecondition("read error in " + path.string());
    return FinishHex(ctx.get());
}

namespace detail {

Result<std::string> Sha256Bytes(std::string_view bytes) {
    FG_ASSIGN_OR_RETURN(EvpContext ctx, NewSha256());
    if (EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1) {
        return Internal("OpenSSL: SHA-256 update failed");
    }
    return FinishHex(ctx.get());
}

}   // namespace detail

}   // namespace fg::infer
