// SPDX-License-Identifier: Apache-2.0
// facegate liveness IMAGE... and facegate bench liveness (per-face latency of the liveness,
// pose and attribute models, batch 1 and batched).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <memory>

#include "common.h"
#include "fg/base/paths.h"
#include "fg/image/image_io.h"
#include "fg/vision/attributes.h"
#include "fg/vision/liveness.h"

namespace fg::cli {

nlohmann::json LivenessJson(const vision::LivenessResult& r) {
    nlohmann::json models = nlohmann::json::object();
    for (const auto& m : r.models) models[m.model_id] = m.live;
    return {{"score", r.score}, {"live", r.live}, {"models", models}};
}

nlohmann::json AttributesJson(const vision::FaceAttributes& a) {
    nlohmann::json j = nlohmann::json::object();
    if (a.age) j["age"] = *a.age;
    if (a.male) {
        j["male"] = *a.male;
        j["gender"] = *a.male >= 0.5f ? "male" : "female";
    }
    if (a.eyes) {
        j["eyes"] = {{"left_open", a.eyes->left_open},
                     {"right_open", a.eyes->right_open},
                     {"open", a.eyes->open()}};
    }
    if (a.pose) j["pose"] = {{"yaw", a.pose->yaw}, {"pitch", a.pose->pitch}, {"roll", a.pose->roll}};
    return j;
}

namespace {

struct LivenessArgs {
    EngineOptions engine;
    std::vector<std::string> images;
    std::string model;
    float threshold = 0.5f;
    bool json = false;
};

int RunLiveness(const LivenessArgs& args) {
    auto ew = MakeEngineWorker(args.engine, false);
    if (!ew.ok()) return Fail(ew.status());
    auto model = ew->engine->Liveness(args.model);
    if (!model.ok()) return Fail(model.status());
    auto checker = (*model)->CreateChecker({.threshold = args.threshold});
    if (!checker.ok()) return Fail(checker.status());
    const vision::LivenessInfo& info = (*model)->info();

    nlohmann::json out{{"model", info.name}, {"models", info.model_ids}, {"weights", info.weights},
                       {"threshold", args.threshold}, {"images", nlohmann::json::array()}};
    int failures = 0;
    for (const std::string& path : args.images) {
        nlohmann::json item{{"path", path}};
        auto fail = [&](const Status& s) {
            ++failures;
            item["error"] = s.ToString();
            std::cerr << "error: " << path << ": " << s.ToString() << "\n";
            out["images"].push_back(item);
        };
        auto img = LoadImage(path);
        if (!img.ok()) {
            fail(img.status());
            continue;
        }
        item["width"] = img->cols;
        item["height"] = img->rows;
        auto faces = ew->worker->Detect(*img);
        if (!faces.ok()) {
            fail(faces.status());
            continue;
        }
        std::vector<vision::LivenessResult> results;
        if (Status s = (*checker)->CheckBatch(*img, *faces, results); !s.ok()) {
            fail(s);
            continue;
        }
        nlohmann::json jf = nlohmann::json::array();
        if (!args.json) std::cout << path << ": " << faces->size() << " face(s)\n";
        for (std::size_t i = 0; i < faces->size(); ++i) {
            nlohmann::json j = ToJson((*faces)[i]);
            j["liveness"] = LivenessJson(results[i]);
            jf.push_back(std::move(j));
            if (!args.json) {
                const auto& b = (*faces)[i].box;
                std::printf("  box %.0f,%.0f %.0fx%.0f live %.3f: %s (", b.x, b.y, b.width, b.height,
                            results[i].score, results[i].live ? "live" : "SPOOF");
                for (std::size_t m = 0; m < results[i].models.size(); ++m) {
                    std::printf("%s%s %.3f", m ? ", " : "", results[i].models[m].model_id.c_str(),
                                results[i].models[m].live);
                }
                std::printf(")\n");
            }
        }
        item["faces"] = std::move(jf);
        out["images"].push_back(std::move(item));
    }
    if (args.json) PrintJson(out);
    return failures == 0 ? kExitOk : kExitError;
}

// ---- facegate eval pose -------------------------------------------------------------------

struct PoseEvalArgs {
    EngineOptions engine;
    std::string root = (SharedDir() / "data/cfp/cfp-dataset").string();
    int count = 100;
    bool json = false;
};

struct PoseStats {
    int images = 0, faces = 0;
    double abs_yaw_lm = 0, abs_yaw_model = 0, yaw_diff = 0, pitch_diff = 0, roll_diff = 0;
    int beyond45_lm = 0, beyond45_model = 0, same_sign = 0;

