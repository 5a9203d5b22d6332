// SPDX-License-Identifier: Apache-2.0
#include "opencv_backend.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "fg/base/log.h"
#include "fg/infer/onnx_graph.h"
#include "sha256.h"
#include "session_checks.h"

namespace fg::infer::detail {
namespace {

/// OpenCV exception texts span several lines and repeat the source location; the first line
/// that carries the reason is enough for a Status.
std::string CvReason(const cv::Exception& e) {
    std::string msg = e.err.empty() ? std::string(e.what()) : e.err;
    if (auto nl = msg.find('\n'); nl != std::string::npos) {
        // "in function 'handleNode'\n> Node [...] parse error: ..." keeps the node line.
        std::string rest = msg.substr(nl + 1);
        if (auto nl2 = rest.find('\n'); nl2 != std::string::npos) rest.resize(nl2);
        msg = msg.substr(0, nl) + (rest.empty() ? "" : " " + rest);
    }
    return msg;
}

Result<cv::dnn::Net> ReadNet(const std::string& bytes, const std::filesystem::path& path) {
    try {
        cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
        if (net.empty()) {
            return InvalidArgument("OpenCV DNN loaded an empty network from " + path.string());
        }
        net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        return net;
    } catch (const cv::Exception& e) {
        return InvalidArgument("OpenCV DNN cannot load " + path.string() + ": " + CvReason(e));
    } catch (const std::exception& e) {
        return InvalidArgument("OpenCV DNN cannot load " + path.string() + ": " + e.what());
    }
}

std::vector<std::int64_t> MatShape(const cv::Mat& m) {
    std::vector<std::int64_t> shape;
    for (int i = 0; i < m.dims; ++i) shape.push_back(m.size[i]);
    return shape;
}

/// One forward pass on zeros with the given input shapes; returns the output shapes.
Result<std::vector<std::vector<std::int64_t>>> ProbeShapes(
    cv::dnn::Net& net, const std::vector<std::string>& input_names,
    const std::vector<std::vector<std::int64_t>>& input_shapes,
    const std::vector<std::string>& output_names) {
    try {
        for (std::size_t i = 0; i < input_names.size(); ++i) {
            std::vector<int> sizes(input_shapes[i].begin(), input_shapes[i].end());
            net.setInput(
                cv::Mat(static_cast<int>(sizes.size()), sizes.data(), CV_32F, cv::Scalar(0)),
                input_names[i]);
        }
        std::vector<cv::Mat> outs;
        net.forward(outs, output_names);
        std::vector<std::vector<std::int64_t>> shapes;
        for (const auto& m : outs) shapes.push_back(MatShape(m));
        return shapes;
    } catch (const cv::Exception& e) {
        return Internal(CvReason(e));
    } catch (const std::exception& e) {
        return Internal(e.what());
    }
}

class OpenCvModel;

class OpenCvSession final : public Session {
  public:
    OpenCvSession(std::shared_ptr<const OpenCvModel> model, cv::dnn::Net net)
        : model_(std::move(model)), net_(std::move(net)) {}

    Status Run(std::span<const TensorView> inputs, std::vector<TensorView>& outputs) override;

  private:

    std::shared_ptr<const OpenCvModel> model_;   // keeps the names and bytes alive
    cv::dnn::Net net_;                           // not thread-safe: one per session
    std::vector<cv::Mat> outs_;                  // owns what the returned views point into
};

class OpenCvModel final : public Model, public std::enable_shared_from_this<OpenCvModel> {
  public:
    OpenCvModel(ModelInfo info, std::string bytes, std::vector<std::string> cv_outputs)
        : info_(std::move(info)), bytes_(std::move(bytes)), cv_outputs_(std::move(cv_outputs)) {}

    const ModelInfo& info() const override { return info_; }
    const std::vector<std::string>& cv_outputs() const { return cv_outputs_; }

    Result<std::unique_ptr<Session>> CreateSession() const override {
        FG_ASSIGN_OR_RETURN(cv::dnn::Net net, ReadNet(bytes_, info_.path));
        return std::unique_ptr<Session>(
            std::make_unique<OpenCvSession>(shared_from_this(), std::move(net)));
    }

