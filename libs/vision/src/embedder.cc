// SPDX-License-Identifier: Apache-2.0
#include "fg/vision/embedder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <opencv2/core.hpp>

#include "preprocess.h"

namespace fg::vision {

namespace {

/// Batches aligned crops through an ArcFace-style model. One per thread.
class ArcFaceEmbedder final : public Embedder {
  public:
    ArcFaceEmbedder(infer::InputFormat input, EmbedderInfo info, EmbedderConfig config,
                    std::unique_ptr<infer::Session> session)
        : input_format_(std::move(input)), info_(std::move(info)), config_(config), session_(std::move(session)) {}

    Status Embed(std::span<const cv::Mat> faces, std::vector<Embedding>& out) override {
        out.clear();
        out.reserve(faces.size());
        for (const cv::Mat& f : faces) {
            if (f.empty() || f.type() != CV_8UC3 || f.cols != info_.input_size || f.rows != info_.input_size) {
                return InvalidArgument("embedder " + info_.model_id + " expects " +
                                       std::to_string(info_.input_size) + "x" +
                                       std::to_string(info_.input_size) + " BGR8 aligned faces");
            }
        }
        // A flipped copy doubles the images per pass; keep the pass within the model's limit.
        const int copies = config_.flip_fusion ? 2 : 1;
        int per_pass = std::max(1, config_.max_batch);
        if (info_.max_batch > 0) per_pass = std::min(per_pass, std::max(1, info_.max_batch / copies));
        for (size_t start = 0; start < faces.size(); start += per_pass) {
            const size_t n = std::min(faces.size() - start, static_cast<size_t>(per_pass));
            FG_RETURN_IF_ERROR(RunBatch(faces.subspan(start, n), copies, out));
        }
        return Status::Ok();
    }

    const EmbedderInfo& info() const override { return info_; }

  private:
    Status RunBatch(std::span<const cv::Mat> faces, int copies, std::vector<Embedding>& out) {
        const int n = static_cast<int>(faces.size());
        const int c = detail::Channels(input_format_);
        const int s = info_.input_size;
        const size_t plane = static_cast<size_t>(c) * s * s;
        const bool one_by_one = info_.max_batch == 1;
        const int batch = one_by_one ? 1 : n * copies;
        input_.resize(plane * (one_by_one ? 1 : batch));
        sums_.assign(static_cast<size_t>(n) * info_.dim, 0.f);

        auto accumulate = [&](const infer::TensorView& t, int first_face, int count) -> Status {
            if (t.numel() != static_cast<std::int64_t>(count) * info_.dim) {
                return Internal("embedder " + info_.model_id + " returned " + std::to_string(t.numel()) +
                                " values for " + std::to_string(count) + " faces of dim " +
                                std::to_string(info_.dim));
            }
            for (int i = 0; i < count; ++i) {
                float* dst = sums_.data() + static_cast<size_t>((first_face + i) % n) * info_.dim;
                const float* src = t.data + static_cast<size_t>(i) * info_.dim;
                for (int d = 0; d < info_.dim; ++d) dst[d] += src[d];
            }
            return Status::Ok();
        };

        // Image k of the batch: face k % n, flipped when k >= n.
        auto fill = [&](int k, float* dst) {
            const cv::Mat& f = faces[k % n];
            if (k >= n) {
                cv::flip(f, flipped_, 1);
                detail::ToTensor(flipped_, input_format_, dst);
            } else {
                detail::ToTensor(f, input_format_, dst);
            }
        };

        const std::int64_t shape_c = c;
        if (one_by_one) {
            for (int k = 0; k < n * copies; ++k) {
                fill(k, input_.data());
                infer::TensorView in{"", {1, shape_c, s, s}, input_.data()};
                FG_RETURN_IF_ERROR(session_->Run({&in, 1}, outputs_).WithContext(info_.model_id));
                FG_RETURN_IF_ERROR(accumulate(outputs_.at(0), k, 1));
            }
        } else {
            for (int k = 0; k < batch; ++k) fill(k, input_.data() + plane * k);
            infer::TensorView in{"", {batch, shape_c, s, s}, input_.data()};
            FG_RETURN_IF_ERROR(session_->Run({&in, 1}, outputs_).WithContext(info_.model_id));
            FG_RETURN_IF_ERROR(accumulate(outputs_.at(0), 0, batch));
        }
        for (int i = 0; i < n; ++i) {
            float* v = sums_.data() + static_cast<size_t>(i) * info_.dim;
            L2Normalize(std::span<float>(v, static_cast<std::size_t>(info_.dim)));
            out.push_back(Embedding{info_.model_id, std::vector<float>(v, v + info_.dim)});
        }
        return Status::Ok();
    }