    nlohmann::json Json() const {
        const double n = std::max(1, faces);
        return {{"images", images},
                {"faces", faces},
                {"mean_abs_yaw_landmarks", abs_yaw_lm / n},
                {"mean_abs_yaw_model", abs_yaw_model / n},
                {"mean_abs_yaw_difference", yaw_diff / n},
                {"mean_abs_pitch_difference", pitch_diff / n},
                {"mean_abs_roll_difference", roll_diff / n},
                {"abs_yaw_over_45_landmarks", beyond45_lm},
                {"abs_yaw_over_45_model", beyond45_model},
                {"yaw_same_sign", same_sign}};
    }
};

int RunPoseEval(const PoseEvalArgs& args) {
    auto ew = MakeEngineWorker(args.engine, false);
    if (!ew.ok()) return Fail(ew.status());
    auto model = ew->engine->Attributes({.pose = true});
    if (!model.ok()) return Fail(model.status());
    auto estimator = (*model)->CreateEstimator();
    if (!estimator.ok()) return Fail(estimator.status());

    nlohmann::json out{{"root", args.root}, {"count", args.count}};
    for (const char* kind : {"frontal", "profile"}) {
        PoseStats st;
        for (int id = 1; id <= args.count; ++id) {
            char rel[64];
            std::snprintf(rel, sizeof rel, "Data/Images/%03d/%s/01.jpg", id, kind);
            const std::filesystem::path path = std::filesystem::path(args.root) / rel;
            auto img = LoadImage(path);
            if (!img.ok()) return Fail(img.status().WithContext(path.string()));
            ++st.images;
            auto faces = ew->worker->Analyze(*img, {.embed = false, .keep_aligned = false, .max_faces = 1});
            if (!faces.ok()) return Fail(faces.status().WithContext(path.string()));
            if (faces->empty()) continue;
            const vision::Face& f = faces->front();
            auto attrs = (*estimator)->Estimate(*img, f.detection, {.pose = true});
            if (!attrs.ok()) return Fail(attrs.status().WithContext(path.string()));
            const vision::HeadPose& lm = f.quality.pose;
            const vision::HeadPose& mp = *attrs->pose;
            if (!std::isfinite(lm.yaw) || !std::isfinite(lm.pitch)) continue;
            ++st.faces;
            st.abs_yaw_lm += std::abs(lm.yaw);
            st.abs_yaw_model += std::abs(mp.yaw);
            st.yaw_diff += std::abs(lm.yaw - mp.yaw);
            st.pitch_diff += std::abs(lm.pitch - mp.pitch);
            st.roll_diff += std::abs(lm.roll - mp.roll);
            st.beyond45_lm += std::abs(lm.yaw) > 45;
            st.beyond45_model += std::abs(mp.yaw) > 45;
            st.same_sign += (lm.yaw >= 0) == (mp.yaw >= 0);
            if (!args.json && std::getenv("FG_POSE_EVAL_VERBOSE") != nullptr) {
                std::printf("%s lm %.1f %.1f %.1f model %.1f %.1f %.1f\n", path.c_str(), lm.yaw, lm.pitch, lm.roll,
                            mp.yaw, mp.pitch, mp.roll);
            }
        }
        out[kind] = st.Json();
    }
    if (args.json) {
        PrintJson(out);
    } else {
        for (const char* kind : {"frontal", "profile"}) {
            const auto& j = out[kind];
            std::printf("%-8s faces %d/%d  mean |yaw| landmarks %.1f model %.1f  mean |diff| yaw %.1f pitch %.1f roll %.1f  "
                        "|yaw|>45: landmarks %d model %d  same yaw sign %d\n",
                        kind, j["faces"].get<int>(), j["images"].get<int>(), j["mean_abs_yaw_landmarks"].get<double>(),
                        j["mean_abs_yaw_model"].get<double>(), j["mean_abs_yaw_difference"].get<double>(),
                        j["mean_abs_pitch_difference"].get<double>(), j["mean_abs_roll_difference"].get<double>(),
                        j["abs_yaw_over_45_landmarks"].get<int>(), j["abs_yaw_over_45_model"].get<int>(),
                        j["yaw_same_sign"].get<int>());
        }
    }
    return kExitOk;
}

// ---- facegate bench liveness --------------------------------------------------------------

struct BenchArgs {
    EngineOptions engine;
    std::string image = (SharedDir() / "data/antispoof/real_T1.jpg").string();
    std::vector<int> batches{1, 4};
    int runs = 30;
    bool json = false;
};

double MedianMs(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

/// Median milliseconds per face of `call` on `n` faces (after 3 warm-up calls).
template <typename F>
Result<double> TimePerFace(int runs, int n, F&& call) {
    std::vector<double> ms;
    for (int r = 0; r < runs + 3; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        FG_RETURN_IF_ERROR(call());
        const auto t1 = std::chrono::steady_clock::now();
        if (r >= 3) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / n);
    }
    return MedianMs(std::move(ms));
}

int RunBench(const BenchArgs& args) {
    auto ew = MakeEngineWorker(args.engine, false);
    if (!ew.ok()) return Fail(ew.status());
    auto img = LoadImage(args.image);
    if (!img.ok()) return Fail(img.status());
    auto faces = ew->worker->Detect(*img);
    if (!faces.ok()) return Fail(faces.status());
    if (faces->empty()) return Fail(NotFound("no face in " + args.image));

    nlohmann::json rows = nlohmann::json::array();
    auto add = [&](const std::string& name, int batch, double ms) {
        rows.push_back({{"model", name}, {"batch", batch}, {"ms_per_face", ms}});
        if (!args.json) std::printf("%-24s batch %2d  %7.2f ms/face\n", name.c_str(), batch, ms);
    };
    for (const char* preset : {"fr_liveness", "minifasnet", "fused"}) {
        auto model = ew->engine->Liveness(preset);
        if (!model.ok()) return Fail(model.status());
        for (int b : args.batches) {
            auto checker = (*model)->CreateChecker({.threshold = 0.5f, .max_batch = std::max(1, b)});
            if (!checker.ok()) return Fail(checker.status());
            const std::vector<vision::FaceDetection> dets(static_cast<std::size_t>(std::max(1, b)), faces->front());
            std::vector<vision::LivenessResult> res;
            auto ms = TimePerFace(args.runs, b, [&] { return (*checker)->CheckBatch(*img, dets, res); });
            if (!ms.ok()) return Fail(ms.status());
            add(std::string("liveness ") + preset, b, *ms);
        }
    }
    const std::pair<const char*, vision::AttributeRequest> cases[] = {
        {"pose", {.pose = true}}, {"age", {.age = true}}, {"gender", {.gender = true}},
        {"eyes", {.eyes = true}}, {"attributes (all 4)", vision::AttributeRequest::All()}};
    auto model = ew->engine->Attributes(vision::AttributeRequest::All());
    if (!model.ok()) return Fail(model.status());
    auto estimator = (*model)->CreateEstimator();
    if (!estimator.ok()) return Fail(estimator.status());
    for (const auto& [name, req] : cases) {
        for (int b : args.batches) {
            const std::vector<vision::FaceDetection> dets(static_cast<std::size_t>(std::max(1, b)), faces->front());
            std::vector<vision::FaceAttributes> res;
            auto ms = TimePerFace(args.runs, b, [&] { return (*estimator)->EstimateBatch(*img, dets, req, res); });
            if (!ms.ok()) return Fail(ms.status());
            add(name, b, *ms);
        }
    }
    if (args.json) {
        PrintJson({{"backend", args.engine.backend}, {"threads", args.engine.threads}, {"image", args.image},
                   {"runs", args.runs}, {"rows", rows}});
    }
    return kExitOk;
}

}  // namespace

void RegisterLivenessCommands(CLI::App& app, Action& action) {
    auto args = std::make_shared<LivenessArgs>();
    CLI::App* cmd = app.add_subcommand("liveness", "Passive liveness of every face (live probability, live/spoof)");
    args->engine.AddTo(*cmd, false);
    cmd->add_option("images", args->images, "Image files")->required();
    cmd->add_option("--model", args->model,
                    "fr_liveness, minifasnet, fused (default: " + std::string(vision::DefaultLivenessPreset()) +
                        "), or a pack name/manifest whose liveness models to use");
    cmd->add_option("--threshold", args->threshold, "Live when the score is at least this")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    cmd->add_flag("--json", args->json, "JSON output");
    cmd->callback([args, &action] { action = [args] { return RunLiveness(*args); }; });

    auto find = [&app](const std::string& name) -> CLI::App* {
        return SubcommandOf(app, name, name == "bench" ? "Benchmarks" : "Measure accuracy");
    };

    auto pose = std::make_shared<PoseEvalArgs>();
    CLI::App* ep = find("eval")->add_subcommand("pose", "Head pose: pose model vs landmark estimate on CFP frontal/profile images");
    pose->engine.AddTo(*ep, false);
    ep->add_option("--root", pose->root, "CFP root (holds Data/Images)");
    ep->add_option("--count", pose->count, "Subjects: image 01 of the frontal and profile sets of each")
        ->check(CLI::Range(1, 500))
        ->capture_default_str();
    ep->add_flag("--json", pose->json, "JSON output");
    ep->callback([pose, &action] { action = [pose] { return RunPoseEval(*pose); }; });

    auto bench = std::make_shared<BenchArgs>();
    CLI::App* bl = find("bench")->add_subcommand("liveness", "Per-face latency of the liveness, pose and attribute models");
    bench->engine.backend = "onednn";
    bench->engine.threads = 1;
    bench->engine.AddTo(*bl, false);
    bl->add_option("--image", bench->image, "Image with one face (default: the Silent-Face real sample)");
    bl->add_option("--batch", bench->batches, "Faces per call (the image's face repeated)")->capture_default_str();
    bl->add_option("--runs", bench->runs, "Timed calls per case")->check(CLI::PositiveNumber)->capture_default_str();
    bl->add_flag("--json", bench->json, "JSON output");
    bl->callback([bench, &action] { action = [bench] { return RunBench(*bench); }; });
}

}  // namespace fg::cli
