// SPDX-License-Identifier: Apache-2.0
// SCRFD (InsightFace, with 5 keypoints): per stride scores, distances, keypoint offsets; the
// outputs are found by shape since exports name and order them differently. The session and
// letterbox skeleton is in detector_skeleton.h.
#include <memory>
#include <string>
#include <vector>

#include "decoders.h"
#include "detector_skeleton.h"

namespace fg::vision::detail {
namespace {

class ScrfdDetector final : public LetterboxDetector {
  public:
    ScrfdDetector(const DetectorConfig& config, const DetectorInfo& info, ModelSession session,
                  std::vector<int> strides, int anchors)
        : LetterboxDetector(config, info, std::move(session)), strides_(std::move(strides)), anchors_(anchors) {}

  protected:
    Status Decode(std::span<const infer::TensorView> outputs, std::vector<FaceDetection>& out) override {
        FG_ASSIGN_OR_RETURN(std::vector<LevelOutputs> grouped,
                            GroupOutputsByStride(outputs, strides_, anchors_, fmt().width, fmt().height, 1));
        std::vector<ScrfdLevel> levels;
        for (const LevelOutputs& g : grouped) {
            // Alignment needs the 5 points: models without keypoints are refused.
            if (g.kps == nullptr) return Internal("SCRFD model without keypoint outputs");
            levels.push_back({g.stride, g.scores[0]->data, g.boxes->data, g.kps->data});
        }
        DecodeScrfd(levels, anchors_, fmt().width, fmt().height, config_.score_threshold, out);
        return Status::Ok();
    }

  private:
    const std::vector<int> strides_;
    const int anchors_;
};

}  // namespace

Result<std::shared_ptr<const DetectorModel>> LoadScrfdModel(const infer::PackModel& detector,
                                                           const infer::Backend& backend) {
    FG_ASSIGN_OR_RETURN(std::vector<int> strides, IntListParam(detector, "strides", {8, 16, 32}));
    FG_ASSIGN_OR_RETURN(int anchors, IntParam(detector, "anchors_per_cell", 2));
    FG_ASSIGN_OR_RETURN(LoadedModel model, LoadSizedModel(detector, backend));
    return MakeDetectorModel(
        InfoOf(detector), {std::move(model)},
        [strides, anchors](const DetectorConfig& config, const DetectorInfo& info, std::vector<ModelSession> s) {
            return std::unique_ptr<Detector>(
                std::make_unique<ScrfdDetector>(config, info, std::move(s[0]), strides, anchors));
        });
}

}  // namespace fg::vision::detail
