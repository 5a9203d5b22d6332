// SPDX-License-Identifier: Apache-2.0
// Age, gender, eye state and head pose from the default pack's attribute models. Crops,
// normalisation and decoding were found by experiment (docs/liveness.md).
#include "fg/vision/attributes.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "decoders.h"
#include "face_crop.h"
#include "preprocess.h"

namespace fg::vision {
namespace {

// HopeNet-style pose heads: 66 bins of 3 degrees, the first centred on -99 degrees.
constexpr int kPoseBins = 66;
constexpr float kPoseBinDegrees = 3.f;
constexpr float kPoseOffset = -99.f;
// SSR-Net: 3 stages of 3 bins; the age head spans 0..101 years, the gender head 0..1.
constexpr int kSsrStages = 3;
constexpr int kSsrBins = 3;

struct Entry {
    infer::PackModel pm;
    std::shared_ptr<const infer::Model> model;
    float crop_scale = 1.f;
    detail::CropBorder border = detail::CropBorder::kShift;
};

Result<float> NumberParam(const infer::PackModel& pm, const char* key, float fallback, float lo, float hi) {
    if (!pm.params.is_object()) return fallback;
    auto it = pm.params.find(key);
    if (it == pm.params.end()) return fallback;
    if (!it->is_number() || !(it->get<float>() >= lo && it->get<float>() <= hi)) {
        return InvalidArgument("attribute model " + pm.id + ": params." + key + " must be a number in [" +
                               std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return it->get<float>();
}

Result<Entry> LoadEntry(const infer::ModelPack& pack, const std::string& decoder, const infer::Backend& backend) {
    const infer::PackModel* found = nullptr;
    for (const infer::PackModel& m : pack.models) {
        if (m.role == infer::ModelRole::kAttribute && m.decoder == decoder) {
            found = &m;
            break;
        }
    }
    if (found == nullptr) {
        return NotFound("pack '" + pack.name + "' has no attribute model with decoder '" + decoder + "'");
    }
    Entry e;
    e.pm = *found;
    if (e.pm.input.letterbox) return InvalidArgument("attribute model " + e.pm.id + ": input.letterbox must be false");
    FG_ASSIGN_OR_RETURN(e.crop_scale, NumberParam(e.pm, "crop_scale", 1.f, 0.1f, 10.f));
    if (e.pm.params.is_object() && e.pm.params.contains("crop_border")) {
        const auto& b = e.pm.params["crop_border"];
        if (b == "shift") {
            e.border = detail::CropBorder::kShift;
        } else if (b == "pad") {
            e.border = detail::CropBorder::kPad;
        } else {
            return InvalidArgument("attribute model " + e.pm.id + ": params.crop_border must be \"shift\" or \"pad\"");
        }
    }
    FG_ASSIGN_OR_RETURN(e.model, detail::LoadPackModel(e.pm, backend));
    return e;
}

/// Expectation of the softmax over HopeNet bins, in degrees.
float PoseFromBins(const float* logits) {
    float mx = logits[0];
    for (int i = 1; i < kPoseBins; ++i) mx = std::max(mx, logits[i]);
    double sum = 0, expect = 0;
    for (int i = 0; i < kPoseBins; ++i) {
        const double p = std::exp(static_cast<double>(logits[i]) - mx);
        sum += p;
        expect += p * i;
    }
    return static_cast<float>(expect / sum * kPoseBinDegrees + kPoseOffset);
}

/// SSR-Net's soft stagewise regression: stage k contributes sum_i p_k(i) (i + offset_k(i))
/// divided by the product over stages j <= k of s_j (1 + delta_j); the sum is scaled by `range`.
float SsrMerge(const float* prob[kSsrStages], const float* offset[kSsrStages], const float* delta[kSsrStages],
               float range) {
    double total = 0, denom = 1;
    for (int k = 0; k < kSsrStages; ++k) {
        denom *= kSsrBins * (1.0 + delta[k][0]);
        double stage = 0;
        for (int i = 0; i < kSsrBins; ++i) stage += prob[k][i] * (i + offset[k][i]);
        total += stage / denom;
    }
    return static_cast<float>(total * range);
}

/// One model and its session inside an estimator.
struct Runner {
    const Entry* entry = nullptr;
    std::unique_ptr<infer::Session> session;
    infer::Tensor input;
    std::vector<infer::TensorView> outputs;

    /// Runs crops already at the model's input size, batched as far as the model allows;
    /// `decode(k, outputs, i, n)` reads item i of n of the pass for crop k.
    Status Run(const std::vector<cv::Mat>& crops,
               const std::function<Status(std::size_t, const std::vector<infer::TensorView>&, std::size_t,
                                          std::size_t)>& decode) {
        const infer::InputFormat& fmt = entry->pm.input;
        const int mb = entry->model->info().max_batch;
        const std::size_t per_pass = mb == 0 ? 8 : static_cast<std::size_t>(std::max(1, mb));
        const std::size_t plane = static_cast<std::size_t>(detail::Channels(fmt)) * fmt.width * fmt.height;
        for (std::size_t start = 0; start < crops.size(); start += per_pass) {
            const std::size_t n = std::min(per_pass, crops.size() - start);
            input.shape = {static_cast<std::int64_t>(n), detail::Channels(fmt), fmt.height, fmt.width};
            input.data.resize(n * plane);
            for (std::size_t i = 0; i < n; ++i) detail::ToTensor(crops[start + i], fmt, input.data.data() + i * plane);
            FG_RETURN_IF_ERROR(detail::RunSingleInput(*session, input, outputs).WithContext(entry->pm.id));
            for (std::size_t i = 0; i < n; ++i) FG_RETURN_IF_ERROR(decode(start + i, outputs, i, n));
        }
        return Status::Ok();
    }
};

/// Item i of n of output t, which must hold n * `per_item` values.
Result<const float*> Item(const infer::TensorView& t, std::size_t i, std::size_t n, std::int64_t per_item,
                          const std::string& model) {
    if (t.numel() != per_item * static_cast<std::int64_t>(n)) {
        return Internal(model + ": output '" + t.name + "' has " + std::to_string(t.numel()) + " values, expected " +
                        std::to_string(per_item * static_cast<std::int64_t>(n)));
    }
    return t.data + static_cast<std::int64_t>(i) * per_item;
}

// Eye crops: a square of `eye_crop` x the eye's corner-to-corner width around the mean of the
// four lid points (68-point landmarks); with 5 points only, the eye width is taken as
// kEyeWidthPerDistance x the inter-ocular distance (its mean on dlib's 43 annotated faces).
constexpr float kEyeWidthPerDistance = 0.47f;

class Estimator final : public AttributeEstimator {
  public:
    Estimator(std::vector<Runner> runners, const Entry* age, const Entry* gender, const Entry* eye,
              const Entry* pose, float eye_crop, int open_index, std::shared_ptr<const void> keep_alive)
        : runners_(std::move(runners)),
          eye_crop_(eye_crop),
          open_index_(open_index),
          keep_alive_(std::move(keep_alive)) {
        for (Runner& r : runners_) {
            if (r.entry == age) age_ = &r;
            if (r.entry == gender) gender_ = &r;
            if (r.entry == eye) eye_ = &r;
            if (r.entry == pose) pose_ = &r;
        }
    }

    AttributeRequest available() const override {
        return {age_ != nullptr, gender_ != nullptr, eye_ != nullptr, pose_ != nullptr};
    }

    Result<FaceAttributes> Estimate(const cv::Mat& bgr, const FaceDetection& face,
                                    const AttributeRequest& request) override {
        std::vector<FaceAttributes> out;
        FG_RETURN_IF_ERROR(EstimateBatch(bgr, {&face, 1}, request, out));
        return std::move(out.front());
    }

    Status EstimateBatch(const cv::Mat& image, std::span<const FaceDetection> faces, const AttributeRequest& request,
                         std::vector<FaceAttributes>& out) override {
        out.clear();
        const AttributeRequest have = available();
        if ((request.age && !have.age) || (request.gender && !have.gender) || (request.eyes && !have.eyes) ||
            (request.pose && !have.pose)) {
            return FailedPrecondition("attribute requested that was not loaded");
        }
        FG_ASSIGN_OR_RETURN(const cv::Mat bgr, detail::AsBgr8(image));
        for (const FaceDetection& f : faces) FG_RETURN_IF_ERROR(detail::CheckBox(f.box));
        out.resize(faces.size());
        try {
            if (request.pose) FG_RETURN_IF_ERROR(RunPose(bgr, faces, out));
            if (request.age) FG_RETURN_IF_ERROR(RunSsr(*age_, bgr, faces, 101.f, out, true));
            if (request.gender) FG_RETURN_IF_ERROR(RunSsr(*gender_, bgr, faces, 1.f, out, false));
            if (request.eyes) FG_RETURN_IF_ERROR(RunEyes(bgr, faces, out));
        } catch (const cv::Exception& e) {
            return Internal(std::string("attribute crop: ") + e.what());
        }
        return Status::Ok();
    }

  private:
    std::vector<cv::Mat>& FaceCrops(const Runner& r, const cv::Mat& bgr, std::span<const FaceDetection> faces) {
        const Entry& e = *r.entry;
        crops_.clear();
        for (const FaceDetection& f : faces) {
            const cv::Rect rect = detail::ContextCrop(f.box, e.crop_scale, bgr.size(), e.border);
            crops_.push_back(detail::CropResize(bgr, rect, {e.pm.input.width, e.pm.input.height}));
        }
        return crops_;
    }

    Status RunPose(const cv::Mat& bgr, std::span<const FaceDetection> faces, std::vector<FaceAttributes>& out) {
        const std::string& id = pose_->entry->pm.id;
        return pose_->Run(FaceCrops(*pose_, bgr, faces), [&](std::size_t k, const auto& outs, std::size_t i,
                                                             std::size_t n) -> Status {
            if (outs.size() != 3) return Internal(id + ": expected 3 outputs (yaw, pitch, roll bins)");
            float angle[3];
            for (int a = 0; a < 3; ++a) {
                FG_ASSIGN_OR_RETURN(const float* bins, Item(outs[a], i, n, kPoseBins, id));
                angle[a] = PoseFromBins(bins);
            }
            // The model's yaw and pitch point the other way from ours (measured against the
            // landmark estimate on CFP profiles and dlib's photos); roll agrees.
            out[k].pose = HeadPose{-angle[0], -angle[1], angle[2]};
            return Status::Ok();
        });
    }

    Status RunSsr(Runner& r, const cv::Mat& bgr, std::span<const FaceDetection> faces, float range,
                  std::vector<FaceAttributes>& out, bool age) {
        const std::string& id = r.entry->pm.id;
        const auto& names = r.entry->model->info().output_names;
        // Outputs by name: the graph order is not the stage order.
        int prob[kSsrStages], offset[kSsrStages], delta[kSsrStages];
        for (int k = 0; k < kSsrStages; ++k) {
            auto find = [&](const std::string& name) {
                auto it = std::find(names.begin(), names.end(), name);
                return it == names.end() ? -1 : static_cast<int>(it - names.begin());
            };
            const std::string s = std::to_string(k + 1);
            prob[k] = find("prob_stage_" + s);
            offset[k] = find("index_offset_stage" + s);
            delta[k] = find("stage" + s + "_delta_k");
            if (prob[k] < 0 || offset[k] < 0 || delta[k] < 0) {
                return Internal(id + ": missing SSR-Net outputs of stage " + s);
            }
        }
        return r.Run(FaceCrops(r, bgr, faces), [&](std::size_t k, const auto& outs, std::size_t i,
                                                   std::size_t n) -> Status {
            const float *p[kSsrStages], *o[kSsrStages], *d[kSsrStages];
            for (int s = 0; s < kSsrStages; ++s) {
                if (static_cast<std::size_t>(std::max({prob[s], offset[s], delta[s]})) >= outs.size()) {
                    return Internal(id + ": too few outputs");
                }
                FG_ASSIGN_OR_RETURN(p[s], Item(outs[prob[s]], i, n, kSsrBins, id));
                FG_ASSIGN_OR_RETURN(o[s], Item(outs[offset[s]], i, n, kSsrBins, id));
                FG_ASSIGN_OR_RETURN(d[s], Item(outs[delta[s]], i, n, 1, id));
            }
            const float v = SsrMerge(p, o, d, range);
            if (age) {
                out[k].age = std::clamp(v, 0.f, 101.f);
            } else {
                out[k].male = std::clamp(v, 0.f, 1.f);
            }
            return Status::Ok();
        });
    }

    Status RunEyes(const cv::Mat& bgr, std::span<const FaceDetection> faces, std::vector<FaceAttributes>& out) {
        const Entry& e = *eye_->entry;
        crops_.clear();
        for (const FaceDetection& f : faces) {
            for (int side = 0; side < 2; ++side) {
                crops_.push_back(detail::CropResize(bgr, EyeRect(f, side), {e.pm.input.width, e.pm.input.height}));
            }
        }
        for (FaceAttributes& a : out) a.eyes = EyesState{};
        const std::string& id = e.pm.id;
        return eye_->Run(crops_, [&](std::size_t k, const auto& outs, std::size_t i, std::size_t n) -> Status {
            if (outs.empty()) return Internal(id + ": no output");
            const std::int64_t classes = outs[0].numel() / static_cast<std::int64_t>(n);
            if (classes <= open_index_) return Internal(id + ": too few classes");
            FG_ASSIGN_OR_RETURN(const float* logits, Item(outs[0], i, n, classes, id));
            const float open = detail::SoftmaxAt(logits, static_cast<int>(classes), open_index_);
            EyesState& s = *out[k / 2].eyes;
            (k % 2 == 0 ? s.left_open : s.right_open) = open;
            return Status::Ok();
        });
    }

    /// The square around eye `side` (0 = image left) of a face.
    cv::Rect EyeRect(const FaceDetection& f, int side) const {
        double cx, cy, width;
        if (f.dense_landmarks.size() == 68) {
            // 68-point ring of each eye: 36..41 (image left), 42..47; corners 36/39 and 42/45.
            const int base = side == 0 ? 36 : 42;
            const auto& p = f.dense_landmarks;
            cx = (p[base + 1].x + p[base + 2].x + p[base + 4].x + p[base + 5].x) / 4.0;
            cy = (p[base + 1].y + p[base + 2].y + p[base + 4].y + p[base + 5].y) / 4.0;
            width = std::hypot(p[base + 3].x - p[base].x, p[base + 3].y - p[base].y);
        } else {
            cx = f.landmarks[side].x;
            cy = f.landmarks[side].y;
            width = kEyeWidthPerDistance *
                    std::hypot(f.landmarks[1].x - f.landmarks[0].x, f.landmarks[1].y - f.landmarks[0].y);
        }
        if (!std::isfinite(cx) || !std::isfinite(cy) || !std::isfinite(width)) return {0, 0, 1, 1};
        const double s = std::clamp(width * eye_crop_, 1.0, 1e6);
        return {static_cast<int>(std::lround(cx - s / 2)), static_cast<int>(std::lround(cy - s / 2)),
                static_cast<int>(std::lround(s)), static_cast<int>(std::lround(s))};
    }

    std::vector<Runner> runners_;
    Runner* age_ = nullptr;
    Runner* gender_ = nullptr;
    Runner* eye_ = nullptr;
    Runner* pose_ = nullptr;
    float eye_crop_;
    int open_index_;
    std::shared_ptr<const void> keep_alive_;   // the AttributeModel owning the entries
    std::vector<cv::Mat> crops_;
};

class Model final : public AttributeModel, public std::enable_shared_from_this<Model> {
  public:
    Result<std::unique_ptr<AttributeEstimator>> CreateEstimator() const override {
        std::vector<Runner> runners;
        for (const Entry* e : {age_.get(), gender_.get(), eye_.get(), pose_.get()}) {
            if (e == nullptr) continue;
            Runner r;
            r.entry = e;
            FG_ASSIGN_OR_RETURN(r.session, e->model->CreateSession());
            runners.push_back(std::move(r));
        }
        return std::unique_ptr<AttributeEstimator>(std::make_unique<Estimator>(
            std::move(runners), age_.get(), gender_.get(), eye_.get(), pose_.get(), eye_crop_, open_index_,
            shared_from_this()));
    }
    AttributeRequest available() const override {
        return {age_ != nullptr, gender_ != nullptr, eye_ != nullptr, pose_ != nullptr};
    }

    std::unique_ptr<Entry> age_, gender_, eye_, pose_;
    float eye_crop_ = 1.6f;
    int open_index_ = 0;
};

}  // namespace

Result<std::shared_ptr<const AttributeModel>> LoadAttributeModel(const infer::ModelPack& pack,
                                                                const infer::Backend& backend,
                                                                const AttributeRequest& which) {
    auto model = std::make_shared<Model>();
    auto load = [&](bool wanted, const char* decoder, std::unique_ptr<Entry>& dst) -> Status {
        if (!wanted) return Status::Ok();
        FG_ASSIGN_OR_RETURN(Entry e, LoadEntry(pack, decoder, backend));
        dst = std::make_unique<Entry>(std::move(e));
        return Status::Ok();
    };
    FG_RETURN_IF_ERROR(load(which.age, "ssrnet_age", model->age_));
    FG_RETURN_IF_ERROR(load(which.gender, "ssrnet_gender", model->gender_));
    FG_RETURN_IF_ERROR(load(which.eyes, "eye_state", model->eye_));
    FG_RETURN_IF_ERROR(load(which.pose, "hopenet", model->pose_));
    if (model->eye_) {
        FG_ASSIGN_OR_RETURN(model->eye_crop_, NumberParam(model->eye_->pm, "eye_crop", 1.6f, 0.5f, 5.f));
        FG_ASSIGN_OR_RETURN(const float idx, NumberParam(model->eye_->pm, "open_index", 0.f, 0.f, 16.f));
        model->open_index_ = static_cast<int>(idx);
    }
    return std::shared_ptr<const AttributeModel>(std::move(model));
}

}  // namespace fg::vision
