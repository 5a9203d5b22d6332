// SPDX-License-Identifier: Apache-2.0
// YuNet (OpenCV zoo 2023mar layout): per stride cls, obj, bbox, kps; one anchor per cell. The
// session and letterbox skeleton is in detector_skeleton.h.
#include <memory>
#include <string>
#include <vector>

#include "decoders.h"
#include "detector_skeleton.h"

namespace fg::vision::detail {
namespace {

class YuNetDetector final : public LetterboxDetector {
  public:
    YuNetDetector(const DetectorConfig& config, const DetectorInfo& info, ModelSession session,
                  std::vector<int> strides)
        : LetterboxDetector(config, info, std::move(session)), strides_(std::move(strides)) {}

  protected:
    Status Decode(std::span<const infer::TensorView> outputs, std::vector<FaceDetection>& out) override {
        FG_ASSIGN_OR_RETURN(std::vector<LevelOutputs> grouped,
                            GroupOutputsByStride(outputs, strides_, 1, fmt().width, fmt().height, 2));
        std::vector<YuNetLevel> levels;
        for (const LevelOutputs& g : grouped) {
            if (g.kps == nullptr) return Internal("YuNet output without landmarks");
            levels.push_back({g.stride, g.scores[0]->data, g.scores[1]->data, g.boxes->data, g.kps->data});
        }
        DecodeYuNet(levels, fmt().width, fmt().height, config_.score_threshold, out);
        return Status::Ok();
    }

  private:
    const std::vector<int> strides_;
};

}  // namespace

Result<std::shared_ptr<const DetectorModel>> LoadYuNetModel(const infer::PackModel& detector,
                                                           const infer::Backend& backend) {
    FG_ASSIGN_OR_RETURN(std::vector<int> strides, IntListParam(detector, "strides", {8, 16, 32}));
    FG_ASSIGN_OR_RETURN(LoadedModel model, LoadSizedModel(detector, backend));
    return MakeDetectorModel(
        InfoOf(detector), {std::move(model)},
        [strides](const DetectorConfig& config, const DetectorInfo& info, std::vector<ModelSession> s) {
            return std::unique_ptr<Detector>(std::make_unique<YuNetDetector>(config, info, std::move(s[0]), strides));
        });
}

}  // namespace fg::vision::detail
