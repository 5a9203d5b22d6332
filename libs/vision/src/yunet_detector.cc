// SPDX-License-Identifier: Apache-2.0
// YuNet (OpenCV zoo 2023mar layout): per stride cls, obj, bbox, kps; one anchor per cell.
#include <memory>
#include <string>
#include <vector>

#include "decoders.h"
#include "preprocess.h"

namespace fg::vision::detail {
namespace {

class YuNetDetector final : public DetectorBase {
  public:
    YuNetDetector(const DetectorConfig& config, const DetectorInfo& info,
                  std::shared_ptr<const infer::Model> model,
                  std::unique_ptr<infer::Session> session,
                  const infer::InputFormat& fmt, std::vector<int> strides)
        : DetectorBase(config, info),
          model_(std::move(model)),
          session_(std::move(session)),
          fmt_(fmt),
          strides_(std::move(strides)) {
        input_.shape = {1, Channels(fmt_), fmt_.height, fmt_.width};
        input_.data.resize(static_cast<std::size_t>(input_.View().numel()));
    }

  protected:
    Status DetectCandidates(const cv::Mat& frame, std::vector<FaceDetection>& out) override {
        const LetterboxInfo lb = ToTensor(frame, fmt_, input_.data.data(), MaxInputScale());
        FG_RETURN_IF_ERROR(RunSingleInput(*session_, input_, outputs_));
        FG_ASSIGN_OR_RETURN(std::vector<LevelOutputs> grouped,
                            GroupOutputsByStride(outputs_, strides_, 1, fmt_.width,
                                                 fmt_.height, 2));
        std::vector<YuNetLevel> levels;
        for (const LevelOutputs& g : grouped) {
            if (g.kps == nullptr) return Internal("YuNet output without landmarks");
            levels.push_back({g.stride, g.scores[0]->data, g.scores[1]->data, g.boxes->data,
                              g.kps->data});
        }
        const std::size_t first = out.size();
        DecodeYuNet(levels, fmt_.width, fmt_.height, config_.score_threshold, out);
        for (std::size_t i = first; i < out.size(); ++i) UnLetterbox(lb, out[i]);
        return Status::Ok();
    }

  private:
    std::shared_ptr<const infer::Model> model_;   // keeps the weights alive for the session
    std::unique_ptr<infer::Session> session_;
    const infer::InputFormat fmt_;
    const std::vector<int> strides_;
    infer::Tensor input_;
    std::vector<infer::TensorView> outputs_;
};

class YuNetModel final : public DetectorModel {
  public:
    YuNetModel(std::shared_ptr<const infer::Model> model, const infer::PackModel& pm,
               std::vector<int> strides)
        : model_(std::move(model)), fmt_(pm.input), strides_(std::move(strides)) {
        info_ = {pm.id, pm.decoder, fmt_.width, fmt_.height};
    }

    Result<std::unique_ptr<Detector>> CreateDetector(const DetectorConfig& config) const override {
        FG_RETURN_IF_ERROR(config.Validate());
        FG_ASSIGN_OR_RETURN(std::unique_ptr<infer::Session> session, model_->CreateSession());
        return std::unique_ptr<Detector>(std::make_unique<YuNetDetector>(
            config, info_, model_, std::move(session), fmt_, strides_));
    }
    const DetectorInfo& info() const override { return info_; }

  private:
    std::shared_ptr<const infer::Model> model_;
    infer::InputFormat fmt_;
    std::vector<int> strides_;
    DetectorInfo info_;
};

}  // namespace

Result<std::shared_ptr<const DetectorModel>> LoadYuNetModel(const infer::PackModel& detector,
                                                           const infer::Backend& backend) {
    if (detector.input.width <= 0 || detector.input.height <= 0) {
        return InvalidArgument("detector '" + detector.id + "' has no input size");
    }
    FG_ASSIGN_OR_RETURN(std::vector<int> strides, IntListParam(detector, "strides", {8, 16, 32}));
    FG_ASSIGN_OR_RETURN(std::shared_ptr<const infer::Model> model,
                        LoadPackModel(detector, backend));
    return std::shared_ptr<const DetectorModel>(
        std::make_shared<YuNetModel>(std::move(model), detector, std::move(strides)));
}

}  // namespace fg::vision::detail
