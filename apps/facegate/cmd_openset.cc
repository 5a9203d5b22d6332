// SPDX-License-Identifier: Apache-2.0
// facegate eval openset: open-set identification accuracy on CFP's frontal images through the
// real gallery (enroll, identify with threshold and margin), with the threshold calibrated on
// data disjoint from every probe.
//
// Protocol (reproducible, no randomness): people sorted by folder name; even positions are
// enrolled, odd positions are strangers. An enrolled person's first --enroll-images frontal
// photos are enrolled, the rest are genuine probes; every frontal photo of a stranger is an
// impostor probe. The threshold is calibrated on pairs among the enrollment photos only.
// The score math (calibration, DIR/FPIR) is fg::eval's; this file does the I/O and the gallery.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "common.h"
#include "fg/eval/calibration.h"
#include "fg/eval/openset.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"

namespace fg::cli {
namespace {

struct OpenSetArgs {
    EngineOptions engine;
    std::string root;
    int enroll_images = 5;
    double far = 1e-5;
    float margin = 0.05f;
    int workers = 2;
    bool json = false;
};

struct Photo {
    std::filesystem::path path;
    int person = 0;  ///< index into the people list
    enum Role { kEnroll, kGenuine, kImpostor } role = kEnroll;
    std::optional<vision::Embedding> embedding;
};

/// Main-face embedding of every photo, one Worker per thread.
Status EmbedPhotos(const vision::Engine& engine, std::vector<Photo>& photos, int workers) {
    std::vector<std::filesystem::path> paths;
    paths.reserve(photos.size());
    for (const Photo& p : photos) paths.push_back(p.path);
    Status fatal;
    std::vector<MainFaceResult> r = EmbedMainFaces(engine, paths, workers, fatal);
    for (size_t i = 0; i < r.size(); ++i) photos[i].embedding = std::move(r[i].embedding);
    return fatal;
}

/// The JSON row of one operating point (key names kept from before the math moved to fg::eval).
nlohmann::json RatesJson(const eval::OpenSetRates& r) {
    return {{"threshold", r.threshold},
            {"margin", r.margin},
            {"tar", r.tar},
            {"true_accepts", r.true_accepts},
            {"wrong_identity_rate", r.wrong_identity_rate},
            {"far", r.far},
            {"false_accepts", r.false_accepts}};
}

int RunOpenSet(const OpenSetArgs& a) {
    const auto images = std::filesystem::path(a.root) / "Data" / "Images";
    std::error_code ec;
    if (!std::filesystem::is_directory(images, ec))
        return Fail(NotFound(images.string() + " is not a folder (expected the CFP layout)"));
    std::vector<std::string> people;
    for (const auto& d : std::filesystem::directory_iterator(images, ec)) {
        if (d.is_directory() && std::filesystem::is_directory(d.path() / "frontal"))
            people.push_back(d.path().filename().string());
    }
    std::sort(people.begin(), people.end());
    if (people.size() < 4) return Fail(InvalidArgument("too few people under " + images.string()));
    std::vector<Photo> photos;
    for (size_t p = 0; p < people.size(); ++p) {
        std::vector<std::filesystem::path> files;
        for (const auto& f : std::filesystem::directory_iterator(images / people[p] / "frontal"))
            files.push_back(f.path());
        std::sort(files.begin(), files.end());
        const bool enrolled = p % 2 == 0;
        for (size_t i = 0; i < files.size(); ++i) {
            Photo ph{files[i], int(p), Photo::kImpostor, std::nullopt};
            if (enrolled)
                ph.role = int(i) < a.enroll_images ? Photo::kEnroll : Photo::kGenuine;
            photos.push_back(std::move(ph));
        }
    }
    auto cfg = a.engine.ToConfig(true);
    if (!cfg.ok()) return Fail(cfg.status());
    auto engine = vision::Engine::Create(*cfg);
    if (!engine.ok()) return Fail(engine.status());
    const std::string model = (*engine)->embedder_info()->model_id;
    const auto t0 = std::chrono::steady_clock::now();
    if (Status s = EmbedPhotos(**engine, photos, a.workers); !s.ok()) return Fail(s);
    const double embed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // Calibration on the enrollment photos only: disjoint from every probe.
    std::vector<const Photo*> enroll;
    for (const Photo& p : photos) {
        if (p.role == Photo::kEnroll && p.embedding) enroll.push_back(&p);
    }
    std::vector<std::vector<float>> enroll_vectors;
    std::vector<int> enroll_people;
    for (const Photo* p : enroll) {
        enroll_vectors.push_back(p->embedding->values);
        enroll_people.push_back(p->person);
    }
    auto pair_scores = eval::ScoreAllPairs(enroll_vectors, enroll_people);
    if (!pair_scores.ok()) return Fail(pair_scores.status());
    auto cal = eval::Calibrate(std::move(pair_scores->genuine), std::move(pair_scores->impostor));
    if (!cal.ok()) return Fail(cal.status());

    // The real gallery: a temporary SQLite file with a throwaway key.
    char tmpl[] = "/tmp/fg-openset-XXXXXX";
    if (!mkdtemp(tmpl)) return Fail(Internal("mkdtemp failed"));
    const std::string dir = tmpl;
    struct Cleanup {
        std::string dir;
        ~Cleanup() {
            std::error_code e;
            std::filesystem::remove_all(dir, e);
        }
    } cleanup{dir};
    auto key = gallery::ParseKey(std::string(64, '7'));
    auto g = gallery::Gallery::Open({.location = dir + "/openset.db",
                                     .keys = std::make_shared<gallery::KeyRing>(*key),
                                     .index = {},
                                     .snapshot_path = {}});
    if (!g.ok()) return Fail(g.status());
    for (const Photo* p : enroll) {
        auto r = (*g)->Enroll(people[size_t(p->person)],
                              {.model_id = model,
                               .create_subject = true,
                               .display_name = "",
                               .metadata = "{}",
                               .force = true},
                              std::vector<gallery::NewFace>{
                                  {p->embedding->values, -1.f, p->path.string(), {}}});
        if (!r.ok()) return Fail(r.status().WithContext(p->path.string()));
    }
    // Subject ids are the people's folder names, so a candidate maps back to its person index.
    auto person_of = [&people](const std::string& subject) {
        auto it = std::lower_bound(people.begin(), people.end(), subject);
        return it != people.end() && *it == subject ? int(it - people.begin()) : -1;
    };
    std::vector<eval::OpenSetProbe> probes;
    std::int64_t no_face[3] = {0, 0, 0};
    for (const Photo& p : photos) {
        if (!p.embedding) ++no_face[p.role];
        if (p.role == Photo::kEnroll) continue;
        eval::OpenSetProbe o;
        o.truth = p.role == Photo::kGenuine ? p.person : -1;
        o.has_face = p.embedding.has_value();
        if (o.has_face) {
            auto id = (*g)->Identify(*p.embedding, 2);
            if (!id.ok()) return Fail(id.status().WithContext(p.path.string()));
            if (!id->candidates.empty()) {
                o.top1 = person_of(id->candidates[0].subject_id);
                o.s1 = id->candidates[0].score;
            }
            if (id->candidates.size() > 1) o.s2 = id->candidates[1].score;
        }
        probes.push_back(o);
    }
    std::int64_t genuine_probes = 0, impostor_probes = 0;
    for (const auto& p : probes) (p.truth >= 0 ? genuine_probes : impostor_probes)++;

    nlohmann::json points = nlohmann::json::array();
    nlohmann::json chosen;
    for (const auto& op : cal->points) {
        nlohmann::json row = RatesJson(eval::EvaluateOpenSet(probes, op.threshold, a.margin));
        row["calibrated_for_pair_far"] = op.target_far;
        row["resolvable"] = op.resolvable;
        if (&op == eval::FindPoint(*cal, a.far)) chosen = row;
        points.push_back(row);
    }
    const float pack_threshold = vision::DefaultVerifyThreshold((*engine)->pack());
    nlohmann::json pack_row = RatesJson(eval::EvaluateOpenSet(probes, pack_threshold, a.margin));
    nlohmann::json out{
        {"root", a.root},
        {"model_id", model},
        {"protocol",
         "CFP frontal; people sorted by folder, even positions enrolled (first " +
             std::to_string(a.enroll_images) +
             " photos), odd positions strangers; threshold calibrated on pairs among the "
             "enrollment photos only"},
        {"enrolled_people", (people.size() + 1) / 2},
        {"stranger_people", people.size() / 2},
        {"enrolled_templates", enroll.size()},
        {"genuine_probes", genuine_probes},
        {"impostor_probes", impostor_probes},
        {"no_face", {{"enroll", no_face[0]}, {"genuine", no_face[1]}, {"impostor", no_face[2]}}},
        {"calibration_pairs",
         {{"genuine", cal->genuine_pairs}, {"impostor", cal->impostor_pairs}}},
        {"rates_note",
         "tar: genuine probes identified as the right person (over all genuine probes, no face "
         "counts as a miss); far: impostor probes with a face identified as anyone"},
        {"calibrated", chosen},
        {"points", points},
        {"pack_threshold", pack_row},
        {"embed_s", embed_s}};
    if (a.json) {
        PrintJson(out);
    } else {
        std::printf("enrolled %zu people (%zu templates); %lld genuine, %lld impostor probes\n",
                    (people.size() + 1) / 2, enroll.size(), (long long)genuine_probes,
                    (long long)impostor_probes);
        for (const auto& r : points) {
            std::printf("pair FAR %-7g threshold %.4f: TAR %.4f  wrong id %.4f  open-set FAR %.4f\n",
                        r["calibrated_for_pair_far"].get<double>(),
                        r["threshold"].get<float>(), r["tar"].get<double>(),
                        r["wrong_identity_rate"].get<double>(), r["far"].get<double>());
        }
        std::printf("pack threshold %.4f: TAR %.4f  open-set FAR %.4f\n", pack_threshold,
                    pack_row["tar"].get<double>(), pack_row["far"].get<double>());
    }
    return kExitOk;
}

}  // namespace

void RegisterOpenSetCommand(CLI::App& app, Action& action) {
    auto a = std::make_shared<OpenSetArgs>();
    CLI::App* eval = SubcommandOf(app, "eval", "Measure accuracy");
    CLI::App* cmd = eval->add_subcommand(
        "openset", "Open-set identification on CFP frontal: enroll half, strangers the other half");
    a->engine.AddTo(*cmd, true);
    cmd->add_option("--root", a->root, "CFP root (holds Data/Images/<id>/frontal/NN.jpg)")
        ->required();
    cmd->add_option("--enroll-images", a->enroll_images, "Photos enrolled per enrolled person")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    cmd->add_option("--far", a->far, "Pairwise FAR whose calibrated threshold is reported first")
        ->check(CLI::IsMember({1e-2, 1e-3, 1e-4, 1e-5}))
        ->capture_default_str();
    cmd->add_option("--margin", a->margin, "Identify margin to the runner-up")
        ->capture_default_str();
    cmd->add_option("--workers", a->workers, "Worker threads")->capture_default_str();
    cmd->add_flag("--json", a->json, "JSON output");
    cmd->callback([a, &action] { action = [a] { return RunOpenSet(*a); }; });
}

}  // namespace fg::cli
