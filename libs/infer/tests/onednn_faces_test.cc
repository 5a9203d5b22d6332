// SPDX-License-Identifier: Apache-2.0
// Differential test of the onednn backend on real faces: every model of every built-in pack
// (and the two MiniFASNets) gets the tensors the engine would feed it for real photos, and
// oneDNN must give OpenCV DNN's outputs within 1e-4 relative. Random inputs (onednn_models_
// test.cc) miss value ranges that only real images reach (saturated pixels, skin-tone
// channels, the landmarker's crops); here the detector, landmarker and embedder inputs are
// recorded from the vision layer itself, and the crops of the liveness and attribute models
// follow their pack entries.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <mutex>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "fg/image/align.h"
#include "fg/image/image_io.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/testing/testing.h"
#include "tensor_compare.h"
#include "fg/vision/detector.h"
#include "fg/vision/embedder.h"

namespace fg::infer {
namespace {

/// The inputs one model received, keyed by its spec (the same file can appear in several packs).
struct Recorded {
    ModelSpec spec;
    std::vector<std::vector<Tensor>> calls;
};

/// Every model's inputs, filled by RecordingBackend; kept small (the first calls only).
class Recorder {
  public:
    static constexpr std::size_t kMaxCalls = 4;
    void Add(const ModelSpec& spec, std::span<const TensorView> inputs) {
        std::lock_guard lock(mu_);
        Recorded& r = Get(spec);
        if (r.calls.size() >= kMaxCalls) return;
        std::vector<Tensor> copy;
        for (const auto& v : inputs) copy.push_back({v.shape, {v.data, v.data + v.numel()}});
        r.calls.push_back(std::move(copy));
    }
    Recorded& Get(const ModelSpec& spec) {
        // Canonical: packs name ../shared both directly and through the models folder.
        const std::string key = std::filesystem::weakly_canonical(spec.path).string() + "|" +
                                std::to_string(spec.input_shape.size());
        auto [it, fresh] = models_.try_emplace(key);
        if (fresh) it->second.spec = spec;
        return it->second;
    }
    std::map<std::string, Recorded>& models() { return models_; }

  private:
    std::mutex mu_;
    std::map<std::string, Recorded> models_;
};

class RecordingSession final : public Session {
  public:
    RecordingSession(std::unique_ptr<Session> inner, ModelSpec spec, Recorder& rec)
        : inner_(std::move(inner)), spec_(std::move(spec)), rec_(rec) {}
    Status Run(std::span<const TensorView> inputs, std::vector<TensorView>& outputs) override {
        rec_.Add(spec_, inputs);
        return inner_->Run(inputs, outputs);
    }

  private:
    std::unique_ptr<Session> inner_;
    ModelSpec spec_;
    Recorder& rec_;
};

class RecordingModel final : public Model {
  public:
    RecordingModel(std::shared_ptr<const Model> inner, ModelSpec spec, Recorder& rec)
        : inner_(std::move(inner)), spec_(std::move(spec)), rec_(rec) {}
    const ModelInfo& info() const override { return inner_->info(); }
    Result<std::unique_ptr<Session>> CreateSession() const override {
        FG_ASSIGN_OR_RETURN(auto s, inner_->CreateSession());
        return std::unique_ptr<Session>(std::make_unique<RecordingSession>(std::move(s), spec_, rec_));
    }

  private:
    std::shared_ptr<const Model> inner_;
    ModelSpec spec_;
    Recorder& rec_;
};

/// OpenCV DNN, recording every input the vision layer feeds each model.
class RecordingBackend final : public Backend {
  public:
    RecordingBackend(std::shared_ptr<Backend> inner, Recorder& rec)
        : inner_(std::move(inner)), rec_(rec) {}
    std::string_view name() const override { return "recording"; }
    Result<std::shared_ptr<const Model>> Load(const ModelSpec& spec) const override {
        FG_ASSIGN_OR_RETURN(auto m, inner_->Load(spec));
        return std::shared_ptr<const Model>(std::make_shared<RecordingModel>(m, spec, rec_));
    }

