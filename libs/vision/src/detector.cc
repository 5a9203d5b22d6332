// SPDX-License-Identifier: Apache-2.0
#include "fg/vision/detector.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "decoders.h"
#include "detector_skeleton.h"
#include "preprocess.h"

namespace fg::vision {

Status DetectorConfig::Validate() const {
    if (!(score_threshold >= 0.f && score_threshold <= 1.f)) {
        return InvalidArgument("score_threshold must be in [0, 1]");
    }
    if (!(nms_iou > 0.f && nms_iou <= 1.f)) return InvalidArgument("nms_iou must be in (0, 1]");
    if (!(min_face_size >= 0.f) || !std::isfinite(min_face_size)) {
        return InvalidArgument("min_face_size must be >= 0");
    }
    if (max_faces < 0) return InvalidArgument("max_faces must be >= 0");
    // More than 2 sides of border shrinks the face below what the detectors resolve.
    if (!(pad_ratio >= 0.f && pad_ratio <= 2.f)) {
        return InvalidArgument("pad_ratio must be in [0, 2]");
    }
    if (pad != PadPolicy::kNever && pad_ratio == 0.f) {
        return InvalidArgument("pad_ratio must be > 0 unless pad is kNever");
    }
    return Status::Ok();
}

Result<std::shared_ptr<const DetectorModel>> LoadDetectorModel(const infer::ModelPack& pack,
                                                              const infer::Backend& backend) {
    const infer::PackModel* det = pack.Find(infer::ModelRole::kDetector);
    if (det == nullptr) return NotFound("pack '" + pack.name + "' has no detector");
    if (det->decoder == "ultraface") return detail::LoadUltraFaceModel(pack, *det, backend);
    if (det->decoder == "yunet") return detail::LoadYuNetModel(*det, backend);
    if (det->decoder == "scrfd") return detail::LoadScrfdModel(*det, backend);
    return InvalidArgument("detector '" + det->id + "': unknown decoder '" + det->decoder +
                           "' (expected ultraface, yunet or scrfd)");
}

namespace detail {
namespace {

// Below this side no detector resolves a face; upscaling such an image only invents faces.
constexpr int kMinImageSide = 8;

class PackDetectorModel final : public DetectorModel {
  public:
    PackDetectorModel(DetectorInfo info, std::vector<LoadedModel> models, DetectorFactory make)
        : info_(std::move(info)), models_(std::move(models)), make_(std::move(make)) {}

    Result<std::unique_ptr<Detector>> CreateDetector(const DetectorConfig& config) const override {
        FG_RETURN_IF_ERROR(config.Validate());
        std::vector<ModelSession> sessions;
        sessions.reserve(models_.size());
        for (const LoadedModel& m : models_) {
            FG_ASSIGN_OR_RETURN(std::unique_ptr<infer::Session> session, m.model->CreateSession());
            sessions.push_back({m.model, std::move(session), m.fmt});
        }
        return make_(config, info_, std::move(sessions));
    }
    const DetectorInfo& info() const override { return info_; }