    infer::InputFormat input_format_;  // copied: an Embedder may outlive its EmbedderModel
    EmbedderInfo info_;
    EmbedderConfig config_;
    std::unique_ptr<infer::Session> session_;
    std::vector<float> input_;
    std::vector<float> sums_;
    std::vector<infer::TensorView> outputs_;
    cv::Mat flipped_;
};

class ArcFaceEmbedderModel final : public EmbedderModel {
  public:
    ArcFaceEmbedderModel(infer::PackModel entry, std::shared_ptr<const infer::Model> model, EmbedderInfo info)
        : entry_(std::move(entry)), model_(std::move(model)), info_(std::move(info)) {}

    Result<std::unique_ptr<Embedder>> CreateEmbedder(const EmbedderConfig& config) const override {
        if (config.max_batch < 1) return InvalidArgument("embedder max_batch must be >= 1");
        FG_ASSIGN_OR_RETURN(auto session, model_->CreateSession());
        return std::unique_ptr<Embedder>(
            std::make_unique<ArcFaceEmbedder>(entry_.input, info_, config, std::move(session)));
    }
    const EmbedderInfo& info() const override { return info_; }

  private:
    infer::PackModel entry_;
    std::shared_ptr<const infer::Model> model_;
    EmbedderInfo info_;
};

}  // namespace

Result<std::shared_ptr<const EmbedderModel>> LoadEmbedderModel(const infer::ModelPack& pack,
                                                              const infer::Backend& backend) {
    const infer::PackModel* entry = pack.Find(infer::ModelRole::kEmbedder);
    if (entry == nullptr) return NotFound("pack '" + pack.name + "' has no embedder");
    if (entry->decoder != "arcface") {
        return InvalidArgument("embedder " + entry->id + ": unknown decoder '" + entry->decoder +
                               "' (supported: arcface)");
    }
    if (entry->input.width != entry->input.height || entry->input.width <= 0) {
        return InvalidArgument("embedder " + entry->id + ": input must be square");
    }
    if (entry->output_dim <= 0) return InvalidArgument("embedder " + entry->id + ": output_dim must be > 0");
    FG_ASSIGN_OR_RETURN(auto model, backend.Load(entry->ToSpec()));
    EmbedderInfo info;
    // The hash prefix makes the id change when the weights do, so galleries never mix them.
    const std::string& sha = model->info().sha256;
    info.model_id = entry->id + (sha.empty() ? "" : "@" + sha.substr(0, 8));
    info.dim = entry->output_dim;
    info.input_size = entry->input.width;
    info.max_batch = model->info().max_batch;
    return std::shared_ptr<const EmbedderModel>(
        std::make_shared<ArcFaceEmbedderModel>(*entry, std::move(model), std::move(info)));
}

}  // namespace fg::vision

namespace fg::vision {
float DefaultVerifyThreshold(const infer::ModelPack& pack) {
    const infer::PackModel* e = pack.Find(infer::ModelRole::kEmbedder);
    if (e != nullptr && e->params.is_object()) {
        auto it = e->params.find("verify_threshold");
        if (it != e->params.end() && it->is_number()) return it->get<float>();
    }
    return 0.4f;
}
}  // namespace fg::vision
