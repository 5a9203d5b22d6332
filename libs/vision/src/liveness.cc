// SPDX-License-Identifier: Apache-2.0
// Passive liveness: MiniFASNet-style classifiers on a context crop around the face box.
#include "fg/vision/liveness.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "decoders.h"
#include "face_crop.h"
#include "preprocess.h"

namespace fg::vision {

Status LivenessConfig::Validate() const {
    if (!(threshold >= 0.f && threshold <= 1.f)) return InvalidArgument("liveness threshold must be in [0, 1]");
    if (max_batch < 1) return InvalidArgument("liveness max_batch must be >= 1");
    return Status::Ok();
}

namespace {

/// One liveness model of a checker, with what the pack says about its crop and output.
struct Entry {
    infer::PackModel pm;
    std::shared_ptr<const infer::Model> model;
    float crop_scale = 2.7f;
    int live_index = 0;
    detail::CropBorder border = detail::CropBorder::kShift;
};

Result<Entry> MakeEntry(const infer::PackModel& pm, const infer::Backend& backend, float& weight) {
    const std::string where = "liveness model " + pm.id;
    if (pm.role != infer::ModelRole::kLiveness) return InvalidArgument(where + ": role must be liveness");
    if (pm.decoder != "minifasnet") {
        return InvalidArgument(where + ": unknown decoder '" + pm.decoder + "' (supported: minifasnet)");
    }
    if (pm.input.letterbox) return InvalidArgument(where + ": input.letterbox must be false");
    Entry e;
    e.pm = pm;
    weight = 1.f;
    const nlohmann::json& p = pm.params;
    if (p.is_object()) {
        auto number = [&](const char* key, float lo, float hi, float& dst) -> Status {
            auto it = p.find(key);
            if (it == p.end()) return Status::Ok();
            if (!it->is_number() || !(it->get<float>() >= lo && it->get<float>() <= hi)) {
                return InvalidArgument(where + ": params." + key + " must be a number in [" +
                                       std::to_string(lo) + ", " + std::to_string(hi) + "]");
            }
            dst = it->get<float>();
            return Status::Ok();
        };
        FG_RETURN_IF_ERROR(number("crop_scale", 0.5f, 10.f, e.crop_scale));
        FG_RETURN_IF_ERROR(number("fusion_weight", 0.f, 1000.f, weight));
        auto li = p.find("live_index");
        if (li != p.end()) {
            if (!li->is_number_integer() || li->get<int>() < 0) {
                return InvalidArgument(where + ": params.live_index must be an integer >= 0");
            }
            e.live_index = li->get<int>();
        }
        auto b = p.find("crop_border");
        if (b != p.end()) {
            if (*b == "shift") {
                e.border = detail::CropBorder::kShift;
            } else if (*b == "pad") {
                e.border = detail::CropBorder::kPad;
            } else {
                return InvalidArgument(where + ": params.crop_border must be \"shift\" or \"pad\"");
            }
        }
    }
    FG_ASSIGN_OR_RETURN(e.model, detail::LoadPackModel(pm, backend));
    return e;
}

class Checker final : public LivenessChecker {
  public:
    Checker(std::vector<const Entry*> entries, std::vector<std::unique_ptr<infer::Session>> sessions,
            const LivenessInfo& info, const LivenessConfig& config,
            std::shared_ptr<const void> keep_alive)
        : entries_(std::move(entries)),
          sessions_(std::move(sessions)),
          info_(info),
          config_(config),
          keep_alive_(std::move(keep_alive)) {}

    Result<LivenessResult> Check(const cv::Mat& bgr, const FaceDetection& face) override {
        std::vector<LivenessResult> out;
        FG_RETURN_IF_ERROR(CheckBatch(bgr, {&face, 1}, out));
        return std::move(out.front());
    }

    Status CheckBatch(const cv::Mat& image, std::span<const FaceDetection> faces,
                      std::vector<LivenessResult>& out) override {
        out.clear();
        FG_ASSIGN_OR_RETURN(const cv::Mat bgr, detail::AsBgr8(image));
        for (const FaceDetection& f : faces) FG_RETURN_IF_ERROR(detail::CheckBox(f.box));
        out.resize(faces.size());
        for (LivenessResult& r : out) r.models.resize(entries_.size());
        try {
            for (std::size_t m = 0; m < entries_.size(); ++m) FG_RETURN_IF_ERROR(RunModel(m, bgr, faces, out));
        } catch (const cv::Exception& e) {
            return Internal(std::string("liveness crop: ") + e.what());
        }
        for (LivenessResult& r : out) {
            double s = 0;
            for (std::size_t m = 0; m < entries_.size(); ++m) s += info_.weights[m] * r.models[m].live;
            r.score = std::clamp(static_cast<float>(s), 0.f, 1.f);
            r.live = r.score >= config_.threshold;
        }
        return Status::Ok();
    }