  private:
    const DetectorInfo info_;
    const std::vector<LoadedModel> models_;
    const DetectorFactory make_;
};

}  // namespace

LetterboxDetector::LetterboxDetector(const DetectorConfig& config, const DetectorInfo& info, ModelSession main)
    : DetectorBase(config, info), main_(std::move(main)) {
    input_.shape = {1, Channels(main_.fmt), main_.fmt.height, main_.fmt.width};
    input_.data.resize(static_cast<std::size_t>(input_.View().numel()));
}

Status LetterboxDetector::DetectCandidates(const cv::Mat& frame, std::vector<FaceDetection>& out) {
    const LetterboxInfo lb = ToTensor(frame, main_.fmt, input_.data.data(), MaxInputScale());
    FG_RETURN_IF_ERROR(RunSingleInput(*main_.session, input_, outputs_));
    const std::size_t first = out.size();
    FG_RETURN_IF_ERROR(Decode(outputs_, out));
    for (std::size_t i = first; i < out.size(); ++i) UnLetterbox(lb, out[i]);
    return Status::Ok();
}

Result<std::shared_ptr<const DetectorModel>> MakeDetectorModel(DetectorInfo info, std::vector<LoadedModel> models,
                                                               DetectorFactory make) {
    return std::shared_ptr<const DetectorModel>(
        std::make_shared<PackDetectorModel>(std::move(info), std::move(models), std::move(make)));
}

Result<LoadedModel> LoadSizedModel(const infer::PackModel& pm, const infer::Backend& backend) {
    if (pm.input.width <= 0 || pm.input.height <= 0) {
        return InvalidArgument("model '" + pm.id + "' has no input size");
    }
    FG_ASSIGN_OR_RETURN(std::shared_ptr<const infer::Model> model, LoadPackModel(pm, backend));
    return LoadedModel{std::move(model), pm.input};
}

DetectorInfo InfoOf(const infer::PackModel& pm) { return {pm.id, pm.decoder, pm.input.width, pm.input.height}; }

Result<std::vector<FaceDetection>> DetectorBase::DetectOnce(const cv::Mat& bgr,
                                                             const cv::Mat& frame, float dx,
                                                             float dy, float scale_x,
                                                             float scale_y) {
    std::vector<FaceDetection> candidates;
    FG_RETURN_IF_ERROR(DetectCandidates(frame, candidates));
    // Back to the pixels of `bgr` before selection, so that min_face_size is in those pixels.
    const LetterboxInfo to_image{scale_x, scale_y, dx, dy};
    for (FaceDetection& c : candidates) UnLetterbox(to_image, c);
    std::vector<FaceDetection> faces = SelectDetections(std::move(candidates), config_);
    if (!faces.empty()) FG_RETURN_IF_ERROR(Refine(bgr, faces));
    DropDuplicateFaces(faces);
    return faces;
}

Result<std::vector<FaceDetection>> DetectorBase::Detect(const cv::Mat& bgr) {
    FG_RETURN_IF_ERROR(CheckBgr8(bgr));
    std::vector<FaceDetection> faces;
    if (std::min(bgr.cols, bgr.rows) < kMinImageSide) return faces;
    try {
        bool padded = config_.pad == PadPolicy::kAlways;
        if (!padded) {
            FG_ASSIGN_OR_RETURN(faces, DetectOnce(bgr, bgr, 0, 0, 1, 1));
            padded = faces.empty() && config_.pad == PadPolicy::kIfNoneFound;
        }
        if (padded) {
            // Tight crops (the face filling the frame) need context: the detectors were trained
            // on scenes. Black borders found more faces than replicated ones (README). The
            // frame is shrunk first to about the model input, so that a large photo is not
            // copied at several times its size only to be shrunk again.
            const double grow = 1.0 + 2.0 * config_.pad_ratio;
            double s = 1.0;
            if (info_.input_width > 0 && info_.input_height > 0) {
                s = std::min({1.0, info_.input_width / (grow * bgr.cols),
                              info_.input_height / (grow * bgr.rows)});
            }
            cv::Mat small = bgr;
            if (s < 1.0) {
                const cv::Size size(std::max(1, static_cast<int>(std::lround(bgr.cols * s))),
                                    std::max(1, static_cast<int>(std::lround(bgr.rows * s))));
                cv::resize(bgr, small, size, 0, 0, cv::INTER_AREA);
            }
            const int px = static_cast<int>(std::lround(config_.pad_ratio * small.cols));
            const int py = static_cast<int>(std::lround(config_.pad_ratio * small.rows));
            cv::Mat frame;
            cv::copyMakeBorder(small, frame, py, py, px, px, cv::BORDER_CONSTANT,
                               cv::Scalar::all(0));
            FG_ASSIGN_OR_RETURN(
                faces, DetectOnce(bgr, frame, static_cast<float>(px), static_cast<float>(py),
                                  static_cast<float>(small.cols) / static_cast<float>(bgr.cols),
                                  static_cast<float>(small.rows) / static_cast<float>(bgr.rows)));
        }
    } catch (const cv::Exception& e) {
        return Internal(std::string("face detection failed: ") + e.what());
    } catch (const std::exception& e) {
        return Internal(std::string("face detection failed: ") + e.what());
    }
    // Boxes are clamped so that callers can crop them; landmarks stay as predicted (a face cut
    // by the frame edge still aligns correctly).
    for (FaceDetection& f : faces) f.box = ClampBox(f.box, bgr.cols, bgr.rows);
    std::erase_if(faces, [](const FaceDetection& f) { return f.box.area() <= 0.f; });
    return faces;
}

Status RunSingleInput(infer::Session& session, const infer::Tensor& input,
                      std::vector<infer::TensorView>& outputs) {
    try {
        const infer::TensorView view = input.View();
        Status st = session.Run(std::span<const infer::TensorView>(&view, 1), outputs);
        if (!st.ok()) return Internal(st.message()).WithContext("inference");
    } catch (const cv::Exception& e) {
        return Internal(std::string("inference failed: ") + e.what());
    } catch (const std::exception& e) {
        return Internal(std::string("inference failed: ") + e.what());
    }
    return Status::Ok();
}

Result<std::shared_ptr<const infer::Model>> LoadPackModel(const infer::PackModel& pm,
                                                          const infer::Backend& backend) {
    infer::ModelSpec spec = pm.ToSpec();
    if (pm.dynamic_input && spec.input_shape.empty()) {
        spec.input_shape = {1, Channels(pm.input), pm.input.height, pm.input.width};
    }
    auto model = backend.Load(spec);
    if (!model.ok()) return model.status().WithContext("model '" + pm.id + "'");
    return std::move(model).value();
}

Result<std::vector<int>> IntListParam(const infer::PackModel& pm, const std::string& key,
                                      std::vector<int> fallback) {
    if (!pm.params.is_object() || !pm.params.contains(key)) return fallback;
    const nlohmann::json& v = pm.params.at(key);
    if (!v.is_array() || v.empty()) {
        return InvalidArgument("model '" + pm.id + "': params." + key + " must be a list");
    }
    std::vector<int> out;
    for (const nlohmann::json& x : v) {
        if (!x.is_number_integer() || x.get<int>() <= 0) {
            return InvalidArgument("model '" + pm.id + "': params." + key +
                                   " must hold positive integers");
        }
        out.push_back(x.get<int>());
    }
    return out;
}

Result<int> IntParam(const infer::PackModel& pm, const std::string& key, int fallback) {
    if (!pm.params.is_object() || !pm.params.contains(key)) return fallback;
    const nlohmann::json& v = pm.params.at(key);
    if (!v.is_number_integer() || v.get<int>() <= 0) {
        return InvalidArgument("model '" + pm.id + "': params." + key +
                               " must be a positive integer");
    }
    return v.get<int>();
}

}  // namespace detail
}  // namespace fg::vision
