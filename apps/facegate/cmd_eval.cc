// SPDX-License-Identifier: Apache-2.0
// facegate eval pairs: 1:1 verification accuracy on LFW-style or CFP protocols.
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "common.h"
#include "fg/eval/face_choice.h"
#include "fg/eval/metrics.h"
#include "fg/eval/protocols.h"
#include "fg/image/image_io.h"

namespace fg::cli {
namespace {

struct EvalArgs {
    EngineOptions engine;
    std::string format;
    std::string pairs_file;
    std::string protocol = "FF";
    std::string root;
    std::string roc;
    int workers = 0;
    int limit = 0;
    std::string face;   // largest | center; "" = center for lfw, largest otherwise
    bool json = false;
};

int Run(const EvalArgs& args) {
    Result<std::vector<eval::ImagePair>> pairs = InvalidArgument("unknown format " + args.format);
    if (args.format == "lfw") {
        if (args.pairs_file.empty()) return Fail(InvalidArgument("--format lfw needs --pairs PAIRS.txt"));
        pairs = eval::LoadLfwPairs(args.pairs_file, args.root);
    } else if (args.format == "cfp") {
        pairs = eval::LoadCfpPairs(args.root, args.protocol);
    }
    if (!pairs.ok()) return Fail(pairs.status());
    if (args.limit > 0 && pairs->size() > static_cast<size_t>(args.limit)) {
        // Keep every fold represented: take pairs spread over the whole list.
        std::vector<eval::ImagePair> sub;
        const double step = double(pairs->size()) / args.limit;
        for (int i = 0; i < args.limit; ++i) sub.push_back((*pairs)[static_cast<size_t>(i * step)]);
        *pairs = std::move(sub);
    }

    // LFW's images are centred on the labelled person (LFW readme), often with others around.
    auto face = eval::ParseFaceChoice(!args.face.empty() ? args.face
                                      : args.format == "lfw" ? "center"
                                                             : "largest");
    if (!face.ok()) return Fail(face.status());

    const int hw = std::max(1u, std::thread::hardware_concurrency());
    const int workers = args.workers > 0 ? args.workers : hw;
    EngineOptions eo = args.engine;
    if (eo.threads == 0 && workers > 1) eo.threads = 1;   // parallel over images, not inside a forward
    auto cfg = eo.ToConfig(true);
    if (!cfg.ok()) return Fail(cfg.status());
    auto engine = vision::Engine::Create(*cfg);
    if (!engine.ok()) return Fail(engine.status());

    std::map<std::filesystem::path, size_t> index;
    std::vector<std::filesystem::path> images;
    for (const auto& p : *pairs) {
        for (const auto* path : {&p.a, &p.b}) {
            if (index.emplace(*path, images.size()).second) images.push_back(*path);
        }
    }
    const auto t0 = std::chrono::steady_clock::now();
    Status fatal;
    std::vector<MainFaceResult> results = EmbedMainFaces(**engine, images, workers, fatal, *face);
    if (!fatal.ok()) return Fail(fatal);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    int failed_detections = 0, load_errors = 0, multi_face_images = 0;
    for (size_t i = 0; i < results.size(); ++i) {
        multi_face_images += results[i].faces > 1;
        if (!results[i].error.empty()) {
            ++load_errors;
            std::cerr << "warning: " << images[i].string() << ": " << results[i].error << "\n";
        } else if (!results[i].embedding) {
            ++failed_detections;
        }
    }
    // A pair with a missing face scores lowest: it can only be accepted as "different".
    std::vector<eval::ScoredPair> scored;
    int failed_pairs = 0;
    for (const auto& p : *pairs) {
        const auto& ea = results[index[p.a]].embedding;
        const auto& eb = results[index[p.b]].embedding;
        float s = -std::numeric_limits<float>::infinity();
        if (ea && eb) {
            s = vision::CosineSimilarity(*ea, *eb);
        } else {
            ++failed_pairs;
        }
        scored.push_back({s, p.same, p.fold});
    }
    const std::vector<double> fars{1e-2, 1e-3, 1e-4};
    auto report = eval::EvaluateVerification(scored, fars);
    if (!report.ok()) return Fail(report.status());

    if (!args.roc.empty()) {
        std::ofstream f(args.roc);
        if (!f) return Fail(InvalidArgument("cannot write " + args.roc));
        f << "threshold,far,tar\n";
        for (const auto& pt : eval::ComputeRoc(scored)) f << pt.threshold << "," << pt.far << "," << pt.tar << "\n";
    }

    nlohmann::json tar = nlohmann::json::object();
    for (const auto& t : report->tar_at_far) {
        char key[16];
        std::snprintf(key, sizeof key, "%.0e", t.far_target);
        tar[key] = {{"tar", t.tar}, {"threshold", t.threshold}, {"far", t.far_actual}};
    }
    const vision::EmbedderInfo* ei = (*engine)->embedder_info();
    nlohmann::json out{{"format", args.format},
                       {"protocol", args.format == "cfp" ? args.protocol : ""},
                       {"pack", (*engine)->pack().name},
                       {"detector", (*engine)->detector_info().id},
                       {"model_id", ei ? ei->model_id : ""},
                       {"flip_fusion", !args.engine.no_flip},
                       {"accuracy", report->accuracy},
                       {"accuracy_std", report->accuracy_std},
                       {"fold_accuracy", report->fold_accuracy},
                       {"best_threshold", report->best_threshold},
                       {"tar_at_far", tar},
                       {"auc", report->auc},
                       {"pairs", report->pairs},
                       {"images", images.size()},
                       {"face", std::string(eval::FaceChoiceName(*face))},
                       {"multi_face_images", multi_face_images},
                       {"failed_detections", failed_detections},
                       {"failed_pairs", failed_pairs},
                       {"load_errors", load_errors},
                       {"seconds", seconds}};
    if (args.json) {
        PrintJson(out);
    } else {
        std::printf("%s %s: accuracy %.2f%% +- %.2f, TAR@FAR1e-3 %.2f%%, TAR@FAR1e-4 %.2f%%, best threshold %.3f, "
                    "%d pairs, %d images without a face, %d with more than one (face: %s) (%.0f s)\n",
                    args.format.c_str(), args.protocol.c_str(), 100 * report->accuracy, 100 * report->accuracy_std,
                    100 * tar["1e-03"]["tar"].get<double>(), 100 * tar["1e-04"]["tar"].get<double>(),
                    report->best_threshold, report->pairs, failed_detections, multi_face_images,
                    std::string(eval::FaceChoiceName(*face)).c_str(), seconds);
    }
    return load_errors == 0 ? kExitOk : kExitError;
}

}  // namespace

void RegisterEvalStrangersCommand(CLI::App& app, Action& action);  // cmd_eval_strangers.cc

void RegisterEvalCommands(CLI::App& app, Action& action) {
    RegisterEvalStrangersCommand(app, action);
    CLI::App* ev = SubcommandOf(app, "eval", "Measure accuracy");
    auto args = std::make_shared<EvalArgs>();
    CLI::App* pairs = ev->add_subcommand("pairs", "1:1 verification on a pairs protocol (10-fold)");
    args->engine.AddTo(*pairs, true);
    pairs->add_option("--format", args->format, "lfw or cfp")->required()->check(CLI::IsMember({"lfw", "cfp"}));
    pairs->add_option("--pairs", args->pairs_file, "LFW pairs.txt (format lfw)");
    pairs->add_option("--protocol", args->protocol, "FF or FP (format cfp)")
        ->check(CLI::IsMember({"FF", "FP", "ff", "fp"}))
        ->capture_default_str();
    pairs->add_option("--root", args->root, "Image root (lfw: <Name>/<Name>_NNNN.jpg; cfp: holds Protocol/ and Data/)")
        ->required();
    pairs->add_option("--roc", args->roc, "Write the ROC curve as CSV (threshold,far,tar)");
    pairs->add_option("--workers", args->workers, "Parallel workers (default: one per core)");
    pairs->add_option("--limit", args->limit, "Use only N pairs spread over all folds (quick checks)");
    pairs->add_option("--face", args->face,
                      "Which face of an image a pair means: largest, or center (nearest the image "
                      "centre); default center for --format lfw (LFW images are centred on the "
                      "labelled face), largest otherwise")
        ->check(CLI::IsMember({"largest", "center"}));
    pairs->add_flag("--json", args->json, "JSON output");
    pairs->callback([args, &action] { action = [args] { return Run(*args); }; });
}

}  // namespace fg::cli