  private:
    ModelInfo info_;
    std::string bytes_;                     // the (possibly rewritten) ONNX graph
    std::vector<std::string> cv_outputs_;   // OpenCV layer names, in ONNX output order
};

Status OpenCvSession::Run(std::span<const TensorView> inputs, std::vector<TensorView>& outputs) {
    const ModelInfo& info = model_->info();
    outputs.clear();
    FG_RETURN_IF_ERROR(CheckInputs(info, inputs));
    try {
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            std::vector<int> sizes(inputs[i].shape.begin(), inputs[i].shape.end());
            // A header over the caller's buffer: OpenCV only reads network inputs.
            cv::Mat blob(static_cast<int>(sizes.size()), sizes.data(), CV_32F,
                         const_cast<float*>(inputs[i].data));
            net_.setInput(blob, info.input_names[i]);
        }
        net_.forward(outs_, model_->cv_outputs());
    } catch (const cv::Exception& e) {
        return InvalidArgument("OpenCV DNN forward failed for model '" + info.id +
                               "': " + CvReason(e));
    } catch (const std::exception& e) {
        return Internal("OpenCV DNN forward failed for model '" + info.id + "': " + e.what());
    }
    if (outs_.size() != info.output_names.size()) {
        return Internal("model '" + info.id + "': OpenCV returned " + std::to_string(outs_.size()) +
                        " outputs, expected " + std::to_string(info.output_names.size()));
    }
    outputs.reserve(outs_.size());
    for (std::size_t i = 0; i < outs_.size(); ++i) {
        cv::Mat& m = outs_[i];
        if (m.type() != CV_32F) m.convertTo(m, CV_32F);
        if (!m.isContinuous()) m = m.clone();
        outputs.push_back({info.output_names[i], MatShape(m), m.ptr<float>()});
    }
    return Status::Ok();
}

/// Maps each ONNX graph output to the OpenCV layer that produces it. OpenCV 4.6 names the layer
/// of a graph output after the output tensor; its own listing is sorted, not in graph order.
Result<std::vector<std::string>> MapOutputs(cv::dnn::Net& net, const OnnxGraphSummary& summary,
                                            const std::filesystem::path& path) try {
    const std::vector<std::string> unconnected = net.getUnconnectedOutLayersNames();
    std::set<std::string> left(unconnected.begin(), unconnected.end());
    std::vector<std::string> mapped(summary.output_names.size());
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < summary.output_names.size(); ++i) {
        const std::string& name = summary.output_names[i];
        if (left.erase(name) > 0 || net.getLayerId(name) >= 0) {
            mapped[i] = name;
        } else {
            missing.push_back(i);
        }
    }
    // One output OpenCV renamed and one unclaimed layer left: the pairing is unambiguous.
    if (missing.size() == 1 && left.size() == 1) {
        mapped[missing[0]] = *left.begin();
        missing.clear();
    }
    if (!missing.empty()) {
        return InvalidArgument("OpenCV DNN does not expose ONNX output '" +
                               summary.output_names[missing[0]] + "' of " + path.string());
    }
    return mapped;
} catch (const cv::Exception& e) {
    return InvalidArgument("OpenCV DNN cannot list the outputs of " + path.string() + ": " +
                           CvReason(e));
}

class OpenCvBackend final : public Backend {
  public:
    std::string_view name() const override { return "opencv"; }
    Result<std::shared_ptr<const Model>> Load(const ModelSpec& spec) const override;
};

Result<std::shared_ptr<const Model>> OpenCvBackend::Load(const ModelSpec& spec) const {
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
    FG_ASSIGN_OR_RETURN(cv::dnn::Net net, ReadNet(bytes, path));
    FG_ASSIGN_OR_RETURN(std::vector<std::string> cv_outputs, MapOutputs(net, summary, path));

    if (spec.dynamic_batch) {
        // The rewrite is only trusted once a batch of 2 comes out as a batch of 2 with the same
        // per-item shape as batch 1: OpenCV silently mis-shapes a graph with a leftover [1, ...].
        auto try_batch = [&]() -> Result<std::string> {
            FG_ASSIGN_OR_RETURN(std::string rewritten, MakeOnnxBatchDynamic(bytes));
            FG_ASSIGN_OR_RETURN(OnnxGraphSummary s, SummarizeOnnx(rewritten));
            FG_ASSIGN_OR_RETURN(cv::dnn::Net probe, ReadNet(rewritten, path));
            FG_ASSIGN_OR_RETURN(auto names, MapOutputs(probe, s, path));
            auto shapes1 = summary.input_shapes;
            for (auto& shape : shapes1) {
                if (shape.empty()) return Unimplemented("an input has unknown rank");
                shape[0] = 1;
                for (auto d : shape) {
                    if (d <= 0) return Unimplemented("an input has dynamic dims besides the batch");
                }
            }
            auto shapes2 = shapes1;
            for (auto& shape : shapes2) shape[0] = 2;
            FG_ASSIGN_OR_RETURN(auto out1, ProbeShapes(probe, s.input_names, shapes1, names));
            FG_ASSIGN_OR_RETURN(auto out2, ProbeShapes(probe, s.input_names, shapes2, names));
            for (std::size_t i = 0; i < out1.size(); ++i) {
                auto a = out1[i];
                auto b = out2[i];
                if (a.empty() || b.empty() || a[0] != 1 || b[0] != 2 ||
                    !std::equal(a.begin() + 1, a.end(), b.begin() + 1, b.end())) {
                    return Unimplemented("output '" + s.output_names[i] + "' has shape " +
                                         ShapeString(b) +
                                         " for a batch of 2 (batch 1: " + ShapeString(a) + ")");
                }
            }
            net = std::move(probe);
            cv_outputs = std::move(names);
            summary = std::move(s);
            return rewritten;
        };
        auto rewritten = try_batch();
        if (rewritten.ok()) {
            bytes = std::move(rewritten).value();
            info.max_batch = 0;
        } else {
            spdlog::warn("{}: batch rewrite of {} not usable, running one item at a time: {}",
                         label, path.string(), rewritten.status().ToString());
        }
    }
    info.input_names = summary.input_names;
    info.input_shapes = summary.input_shapes;
    info.output_names = summary.output_names;
    spdlog::debug("{}: loaded {} ({} inputs, {} outputs, max_batch {})", label, path.string(),
                  info.input_names.size(), info.output_names.size(), info.max_batch);
    return std::shared_ptr<const Model>(
        std::make_shared<OpenCvModel>(std::move(info), std::move(bytes), std::move(cv_outputs)));
}

}   // namespace

std::shared_ptr<Backend> MakeOpenCvBackend(const BackendConfig& config) {
    if (config.threads > 0) cv::setNumThreads(config.threads);
    return std::make_shared<OpenCvBackend>();
}

}   // namespace fg::infer::detail
