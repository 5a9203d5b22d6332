// SPDX-License-Identifier: Apache-2.0
// The skeleton the three detectors share (private): a DetectorModel that loads pack entries and
// creates one session of each per worker, and a Detector that letterboxes the frame into the main
// model's input, runs it and maps the candidates back. A detector file (scrfd/yunet/ultraface)
// holds only what differs: its parameters, how it decodes its outputs and an optional Refine.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "decoders.h"

namespace fg::vision::detail {

/// A loaded pack model and its input format; shared by every worker of a DetectorModel.
struct LoadedModel {
    std::shared_ptr<const infer::Model> model;
    infer::InputFormat fmt;
};

/// One worker's session of a LoadedModel; holds the model so the weights outlive the session.
struct ModelSession {
    std::shared_ptr<const infer::Model> model;
    std::unique_ptr<infer::Session> session;
    infer::InputFormat fmt;
};

/// A detector whose main model takes the letterboxed frame as its one input. Owns that session
/// and its buffers; subclasses decode the outputs. NOT thread-safe, like every Detector.
class LetterboxDetector : public DetectorBase {
  public:
    LetterboxDetector(const DetectorConfig& config, const DetectorInfo& info, ModelSession main);

  protected:
    /// Appends the candidates with a score >= config_.score_threshold, in model-input pixels
    /// (the skeleton undoes the letterbox).
    virtual Status Decode(std::span<const infer::TensorView> outputs, std::vector<FaceDetection>& out) = 0;
    /// The main model's input format (size, channels).
    const infer::InputFormat& fmt() const { return main_.fmt; }

  private:
    Status DetectCandidates(const cv::Mat& frame, std::vector<FaceDetection>& out) final;

    ModelSession main_;
    infer::Tensor input_;
    std::vector<infer::TensorView> outputs_;
};

/// Builds one worker's detector from its sessions (one per LoadedModel, in the same order).
using DetectorFactory = std::function<std::unique_ptr<Detector>(
    const DetectorConfig& config, const DetectorInfo& info, std::vector<ModelSession> sessions)>;

/// The DetectorModel of every detector: CreateDetector validates the config, creates one session
/// of each model and hands them to `make`. Immutable, thread-safe.
Result<std::shared_ptr<const DetectorModel>> MakeDetectorModel(DetectorInfo info, std::vector<LoadedModel> models,
                                                               DetectorFactory make);

/// Loads a detector's pack entry; InvalidArgument when it has no input size (letterboxing needs one).
Result<LoadedModel> LoadSizedModel(const infer::PackModel& pm, const infer::Backend& backend);

/// id, decoder and input size of `pm`.
DetectorInfo InfoOf(const infer::PackModel& pm);

Result<std::shared_ptr<const DetectorModel>> LoadUltraFaceModel(const infer::ModelPack& pack,
                                                               const infer::PackModel& detector,
                                                               const infer::Backend& backend);
Result<std::shared_ptr<const DetectorModel>> LoadYuNetModel(const infer::PackModel& detector,
                                                           const infer::Backend& backend);
Result<std::shared_ptr<const DetectorModel>> LoadScrfdModel(const infer::PackModel& detector,
                                                           const infer::Backend& backend);

}  // namespace fg::vision::detail