    const LivenessInfo& info() const override { return info_; }
    float threshold() const override { return config_.threshold; }

  private:
    Status RunModel(std::size_t m, const cv::Mat& bgr, std::span<const FaceDetection> faces,
                    std::vector<LivenessResult>& out) {
        const Entry& e = *entries_[m];
        const infer::InputFormat& fmt = e.pm.input;
        const int max_batch = e.model->info().max_batch;
        const std::size_t per_pass = static_cast<std::size_t>(
            max_batch == 0 ? config_.max_batch : std::min(config_.max_batch, std::max(1, max_batch)));
        const std::size_t plane = static_cast<std::size_t>(detail::Channels(fmt)) * fmt.width * fmt.height;
        for (std::size_t start = 0; start < faces.size(); start += per_pass) {
            const std::size_t n = std::min(per_pass, faces.size() - start);
            input_.shape = {static_cast<std::int64_t>(n), detail::Channels(fmt), fmt.height, fmt.width};
            input_.data.resize(n * plane);
            for (std::size_t i = 0; i < n; ++i) {
                const cv::Rect r = detail::ContextCrop(faces[start + i].box, e.crop_scale, bgr.size(), e.border);
                detail::ToTensor(detail::CropResize(bgr, r, {fmt.width, fmt.height}), fmt,
                                 input_.data.data() + i * plane);
            }
            FG_RETURN_IF_ERROR(detail::RunSingleInput(*sessions_[m], input_, outputs_).WithContext(e.pm.id));
            if (outputs_.empty() || outputs_[0].numel() % static_cast<std::int64_t>(n) != 0) {
                return Internal("liveness model " + e.pm.id + ": unexpected output size");
            }
            const std::int64_t classes = outputs_[0].numel() / static_cast<std::int64_t>(n);
            if (e.live_index >= classes) {
                return Internal("liveness model " + e.pm.id + ": live_index " + std::to_string(e.live_index) +
                                " but only " + std::to_string(classes) + " classes");
            }
            for (std::size_t i = 0; i < n; ++i) {
                const float* logits = outputs_[0].data + static_cast<std::int64_t>(i) * classes;
                LivenessModelScore& s = out[start + i].models[m];
                s.model_id = e.pm.id;
                s.live = detail::SoftmaxAt(logits, static_cast<int>(classes), e.live_index);
            }
        }
        return Status::Ok();
    }

    std::vector<const Entry*> entries_;
    std::vector<std::unique_ptr<infer::Session>> sessions_;
    LivenessInfo info_;
    LivenessConfig config_;
    std::shared_ptr<const void> keep_alive_;   // the LivenessModel owning entries_
    infer::Tensor input_;
    std::vector<infer::TensorView> outputs_;
};

class FusedLivenessModel final : public LivenessModel, public std::enable_shared_from_this<FusedLivenessModel> {
  public:
    FusedLivenessModel(std::vector<Entry> entries, LivenessInfo info)
        : entries_(std::move(entries)), info_(std::move(info)) {}

    Result<std::unique_ptr<LivenessChecker>> CreateChecker(const LivenessConfig& config) const override {
        FG_RETURN_IF_ERROR(config.Validate());
        std::vector<const Entry*> entries;
        std::vector<std::unique_ptr<infer::Session>> sessions;
        for (const Entry& e : entries_) {
            FG_ASSIGN_OR_RETURN(auto s, e.model->CreateSession());
            sessions.push_back(std::move(s));
            entries.push_back(&e);
        }
        return std::unique_ptr<LivenessChecker>(std::make_unique<Checker>(
            std::move(entries), std::move(sessions), info_, config, shared_from_this()));
    }
    const LivenessInfo& info() const override { return info_; }