  private:
    std::shared_ptr<Backend> inner_;
    Recorder& rec_;
};

/// Real photos: three CFP frontal images and one of dlib's 150x150 chips (a face filling the
/// image: the detectors' padded retry).
std::vector<std::filesystem::path> FacePhotos() {
    const auto cfp = SharedDir() / "data/cfp/cfp-dataset/Data/Images";
    return {cfp / "001/frontal/01.jpg", cfp / "002/frontal/03.jpg", cfp / "003/frontal/05.jpg",
            testing::DlibExamplesDir() / "johns/John_Simm/000288_00470387.jpg"};
}

/// Input tensor of a crop-based model as its pack entry describes it: the face box scaled by
/// params.crop_scale (1 when absent) around its centre, clamped to the image, stretched to the
/// input size, colour order and (pixel - mean) * scale.
Tensor CropTensor(const cv::Mat& bgr, const vision::FaceDetection& face, const PackModel& pm) {
    const float s = pm.params.is_object() ? pm.params.value("crop_scale", 1.0f) : 1.0f;
    const float cx = face.box.x + face.box.width / 2, cy = face.box.y + face.box.height / 2;
    const float w = face.box.width * s, h = face.box.height * s;
    cv::Rect r(static_cast<int>(std::lround(cx - w / 2)), static_cast<int>(std::lround(cy - h / 2)),
               static_cast<int>(std::lround(w)), static_cast<int>(std::lround(h)));
    r &= cv::Rect(0, 0, bgr.cols, bgr.rows);
    cv::Mat crop;
    cv::resize(bgr(r), crop, cv::Size(pm.input.width, pm.input.height), 0, 0, cv::INTER_LINEAR);
    const bool gray = pm.input.color == ColorOrder::kGray;
    if (gray) cv::cvtColor(crop, crop, cv::COLOR_BGR2GRAY);
    if (pm.input.color == ColorOrder::kRgb) cv::cvtColor(crop, crop, cv::COLOR_BGR2RGB);
    const int c = gray ? 1 : 3, hw = pm.input.width * pm.input.height;
    Tensor t;
    t.shape = {1, c, pm.input.height, pm.input.width};
    t.data.resize(static_cast<std::size_t>(c * hw));
    for (int i = 0; i < hw; ++i) {
        const uchar* px = crop.data + static_cast<std::size_t>(i) * c;
        for (int k = 0; k < c; ++k) {
            t.data[static_cast<std::size_t>(k * hw + i)] = (px[k] - pm.input.mean[k]) * pm.input.scale[k];
        }
    }
    return t;
}

TEST(OneDnnFacesTest, EveryPackModelMatchesOpenCvOnRealFaces) {
    for (const auto& p : FacePhotos()) FG_REQUIRE_PATH(p);
    std::vector<cv::Mat> photos;
    for (const auto& p : FacePhotos()) {
        auto img = LoadImage(p);
        ASSERT_TRUE(img.ok()) << img.status().ToString();
        photos.push_back(*img);
    }
    auto opencv = MakeBackend({.name = "opencv", .threads = 1});
    auto onednn = MakeBackend({.name = "onednn", .threads = 1});
    ASSERT_TRUE(opencv.ok() && onednn.ok());
    Recorder rec;
    RecordingBackend recording(*opencv, rec);

    // Liveness and attribute models run on crops of the face: one per photo, from the default
    // pack's detections, for every such model of any pack plus the MiniFASNets of ../shared.
    std::map<std::string, PackModel> cropped;
    std::vector<vision::FaceDetection> first_faces;
    for (const auto& pack_name : BuiltinPackNames()) {
        SCOPED_TRACE(pack_name);
        auto pack = ResolvePack(pack_name);
        ASSERT_TRUE(pack.ok()) << pack.status().ToString();
        for (const auto& pm : pack->models) {
            FG_REQUIRE_PATH(pm.path);
            if (pm.role == ModelRole::kLiveness || pm.role == ModelRole::kAttribute)
                cropped.try_emplace(std::filesystem::weakly_canonical(pm.path).string(), pm);
        }
        // Detect -> align -> embed as the engine's Worker::Analyze does, recording the inputs.
        auto det = vision::LoadDetectorModel(*pack, recording);
        ASSERT_TRUE(det.ok()) << det.status().ToString();
        auto emb = vision::LoadEmbedderModel(*pack, recording);
        ASSERT_TRUE(emb.ok()) << emb.status().ToString();
        auto detector = (*det)->CreateDetector({});
        auto embedder = (*emb)->CreateEmbedder({});
        ASSERT_TRUE(detector.ok() && embedder.ok());
        for (std::size_t i = 0; i < photos.size(); ++i) {
            auto faces = (*detector)->Detect(photos[i]);
            ASSERT_TRUE(faces.ok()) << faces.status().ToString();
            ASSERT_FALSE(faces->empty()) << FacePhotos()[i];
            if (pack_name == "default") first_faces.push_back(faces->front());
            auto aligned = AlignFace(photos[i], faces->front().landmarks,
                                     (*embedder)->info().input_size);
            ASSERT_TRUE(aligned.ok());
            std::vector<vision::Embedding> e;
            ASSERT_TRUE((*embedder)->Embed(std::vector<cv::Mat>{aligned->image}, e).ok());
        }
    }
    ASSERT_EQ(first_faces.size(), photos.size());
    for (auto [name, scale] : {std::pair{"minifasnet_v2_2.7_80.onnx", 2.7f},
                               std::pair{"minifasnet_v1se_4.0_80.onnx", 4.0f}}) {
        PackModel pm;
        pm.id = name;
        pm.role = ModelRole::kLiveness;
        pm.path = testing::ModelPath(name, true);
        FG_REQUIRE_PATH(pm.path);
        pm.input.width = pm.input.height = 80;
        pm.params = {{"crop_scale", scale}};
        cropped.try_emplace(std::filesystem::weakly_canonical(pm.path).string(), pm);
    }
    for (const auto& [path, pm] : cropped) {
        Recorded& r = rec.Get(pm.ToSpec());
        for (std::size_t i = 0; i < photos.size() && r.calls.size() < Recorder::kMaxCalls; ++i) {
            r.calls.push_back({CropTensor(photos[i], first_faces[i], pm)});
        }
    }

    int compared = 0;
    for (auto& [key, r] : rec.models()) {
        SCOPED_TRACE(r.spec.path.filename().string());
        ASSERT_FALSE(r.calls.empty());
        auto ref_model = (*opencv)->Load(r.spec);
        ASSERT_TRUE(ref_model.ok()) << ref_model.status().ToString();
        auto model = (*onednn)->Load(r.spec);
        ASSERT_TRUE(model.ok()) << model.status().ToString();
        auto ref_session = (*ref_model)->CreateSession();
        auto session = (*model)->CreateSession();
        ASSERT_TRUE(ref_session.ok() && session.ok());
        double worst = 0;
        for (const auto& call : r.calls) {
            std::vector<TensorView> in, ref, out;
            for (const auto& t : call) in.push_back(t.View());
            ASSERT_TRUE((*ref_session)->Run(in, ref).ok());
            Status st = (*session)->Run(in, out);
            ASSERT_TRUE(st.ok()) << st.ToString();
            ASSERT_EQ(out.size(), ref.size());
            for (std::size_t k = 0; k < out.size(); ++k) {
                ASSERT_EQ(out[k].shape, ref[k].shape) << out[k].name;
                const double err = RelativeError(out[k], ref[k]);
                worst = std::max(worst, err);
                EXPECT_LE(err, 1e-4) << out[k].name;
            }
        }
        ++compared;
        std::cout << "[ faces    ] " << r.spec.path.filename().string() << ": " << r.calls.size()
                  << " real inputs, max relative error " << worst << "\n";
    }
    // fr_detect, fr_landmark, fr_feature, 5 more detectors, MobileFaceNet, fr_liveness, 5
    // attribute models, 2 MiniFASNets.
    EXPECT_GE(compared, 17);
}

}   // namespace
}   // namespace fg::infer
