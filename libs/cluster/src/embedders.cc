// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/embedders.h"

#include <cmath>

#include "fg/pipeline/embed_batcher.h"

namespace fg::cluster {

namespace {

class ModelEmbedder final : public FaceEmbedder {
  public:
    ModelEmbedder(std::unique_ptr<pipeline::EmbedBatcher> batcher, std::string model_id)
        : batcher_(std::move(batcher)), model_id_(std::move(model_id)) {}
    Status Embed(const std::vector<cv::Mat>& aligned, std::vector<Embedding>& out) override {
        return batcher_->Embed(aligned, out);
    }
    std::string model_id() const override { return model_id_; }

  private:
    std::unique_ptr<pipeline::EmbedBatcher> batcher_;  // thread-safe
    std::string model_id_;
};

class StubEmbedder final : public FaceEmbedder {
  public:
    explicit StubEmbedder(int dim) : dim_(dim) {}
    Status Embed(const std::vector<cv::Mat>& aligned, std::vector<Embedding>& out) override {
        out.clear();
        for (const cv::Mat& m : aligned) {
            if (m.empty() || !m.isContinuous()) return InvalidArgument("stub embedder: empty or strided crop");
            const std::size_t bytes = m.total() * m.elemSize();
            Embedding e{.model_id = "stub", .values = std::vector<float>(static_cast<std::size_t>(dim_))};
            for (int i = 0; i < dim_; ++i)
                e.values[static_cast<std::size_t>(i)] =
                    static_cast<float>(m.data[(static_cast<std::size_t>(i) * 7919u) % bytes]) + 1.f;
            L2Normalize(e.values);
            out.push_back(std::move(e));
        }
        return Status::Ok();
    }
    std::string model_id() const override { return "stub"; }

  private:
    int dim_;
};

}  // namespace

Result<std::shared_ptr<FaceEmbedder>> MakeModelEmbedder(const pipeline::ModelProvider& models, int max_batch) {
    FG_ASSIGN_OR_RETURN(std::unique_ptr<pipeline::EmbedBatcher> b, pipeline::EmbedBatcher::Create(models, max_batch));
    return std::shared_ptr<FaceEmbedder>(std::make_shared<ModelEmbedder>(std::move(b), models.embedder_model_id()));
}

std::shared_ptr<FaceEmbedder> MakeStubEmbedder(int dim) { return std::make_shared<StubEmbedder>(dim > 0 ? dim : 512); }

}  // namespace fg::cluster
