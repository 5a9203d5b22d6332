// SPDX-License-Identifier: Apache-2.0
// Fakes of the pipeline's two interfaces, for tests that run the whole decision logic in
// milliseconds with no model file. A "face" is a filled square of one of the palette colours on
// a black frame: the fake detector finds it by colour, the fake embedder maps the colour to a
// one-hot embedding (palette index = axis), the fake liveness check calls the colours marked as
// spoofs spoofs, and the fake identifier knows the subjects it was given.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "fg/pipeline/models.h"
#include "fg/stream/frame.h"

namespace fg::pipeline::testing {

inline constexpr int kPaletteSize = 4;
/// BGR of palette entry i (saturated, far apart, so JPEG compression keeps them apart).
cv::Scalar PaletteColor(int i);

struct Square {
    int color = 0;  ///< palette index
    int x = 0, y = 0, side = 60;
};

/// A black frame with the given squares.
cv::Mat DrawFrame(const std::vector<Square>& squares, cv::Size size = {320, 240});
stream::Frame MakeFrame(const std::vector<Square>& squares, std::uint64_t sequence,
                        std::int64_t media_ms);

/// Thread-safe (counters are atomic; settings are fixed before use).
class FakeModels final : public ModelProvider {
  public:
    float quality = 0.8f;         ///< every face's quality
    std::set<int> spoof_colors;   ///< palette entries the liveness check calls spoofs
    float threshold = 0.5f;       ///< detector_threshold()
    /// The detector throws (as OpenCV does on a bad frame) on every frame whose pixel (4, 4) is
    /// about this colour (BGR; JPEG moves it a little); none when unset.
    std::optional<cv::Vec3b> throw_on_pixel;

    Result<std::unique_ptr<vision::Detector>> CreateDetector(float score_threshold) const override;
    float detector_threshold() const override { return threshold; }
    Result<std::unique_ptr<vision::Embedder>> CreateEmbedder() const override;
    std::string embedder_model_id() const override { return "fake-embedder"; }
    Result<std::unique_ptr<vision::LivenessChecker>> CreateLivenessChecker(std::string_view preset,
                                                                           float threshold) const override;
    Result<AssessedCrop> AlignAndAssess(const cv::Mat& bgr,
                                        const vision::FaceDetection& face) const override;

    mutable std::atomic<int> detector_runs{0};
    mutable std::atomic<int> embedded{0};
    mutable std::atomic<float> last_detector_threshold{0.f};
};

/// Knows subject "<name>" as palette entry `color`. Thread-safe after set-up.
class FakeIdentifier final : public Identifier {
  public:
    void Enroll(const std::string& subject, int color) { subjects_[subject] = color; }
    Result<IdentityVerdict> Identify(const Embedding& probe) const override;

  private:
    std::map<std::string, int> subjects_;
};

/// One-hot unit vector of palette entry `color`.
std::vector<float> OneHot(int color);

}  // namespace fg::pipeline::testing