  private:
    std::vector<Entry> entries_;
    LivenessInfo info_;
};

std::vector<infer::PackModel> LivenessEntries(const infer::ModelPack& pack) {
    std::vector<infer::PackModel> out;
    for (const infer::PackModel& m : pack.models) {
        if (m.role == infer::ModelRole::kLiveness) out.push_back(m);
    }
    return out;
}

}  // namespace

Result<std::shared_ptr<const LivenessModel>> LoadLivenessModel(std::span<const infer::PackModel> entries,
                                                              const infer::Backend& backend, std::string name) {
    if (entries.empty()) return InvalidArgument("no liveness models given");
    std::vector<Entry> loaded;
    LivenessInfo info;
    info.name = name.empty() ? entries.front().id : std::move(name);
    for (const infer::PackModel& pm : entries) {
        float weight = 1.f;
        FG_ASSIGN_OR_RETURN(Entry e, MakeEntry(pm, backend, weight));
        info.model_ids.push_back(pm.id);
        info.weights.push_back(weight);
        loaded.push_back(std::move(e));
    }
    const float total = std::accumulate(info.weights.begin(), info.weights.end(), 0.f);
    if (!(total > 0)) return InvalidArgument("liveness models of '" + info.name + "': fusion weights sum to 0");
    for (float& w : info.weights) w /= total;
    return std::shared_ptr<const LivenessModel>(std::make_shared<FusedLivenessModel>(std::move(loaded), std::move(info)));
}

// fr_liveness: installed with the default pack (the MiniFASNets need ../shared), one model, and the
// widest margin on the Silent-Face samples (docs/liveness.md).
std::string_view DefaultLivenessPreset() { return "fr_liveness"; }

Result<std::shared_ptr<const LivenessModel>> LoadLiveness(std::string_view preset_in, const infer::ModelPack& pack,
                                                         const infer::Backend& backend) {
    const std::string preset(preset_in.empty() ? DefaultLivenessPreset() : preset_in);
    auto fr_liveness = [&]() -> Result<std::vector<infer::PackModel>> {
        std::vector<infer::PackModel> own = LivenessEntries(pack);
        std::erase_if(own, [](const infer::PackModel& m) { return m.decoder != "minifasnet" || m.id != "fr_liveness"; });
        if (!own.empty()) return own;
        FG_ASSIGN_OR_RETURN(infer::ModelPack def, infer::ResolvePack("default"));
        const infer::PackModel* m = def.FindById("fr_liveness");
        if (m == nullptr) return NotFound("built-in pack 'default' has no fr_liveness");
        return std::vector<infer::PackModel>{*m};
    };
    auto of_pack = [](const std::string& name) -> Result<std::vector<infer::PackModel>> {
        FG_ASSIGN_OR_RETURN(infer::ModelPack p, infer::ResolvePack(name));
        std::vector<infer::PackModel> e = LivenessEntries(p);
        if (e.empty()) return NotFound("pack '" + p.name + "' has no liveness model");
        return e;
    };
    std::vector<infer::PackModel> entries;
    if (preset == "fr_liveness") {
        FG_ASSIGN_OR_RETURN(entries, fr_liveness());
    } else if (preset == "minifasnet") {
        FG_ASSIGN_OR_RETURN(entries, of_pack("silentface"));
    } else if (preset == "fused") {
        FG_ASSIGN_OR_RETURN(entries, fr_liveness());
        FG_ASSIGN_OR_RETURN(auto mini, of_pack("silentface"));
        entries.insert(entries.end(), mini.begin(), mini.end());
    } else {
        FG_ASSIGN_OR_RETURN(entries, of_pack(preset));
    }
    return LoadLivenessModel(entries, backend, preset);
}

LivenessTrackFusion::LivenessTrackFusion(float threshold, int window, int min_frames)
    : threshold_(threshold), window_(std::max(1, window)), min_frames_(std::max(1, min_frames)) {
    recent_.reserve(static_cast<std::size_t>(window_));
}

void LivenessTrackFusion::Add(const LivenessResult& frame) { Add(frame.score); }

void LivenessTrackFusion::Add(float frame_score) {
    if (!std::isfinite(frame_score)) return;  // a failed frame says nothing
    const float s = std::clamp(frame_score, 0.f, 1.f);
    if (static_cast<int>(recent_.size()) < window_) {
        recent_.push_back(s);
    } else {
        recent_[static_cast<std::size_t>(frames_ % window_)] = s;
    }
    ++frames_;
}

float LivenessTrackFusion::score() const {
    if (recent_.empty()) return std::numeric_limits<float>::quiet_NaN();
    return std::accumulate(recent_.begin(), recent_.end(), 0.f) / static_cast<float>(recent_.size());
}

}  // namespace fg::vision
