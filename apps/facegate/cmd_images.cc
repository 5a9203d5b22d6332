// SPDX-License-Identifier: Apache-2.0
// facegate detect | embed | compare
#include <filesystem>
#include <iostream>
#include <memory>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common.h"
#include "fg/image/image_io.h"
#include "fg/vision/attributes.h"
#include "fg/vision/liveness.h"

namespace fg::cli {
namespace {

struct ImageArgs {
    EngineOptions engine;
    std::vector<std::string> images;
    bool json = false;
    std::string draw;
    bool all_faces = false;
    bool with_quality = true;
    float threshold = -1.f;
    bool attributes = false;        // detect: age, gender, eyes, pose (fr_* attribute models)
    bool liveness = false;          // detect: liveness score and decision per face
    std::string liveness_model;     // preset or pack (empty = the default preset)
    float liveness_threshold = 0.5f;
    bool pose_model = false;        // detect: quality pose from fr_pose instead of the landmarks
};

/// The optional per-face models of `detect` (liveness, attributes).
struct FaceExtras {
    std::unique_ptr<vision::LivenessChecker> liveness;
    std::unique_ptr<vision::AttributeEstimator> attributes;
    vision::AttributeRequest request;
};

Result<FaceExtras> MakeExtras(const ImageArgs& args, const vision::Engine& engine) {
    FaceExtras x;
    if (!args.liveness && !args.attributes && !args.pose_model) return x;
    if (args.liveness) {
        FG_ASSIGN_OR_RETURN(auto model, engine.Liveness(args.liveness_model));
        FG_ASSIGN_OR_RETURN(x.liveness, model->CreateChecker({.threshold = args.liveness_threshold}));
    }
    if (args.attributes) x.request = vision::AttributeRequest::All();
    x.request.pose = x.request.pose || args.pose_model;
    if (x.request.any()) {
        FG_ASSIGN_OR_RETURN(auto model, engine.Attributes(x.request));
        FG_ASSIGN_OR_RETURN(x.attributes, model->CreateEstimator());
    }
    return x;
}

void DrawFaces(cv::Mat& img, const std::vector<vision::Face>& faces) {
    const int thick = std::max(1, std::min(img.cols, img.rows) / 300);
    for (const vision::Face& f : faces) {
        const auto& b = f.detection.box;
        cv::rectangle(img, cv::Rect2f(b.x, b.y, b.width, b.height), {0, 255, 0}, thick);
        const cv::Scalar colours[5] = {{255, 0, 0}, {0, 0, 255}, {0, 255, 255}, {255, 0, 255}, {255, 255, 0}};
        for (int i = 0; i < 5; ++i) {
            cv::circle(img, {int(f.detection.landmarks[i].x), int(f.detection.landmarks[i].y)}, 2 * thick,
                       colours[i], cv::FILLED);
        }
        char label[64];
        std::snprintf(label, sizeof label, "%.2f q%.2f", f.detection.score, f.quality.score);
        cv::putText(img, label, {int(b.x), std::max(12, int(b.y) - 4)}, cv::FONT_HERSHEY_SIMPLEX, 0.4 * thick,
                    {0, 255, 0}, thick);
    }
}

std::string DrawPath(const std::string& base, size_t index, size_t count) {
    if (count == 1) return base;
    std::filesystem::path p(base);
    return (p.parent_path() / (p.stem().string() + "_" + std::to_string(index) + p.extension().string())).string();
}

/// detect and embed share this: analyse every image, print JSON or a summary.
int RunAnalyze(const ImageArgs& args, bool embed) {
    auto ew = MakeEngineWorker(args.engine, embed);
    if (!ew.ok()) return Fail(ew.status());
    const auto& engine = ew->engine;
    auto& worker = ew->worker;
    auto extras = MakeExtras(args, *engine);
    if (!extras.ok()) return Fail(extras.status());

    nlohmann::json out;
    out["pack"] = engine->pack().name;
    out["detector"] = engine->detector_info().id;
    if (embed) {
        out["model_id"] = engine->embedder_info()->model_id;
        out["dim"] = engine->embedder_info()->dim;
    }
    out["images"] = nlohmann::json::array();
    int failures = 0;
    for (size_t i = 0; i < args.images.size(); ++i) {
        const std::string& path = args.images[i];
        nlohmann::json item{{"path", path}};
        auto img = LoadImage(path);
        if (!img.ok()) {
            ++failures;
            item["error"] = img.status().ToString();
            std::cerr << "error: " << path << ": " << img.status().ToString() << "\n";
            out["images"].push_back(item);
            continue;
        }
        item["width"] = img->cols;
        item["height"] = img->rows;
        vision::AnalyzeOptions opts{.embed = embed, .keep_aligned = false,
                                    .max_faces = (embed && !args.all_faces) ? 1 : 0};
        auto faces = worker->Analyze(*img, opts);
        if (!faces.ok()) {
            ++failures;
            item["error"] = faces.status().ToString();
            std::cerr << "error: " << path << ": " << faces.status().ToString() << "\n";
            out["images"].push_back(item);
            continue;
        }
        std::vector<vision::FaceDetection> dets;
        for (const vision::Face& f : *faces) dets.push_back(f.detection);
        std::vector<vision::LivenessResult> live;
        std::vector<vision::FaceAttributes> attrs;
        Status extra_status;
        if (extras->liveness) extra_status = extras->liveness->CheckBatch(*img, dets, live);
        if (extra_status.ok() && extras->attributes) {
            extra_status = extras->attributes->EstimateBatch(*img, dets, extras->request, attrs);
        }
        if (!extra_status.ok()) {
            ++failures;
            item["error"] = extra_status.ToString();
            std::cerr << "error: " << path << ": " << extra_status.ToString() << "\n";
            out["images"].push_back(item);
            continue;
        }
        if (args.pose_model) {
            for (size_t k = 0; k < faces->size(); ++k) {
                vision::OverrideQualityPose((*faces)[k].quality, *attrs[k].pose, engine->config().quality);
            }
        }
        nlohmann::json jf = nlohmann::json::array();
        for (size_t k = 0; k < faces->size(); ++k) {
            const vision::Face& f = (*faces)[k];
            nlohmann::json j = ToJson(f.detection);
            if (args.with_quality) j["quality"] = ToJson(f.quality);
            if (f.embedding) j["embedding"] = f.embedding->values;
            if (!live.empty()) j["liveness"] = LivenessJson(live[k]);
            if (args.attributes) j["attributes"] = AttributesJson(attrs[k]);
            jf.push_back(std::move(j));
        }
        item["faces"] = std::move(jf);
        if (!args.draw.empty()) {
            cv::Mat canvas = img->clone();
            DrawFaces(canvas, *faces);
            const std::string dst = DrawPath(args.draw, i, args.images.size());
            bool written = false;
            try {
                written = cv::imwrite(dst, canvas);
            } catch (const cv::Exception& e) {
                std::cerr << "error: " << e.what() << "\n";
            }
            if (!written) {
                ++failures;
                std::cerr << "error: cannot write " << dst << "\n";
            } else {
                item["drawn"] = dst;
            }
        }
        if (!args.json) {
            std::cout << path << ": " << faces->size() << " face(s)\n";
            for (size_t k = 0; k < faces->size(); ++k) {
                const vision::Face& f = (*faces)[k];
                const auto& b = f.detection.box;
                std::printf("  box %.0f,%.0f %.0fx%.0f score %.3f quality %.2f yaw %.0f pitch %.0f roll %.0f\n", b.x,
                            b.y, b.width, b.height, f.detection.score, f.quality.score, f.quality.pose.yaw,
                            f.quality.pose.pitch, f.quality.pose.roll);
                if (!live.empty()) {
                    std::printf("    liveness %.3f: %s\n", live[k].score, live[k].live ? "live" : "SPOOF");
                }
                if (args.attributes) {
                    const vision::FaceAttributes& a = attrs[k];
                    std::printf("    age %.0f, %s (male %.2f), eyes %s (%.2f %.2f), model pose yaw %.0f pitch %.0f roll %.0f\n",
                                *a.age, *a.male >= 0.5f ? "male" : "female", *a.male,
                                a.eyes->open() ? "open" : "closed", a.eyes->left_open, a.eyes->right_open,
                                a.pose->yaw, a.pose->pitch, a.pose->roll);
                }
            }
        }
        out["images"].push_back(std::move(item));
    }
    if (args.json) PrintJson(out, !embed);
    return failures == 0 ? kExitOk : kExitError;
}

int RunCompare(const ImageArgs& args) {
    auto ew = MakeEngineWorker(args.engine, true);
    if (!ew.ok()) return Fail(ew.status());
    const auto& engine = ew->engine;
    auto& worker = ew->worker;

    std::vector<vision::Face> picked;
    for (const std::string& path : args.images) {
        auto img = LoadImage(path);
        if (!img.ok()) return Fail(img.status().WithContext(path));
        auto faces = worker->Analyze(*img, {.embed = true, .keep_aligned = false, .max_faces = 1});
        if (!faces.ok()) return Fail(faces.status().WithContext(path));
        if (faces->empty()) return Fail(NotFound("no face found in " + path));
        picked.push_back(std::move(faces->front()));
    }
    const float score = vision::CosineSimilarity(*picked[0].embedding, *picked[1].embedding);
    const float threshold = args.threshold >= 0 ? args.threshold : vision::DefaultVerifyThreshold(engine->pack());
    const bool same = score >= threshold;
    if (args.json) {
        PrintJson({{"a", args.images[0]},
                   {"b", args.images[1]},
                   {"model_id", picked[0].embedding->model_id},
                   {"score", score},
                   {"threshold", threshold},
                   {"same", same},
                   {"faces", {ToJson(picked[0].detection), ToJson(picked[1].detection)}}});
    } else {
        std::printf("score %.4f threshold %.4f: %s\n", score, threshold, same ? "same person" : "different people");
    }
    return kExitOk;
}

}  // namespace

void RegisterImageCommands(CLI::App& app, Action& action) {
    auto args = std::make_shared<ImageArgs>();

    CLI::App* detect = app.add_subcommand("detect", "Detect faces (boxes, scores, 5 landmarks, quality)");
    args->engine.AddTo(*detect, false);
    detect->add_option("images", args->images, "Image files")->required();
    detect->add_flag("--json", args->json, "JSON output");
    detect->add_option("--draw", args->draw, "Write an annotated copy (OUT.png; OUT_<i>.png for several images)");
    detect->add_flag("--attributes", args->attributes, "Age, gender, eyes open/closed and model head pose per face");
    detect->add_flag("--liveness", args->liveness, "Liveness score and live/spoof decision per face");
    detect->add_option("--liveness-model", args->liveness_model,
                       "Liveness preset: fr_liveness, minifasnet, fused, or a pack (default: " +
                           std::string(vision::DefaultLivenessPreset()) + ")");
    detect->add_option("--liveness-threshold", args->liveness_threshold, "Live when the liveness score is at least this")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    detect->add_flag("--pose-model", args->pose_model, "Quality uses the head pose of the pose model (fr_pose), not the landmarks");
    detect->callback([args, &action] {
        if (!args->liveness_model.empty()) args->liveness = true;
        action = [args] { return RunAnalyze(*args, false); };
    });

    CLI::App* embed = app.add_subcommand("embed", "Embed the main face (or all faces) of each image");
    args->engine.AddTo(*embed, true);
    embed->add_option("images", args->images, "Image files")->required();
    embed->add_flag("--json", args->json, "JSON output (embeddings are only printed as JSON)");
    embed->add_flag("--all-faces", args->all_faces, "Embed every face, not only the largest");
    embed->callback([args, &action] {
        args->json = true;
        action = [args] { return RunAnalyze(*args, true); };
    });

    CLI::App* compare = app.add_subcommand("compare", "Compare the main faces of two images (1:1)");
    args->engine.AddTo(*compare, true);
    compare->add_option("images", args->images, "Two image files")->required()->expected(2);
    compare->add_option("--threshold", args->threshold, "Decision threshold (default: the pack's)");
    compare->add_flag("--json", args->json, "JSON output");
    compare->callback([args, &action] { action = [args] { return RunCompare(*args); }; });
}

}  // namespace fg::cli
