// SPDX-License-Identifier: Apache-2.0
// facegate demo: enroll the people of dlib's example set into a real gallery (a temporary
// encrypted SQLite file with a freshly generated key, removed afterwards) and identify them in
// held-out photos through Gallery::Identify, with one person left out of the gallery to show the
// "unknown" answer.
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "common.h"
#include "fg/base/paths.h"
#include "fg/gallery/crypto.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"

namespace fg::cli {
namespace {

struct DemoArgs {
    EngineOptions engine;
    std::string root;
    int enroll = 3;
    std::string unknown = "John_Simm";
    float threshold = -1.f;
    bool json = false;
};

std::string DefaultRoot() { return (DlibExamplesDir() / "johns").string(); }

int RunDemo(const DemoArgs& args) {
    const std::filesystem::path root = args.root.empty() ? DefaultRoot() : args.root;
    std::error_code ec;
    if (!std::filesystem::is_directory(root, ec)) {
        return Fail(NotFound(root.string() + " is not a folder (install Debian's libdlib19.1, or pass --root)"));
    }
    auto ew = MakeEngineWorker(args.engine, true);
    if (!ew.ok()) return Fail(ew.status());
    const auto& engine = ew->engine;
    auto& worker = ew->worker;
    const float threshold = args.threshold >= 0 ? args.threshold : vision::DefaultVerifyThreshold(engine->pack());

    struct Person {
        std::string name;
        std::vector<std::filesystem::path> photos;
    };
    std::vector<Person> people;
    for (const auto& d : std::filesystem::directory_iterator(root)) {
        if (!d.is_directory()) continue;
        Person p{d.path().filename().string(), {}};
        for (const auto& f : std::filesystem::directory_iterator(d.path())) p.photos.push_back(f.path());
        std::sort(p.photos.begin(), p.photos.end());
        if (!p.photos.empty()) people.push_back(std::move(p));
    }
    std::sort(people.begin(), people.end(), [](const Person& a, const Person& b) { return a.name < b.name; });
    if (people.empty()) return Fail(NotFound("no person folders under " + root.string()));

    auto analyze = [&](const std::filesystem::path& path) -> Result<vision::Face> {
        FG_ASSIGN_OR_RETURN(cv::Mat img, LoadImage(path));
        FG_ASSIGN_OR_RETURN(auto faces, worker->Analyze(img, {.embed = true, .keep_aligned = false, .max_faces = 1}));
        if (faces.empty() || !faces.front().embedding) return NotFound("no face in " + path.string());
        return std::move(faces.front());
    };

    // The real gallery, in a temporary folder removed on every way out (declared before the
    // gallery, so the gallery closes first).
    char tmpl[] = "/tmp/fg-demo-XXXXXX";
    if (!mkdtemp(tmpl)) return Fail(Internal("mkdtemp failed"));
    struct Cleanup {
        std::filesystem::path dir;
        ~Cleanup() {
            std::error_code e;
            std::filesystem::remove_all(dir, e);
        }
    } cleanup{tmpl};
    auto key = gallery::CreateKeyFile(cleanup.dir / "demo.key");
    if (!key.ok()) return Fail(key.status());
    auto g = gallery::Gallery::Open({.location = (cleanup.dir / "demo.db").string(),
                                     .keys = std::make_shared<gallery::KeyRing>(*key),
                                     .index = {},
                                     .snapshot_path = {},
                                     .default_threshold = threshold});
    if (!g.ok()) return Fail(g.status());

    // Enroll the first `enroll` photos of each person (except the unknown one), one template each.
    const std::string model_id = engine->embedder_info()->model_id;
    for (const Person& p : people) {
        if (p.name == args.unknown) continue;
        const int n = std::min<int>(args.enroll, static_cast<int>(p.photos.size()) - 1);
        std::vector<gallery::NewFace> faces;
        for (int i = 0; i < n; ++i) {
            auto f = analyze(p.photos[i]);
            if (!f.ok()) return Fail(f.status());
            faces.push_back({std::move(f->embedding->values), f->quality.score, p.photos[i].string(), {}});
        }
        auto r = (*g)->Enroll(p.name, {.model_id = model_id}, faces);
        if (!r.ok()) return Fail(r.status().WithContext("enrolling " + p.name));
        if (!r->rejected.empty()) {
            const auto& rej = r->rejected.front();
            return Fail(FailedPrecondition("enrolling " + p.name + ": " + p.photos[rej.face].string() +
                                           " refused (" + rej.reason + ": " + rej.detail + ")"));
        }
    }

    nlohmann::json results = nlohmann::json::array();
    int correct = 0, total = 0;
    for (const Person& p : people) {
        const bool enrolled = p.name != args.unknown;
        const size_t first = enrolled ? std::min<size_t>(args.enroll, p.photos.size() - 1) : 0;
        for (size_t i = first; i < p.photos.size(); ++i) {
            auto f = analyze(p.photos[i]);
            if (!f.ok()) return Fail(f.status());
            auto id = (*g)->Identify(*f->embedding);
            if (!id.ok()) return Fail(id.status().WithContext(p.photos[i].string()));
            const std::string best = id->candidates.empty() ? "unknown" : id->candidates.front().subject_id;
            const float best_score = id->candidates.empty() ? -1.f : id->candidates.front().score;
            const std::string decision = id->known ? id->subject_id : "unknown";
            const std::string expected = enrolled ? p.name : "unknown";
            const bool ok = decision == expected;
            correct += ok;
            ++total;
            results.push_back({{"photo", p.photos[i].string()},
                               {"expected", expected},
                               {"decision", decision},
                               {"reason", id->reason},
                               {"best_match", best},
                               {"score", best_score},
                               {"correct", ok}});
            if (!args.json) {
                std::printf("%-16s %-28s -> %-16s score %.3f %s\n", expected.c_str(),
                            p.photos[i].filename().c_str(), decision.c_str(), best_score, ok ? "" : "  <-- WRONG");
            }
        }
    }
    if (Status s = (*g)->Close(); !s.ok()) std::cerr << "warning: " << s.ToString() << "\n";
    if (args.json) {
        PrintJson({{"model_id", model_id},
                   {"threshold", threshold},
                   {"margin", (*g)->settings().margin},
                   {"enrolled_per_person", args.enroll},
                   {"not_enrolled", args.unknown},
                   {"correct", correct},
                   {"total", total},
                   {"results", results}});
    } else {
        std::printf("\n%d of %d photos identified correctly (threshold %.3f; %s not enrolled, must be 'unknown')\n",
                    correct, total, threshold, args.unknown.c_str());
    }
    return correct == total ? kExitOk : kExitError;
}

}  // namespace

void RegisterDemoCommand(CLI::App& app, Action& action) {
    auto args = std::make_shared<DemoArgs>();
    CLI::App* demo = app.add_subcommand("demo", "Enroll dlib's example people and identify held-out photos");
    args->engine.AddTo(*demo, true);
    demo->add_option("--root", args->root, "Folder with one sub-folder of photos per person (default: dlib's johns)");
    demo->add_option("--enroll", args->enroll, "Photos enrolled per person")->check(CLI::Range(1, 100))->capture_default_str();
    demo->add_option("--unknown", args->unknown, "Person left out of the gallery")->capture_default_str();
    demo->add_option("--threshold", args->threshold, "Decision threshold (default: the pack's)");
    demo->add_flag("--json", args->json, "JSON output");
    demo->callback([args, &action] { action = [args] { return RunDemo(*args); }; });
}

}  // namespace fg::cli
