// SPDX-License-Identifier: Apache-2.0
// SCRFD (InsightFace, with 5 keypoints): per stride scores, distances, keypoint offsets; the
// outputs are found by shape since exports name and order them differently.
#include <memory>
#include <string>
#include <vector>

#include "decoders.h"
#include "preprocess.h"

namespace fg::vision::detail {
namespace {

class ScrfdDetector final : public DetectorBase {
  public:
    ScrfdDetector(const DetectorConfig& config, const DetectorInfo& info,
                  std::shared_ptr<const infer::Model> model,
                  std::unique_ptr<infer::Session> session,
                  const infer::InputFormat& fmt, std::vector<int> strides, int anchors)
        : DetectorBase(config, info),
          model_(std::move(model)),
          session_(std::move(session)),
          fmt_(fmt),
          strides_(std::move(strides)),
          anchors_(anchors) {
        input_.shape = {1, Channels(fmt_), fmt_.height, fmt_.width};
        input_.data.resize(static_cast<std::size_t>(input_.View().numel()));
    }

  protected:
    Status DetectCandidates(const cv::Mat& frame, std::vector<FaceDetection>& out) override {
        const LetterboxInfo lb = ToTensor(frame, fmt_, input_.data.data(), MaxInputScale());
        FG_RETURN_IF_ERROR(RunSingleInput(*session_, input_, outputs_));
        FG_ASSIGN_OR_RETURN(std::vector<LevelOutputs> grouped,
                            GroupOutputsByStride(outputs_, strides_, anchors_, fmt_.width,
                                                 fmt_.height, 1));
        std::vector<ScrfdLevel> levels;
        for (const LevelOutputs& g : grouped) {
            // Alignment needs the 5 points: models without keypoints are refused.
            if (g.kps == nullptr) return Internal("SCRFD model without keypoint outputs");
            levels.push_back({g.stride, g.scores[0]->data, g.boxes->data, g.kps->data});
        }
        const std::size_t first = out.size();
        DecodeScrfd(levels, anchors_, fmt_.width, fmt_.height, config_.score_threshold, out);
        for (std::size_t i = first; i < out.size(); ++i) UnLetterbox(lb, out[i]);
        return Status::Ok();
    }

  private:
    std::shared_ptr<const infer::Model> model_;   // keeps the weights alive for the session
    std::unique_ptr<infer::Session> session_;
    const infer::InputFormat fmt_;
    const std::vector<int> strides_;
    const int anchors_;
    infer::Tensor input_;
    std::vector<infer::TensorView> outputs_;
};

class ScrfdModel final : public DetectorModel {
  public:
    ScrfdModel(std::shared_ptr<const infer::Model> model, const infer::PackModel& pm,
               std::vector<int> strides, int anchors)
        : model_(std::move(model)),
          fmt_(pm.input),
          strides_(std::move(strides)),
          anchors_(anchors) {
        info_ = {pm.id, pm.decoder, fmt_.width, fmt_.height};
    }

    Result<std::unique_ptr<Detector>> CreateDetector(const DetectorConfig& config) const override {
        FG_RETURN_IF_ERROR(config.Validate());
        FG_ASSIGN_OR_RETURN(std::unique_ptr<infer::Session> session, model_->CreateSession());
        return std::unique_ptr<Detector>(std::make_unique<ScrfdDetector>(
            config, info_, model_, std::move(session), fmt_, strides_, anchors_));
    }
    const DetectorInfo& info() const override { return info_; }

  private:
    std::shared_ptr<const infer::Model> model_;
    infer::InputFormat fmt_;
    std::vector<int> strides_;
    int anchors_;
    DetectorInfo info_;
};

}  // namespace

Result<std::shared_ptr<const DetectorModel>> LoadScrfdModel(const infer::PackModel& detector,
                                                           const infer::Backend& backend) {
    if (detector.input.width <= 0 || detector.input.height <= 0) {
        return InvalidArgument("detector '" + detector.id + "' has no input size");
    }
    FG_ASSIGN_OR_RETURN(std::vector<int> strides, IntListParam(detector, "strides", {8, 16, 32}));
    FG_ASSIGN_OR_RETURN(int anchors, IntParam(detector, "anchors_per_cell", 2));
    FG_ASSIGN_OR_RETURN(std::shared_ptr<const infer::Model> model,
                        LoadPackModel(detector, backend));
    return std::shared_ptr<const DetectorModel>(
        std::make_shared<ScrfdModel>(std::move(model), detector, std::move(strides), anchors));
}

}  // namespace fg::vision::detail
