// SPDX-License-Identifier: Apache-2.0
// facegate eval strangers: clustering quality of fg::history::StrangerClusterer on CFP.
//
// Protocol: every frontal photo of the first --people identities (folders sorted by name) is an
// unknown sighting; the sightings are shuffled (--seed, --orders shuffles) and assigned one by
// one, as a camera would deliver them. For each clustering rule and threshold the report gives
//  - purity: the fraction of sightings in a stranger whose majority identity is theirs, and the
//    number of strangers mixing two or more identities (the target is 0);
//  - fragmentation: strangers per identity (mean and distribution) and the fraction of
//    identities with more than half of their sightings in one stranger (the target is ~1).
// The default threshold is the pack's verify threshold (what a new gallery starts with).
//
// With --video (repeatable) it runs each clip through the stream pipeline with an empty gallery
// instead, takes every track's unknown decision (its fused embedding) as a sighting and clusters
// them. There are no labels, so the check is a constraint: two tracks matched to detections in
// the same frame are two people and must never share a stranger (violations are counted).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <mutex>
#include <set>

#include "common.h"
#include "fg/pipeline/pipeline.h"
#include "stream_root.h"
#include "fg/history/strangers.h"
#include "fg/vision/embedder.h"

namespace fg::cli {
namespace {

struct StrangersArgs {
    EngineOptions engine;
    std::string root;
    std::vector<std::string> videos;
    int people = 0;  // 0 = all
    std::vector<float> thresholds;
    int orders = 3;
    unsigned seed = 1;
    int max_exemplars = 8;
    int workers = 2;
    bool json = false;
};

struct Rule {
    const char* name;
    history::StrangerRule rule;
    float margin;
};

constexpr Rule kRules[] = {
    {"exemplar+centroid+0.05", history::StrangerRule::kExemplarAndCentroid, 0.05f},  // default
    {"exemplar+centroid", history::StrangerRule::kExemplarAndCentroid, 0.0f},
    {"exemplar", history::StrangerRule::kExemplar, 0.0f},
    {"centroid", history::StrangerRule::kCentroid, 0.0f},
};

struct Quality {
    int sightings = 0, identities = 0, strangers = 0, mixed_strangers = 0, mostly_one = 0;
    double purity = 0, strangers_per_identity = 0;
    std::map<int, int> per_identity;  // strangers an identity spans -> identities
    std::vector<std::vector<int>> mixed;  // identities of each mixed stranger
};

Quality Measure(const history::StrangerClusterer& c, const std::vector<std::int64_t>& stranger_of,
                const std::vector<int>& identity) {
    Quality q;
    std::map<std::int64_t, std::map<int, int>> by_stranger;   // stranger -> identity -> count
    std::map<int, std::map<std::int64_t, int>> by_identity;   // identity -> stranger -> count
    for (size_t i = 0; i < identity.size(); ++i) {
        if (stranger_of[i] == 0) continue;
        ++q.sightings;
        ++by_stranger[stranger_of[i]][identity[i]];
        ++by_identity[identity[i]][stranger_of[i]];
    }
    int majority = 0;
    for (const auto& [s, ids] : by_stranger) {
        int best = 0;
        for (const auto& [id, n] : ids) best = std::max(best, n);
        majority += best;
        q.mixed_strangers += ids.size() > 1;
        if (ids.size() > 1) {
            q.mixed.emplace_back();
            for (const auto& [id, n] : ids) q.mixed.back().push_back(id);
        }
    }
    for (const auto& [id, ss] : by_identity) {
        int total = 0, best = 0;
        for (const auto& [s, n] : ss) {
            total += n;
            best = std::max(best, n);
        }
        q.mostly_one += 2 * best > total;
        ++q.per_identity[std::min<int>(int(ss.size()), 5)];
        q.strangers_per_identity += double(ss.size());
    }
    q.identities = int(by_identity.size());
    q.strangers = int(c.size());
    q.purity = q.sightings ? double(majority) / q.sightings : 0;
    q.strangers_per_identity /= std::max(1, q.identities);
    return q;
}

/// Collects a stream's unknown decisions and which tracks were seen in the same frame.
/// Thread-safety: called on the stream's thread, read after the pipeline stopped; a mutex
/// covers both.
class TrackCollector : public pipeline::PipelineObserver {
  public:
    void OnDecision(const std::string&, const pipeline::Outcome& o) override {
        if (o.kind != pipeline::Outcome::Kind::kUnknown || o.fused_embedding.empty()) return;
        std::lock_guard lock(mu_);
        auto [it, fresh] = sightings_.try_emplace(o.track_id);
        if (fresh) order_.push_back(o.track_id);
        it->second = {o.fused_embedding, o.best_quality};  // the latest fusion of the track
    }
    void OnFrame(const pipeline::FrameView& view) override {
        if (!view.tracks) return;
        std::vector<std::uint64_t> seen;
        for (const auto& t : *view.tracks)
            if (t.frames_since_match == 0 && t.ever_confirmed) seen.push_back(t.id);
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < seen.size(); ++i)
            for (size_t j = i + 1; j < seen.size(); ++j)
                together_.insert({std::min(seen[i], seen[j]), std::max(seen[i], seen[j])});
    }
    struct Sighting {
        std::vector<float> embedding;
        float quality = 0;
    };
    std::mutex mu_;
    std::map<std::uint64_t, Sighting> sightings_;
    std::vector<std::uint64_t> order_;  // tracks in order of their first decision
    std::set<std::pair<std::uint64_t, std::uint64_t>> together_;
};

int RunVideos(const StrangersArgs& a) {
    StreamRootConfig rootc{a.engine, {}, {}};
    rootc.gallery_follow = std::chrono::milliseconds(0);
    auto root = StreamRoot::Build(rootc);  // no gallery: every face is unknown
    if (!root.ok()) return Fail(root.status());
    const float pack_threshold = vision::DefaultVerifyThreshold(root->engine->pack());
    std::vector<float> thresholds = a.thresholds;
    if (thresholds.empty()) thresholds = {pack_threshold, 0.30f, 0.35f, 0.45f, 0.50f};
    nlohmann::json clips = nlohmann::json::array();
    for (const std::string& video : a.videos) {
        auto collector = std::make_shared<TrackCollector>();
        pipeline::PipelineConfig pc;
        pipeline::StreamSpec s;
        s.source.id = "eval";
        s.source.uri = video;
        s.source.process_every_frame = true;  // every frame, as fast as the CPU allows
        pc.streams.push_back(s);
        auto p = root->MakePipeline(pc, nullptr, {collector});
        if (!p.ok()) return Fail(p.status());
        if (Status st = (*p)->Start(); !st.ok()) return Fail(st);
        (*p)->WaitFinished(std::chrono::hours(2));
        (*p)->Stop();
        const pipeline::PipelineStats stats = (*p)->Stats();
        if (!stats.streams.empty() && stats.streams[0].source.state == stream::SourceState::kFailed)
            return Fail(InvalidArgument("cannot read video " + video + ": " +
                                        stats.streams[0].source.last_error));
        std::lock_guard lock(collector->mu_);
        nlohmann::json rows = nlohmann::json::array();
        for (const Rule& rule : kRules) {
            for (float threshold : thresholds) {
                history::StrangerClusterer c({.threshold = threshold,
                                              .max_exemplars = a.max_exemplars,
                                              .centroid_margin = rule.margin,
                                              .rule = rule.rule});
                std::int64_t next = 1;
                for (std::uint64_t t : collector->order_) {
                    const auto& sg = collector->sightings_[t];
                    next += c.Assign(std::int64_t(t), sg.embedding, sg.quality, next).created;
                }
                int violations = 0, checked = 0;
                for (const auto& [x, y] : collector->together_) {
                    const auto sx = c.StrangerOf(std::int64_t(x)), sy = c.StrangerOf(std::int64_t(y));
                    if (sx == 0 || sy == 0) continue;  // a track without an unknown decision
                    ++checked;
                    violations += sx == sy;
                }
                rows.push_back({{"rule", rule.name},
                                {"threshold", threshold},
                                {"default", threshold == pack_threshold},
                                {"strangers", c.size()},
                                {"co_visible_pairs", checked},
                                {"violations", violations}});
            }
        }
        clips.push_back({{"video", video},
                         {"frames", stats.frames},
                         {"tracks_with_unknown_decision", collector->order_.size()},
                         {"results", rows}});
    }
    nlohmann::json out{{"pack", root->engine->pack().name},
                       {"pack_threshold", pack_threshold},
                       {"max_exemplars", a.max_exemplars},
                       {"clips", clips}};
    if (a.json) {
        PrintJson(out);
        return kExitOk;
    }
    for (const auto& clip : clips) {
        std::printf("%s: %d frames, %d tracks decided unknown\n",
                    clip["video"].get<std::string>().c_str(), clip["frames"].get<int>(),
                    clip["tracks_with_unknown_decision"].get<int>());
        std::printf("  %-22s %9s %9s %10s %10s\n", "rule", "threshold", "strangers", "co-visible",
                    "violations");
        for (const auto& r : clip["results"])
            std::printf("  %-22s %9.3f %9d %10d %10d%s\n", r["rule"].get<std::string>().c_str(),
                        r["threshold"].get<double>(), r["strangers"].get<int>(),
                        r["co_visible_pairs"].get<int>(), r["violations"].get<int>(),
                        r["default"].get<bool>() ? "  (default)" : "");
    }
    return kExitOk;
}

int RunStrangers(const StrangersArgs& a) {
    if (!a.videos.empty()) return RunVideos(a);
    if (a.root.empty()) return Fail(InvalidArgument("eval strangers needs --root CFP or --video FILE"));
    const auto images = std::filesystem::path(a.root) / "Data" / "Images";
    std::error_code ec;
    if (!std::filesystem::is_directory(images, ec))
        return Fail(NotFound(images.string() + " is not a folder (expected the CFP layout)"));
    std::vector<std::string> people;
    for (const auto& d : std::filesystem::directory_iterator(images, ec))
        if (d.is_directory() && std::filesystem::is_directory(d.path() / "frontal"))
            people.push_back(d.path().filename().string());
    std::sort(people.begin(), people.end());
    if (a.people > 0 && people.size() > size_t(a.people)) people.resize(size_t(a.people));
    if (people.size() < 2) return Fail(InvalidArgument("too few people under " + images.string()));
    std::vector<std::filesystem::path> paths;
    std::vector<int> person;
    for (size_t p = 0; p < people.size(); ++p) {
        std::vector<std::filesystem::path> files;
        for (const auto& f : std::filesystem::directory_iterator(images / people[p] / "frontal"))
            files.push_back(f.path());
        std::sort(files.begin(), files.end());
        for (auto& f : files) {
            paths.push_back(std::move(f));
            person.push_back(int(p));
        }
    }

    auto cfg = a.engine.ToConfig(true);
    if (!cfg.ok()) return Fail(cfg.status());
    auto engine = vision::Engine::Create(*cfg);
    if (!engine.ok()) return Fail(engine.status());
    const float pack_threshold = vision::DefaultVerifyThreshold((*engine)->pack());
    const auto t0 = std::chrono::steady_clock::now();
    Status fatal;
    std::vector<MainFaceResult> faces = EmbedMainFaces(**engine, paths, a.workers, fatal);
    if (!fatal.ok()) return Fail(fatal);
    const double embed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<size_t> usable;  // photos with a face
    int no_face = 0;
    for (size_t i = 0; i < faces.size(); ++i) {
        if (faces[i].embedding) {
            usable.push_back(i);
        } else {
            ++no_face;
        }
    }

    std::vector<float> thresholds = a.thresholds;
    if (thresholds.empty()) thresholds = {pack_threshold, 0.30f, 0.35f, 0.45f, 0.50f};
    nlohmann::json rows = nlohmann::json::array();
    const auto t1 = std::chrono::steady_clock::now();
    std::int64_t assignments = 0;
    for (const Rule& rule : kRules) {
        for (float threshold : thresholds) {
            // Averaged over --orders shuffles (the online result depends on arrival order).
            Quality sum;
            std::map<int, int> spread;
            int worst_mixed = 0;
            std::map<std::string, int> mixed_sets;  // "idA+idB" -> shuffles it appeared in
            for (int o = 0; o < a.orders; ++o) {
                std::vector<size_t> order = usable;
                std::mt19937 rng(a.seed + unsigned(o));
                std::shuffle(order.begin(), order.end(), rng);
                history::StrangerClusterer c({.threshold = threshold,
                                              .max_exemplars = a.max_exemplars,
                                              .centroid_margin = rule.margin,
                                              .rule = rule.rule});
                std::vector<std::int64_t> stranger_of(paths.size(), 0);
                std::int64_t next = 1;
                for (size_t i : order) {
                    const auto m = c.Assign(std::int64_t(i) + 1, faces[i].embedding->values, 1.0f, next);
                    next += m.created;
                    ++assignments;
                }
                for (size_t i : order) stranger_of[i] = c.StrangerOf(std::int64_t(i) + 1);
                const Quality q = Measure(c, stranger_of, person);
                sum.sightings = q.sightings;
                sum.identities = q.identities;
                sum.strangers += q.strangers;
                sum.mixed_strangers += q.mixed_strangers;
                worst_mixed = std::max(worst_mixed, q.mixed_strangers);
                sum.mostly_one += q.mostly_one;
                sum.purity += q.purity;
                sum.strangers_per_identity += q.strangers_per_identity;
                for (const auto& [k, n] : q.per_identity) spread[k] += n;
                for (const auto& ids : q.mixed) {
                    std::string key;
                    for (int id : ids) key += (key.empty() ? "" : "+") + people[size_t(id)];
                    ++mixed_sets[key];
                }
            }
            const double n = a.orders;
            nlohmann::json dist = nlohmann::json::object();
            for (const auto& [k, v] : spread) dist[k >= 5 ? "5+" : std::to_string(k)] = v / n;
            rows.push_back({{"rule", rule.name},
                            {"threshold", threshold},
                            {"default", threshold == pack_threshold},
                            {"purity", sum.purity / n},
                            {"mixed_strangers", sum.mixed_strangers / n},
                            {"mixed_strangers_worst", worst_mixed},
                            {"strangers", sum.strangers / n},
                            {"strangers_per_identity", sum.strangers_per_identity / n},
                            {"identities_mostly_in_one", sum.mostly_one / n / std::max(1, sum.identities)},
                            {"identity_spread", dist},
                            {"mixed_identities", mixed_sets}});
        }
    }
    const double cluster_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    nlohmann::json out{{"pack", (*engine)->pack().name},
                       {"model_id", (*engine)->embedder_info() ? (*engine)->embedder_info()->model_id : ""},
                       {"identities", people.size()},
                       {"photos", paths.size()},
                       {"no_face", no_face},
                       {"orders", a.orders},
                       {"max_exemplars", a.max_exemplars},
                       {"pack_threshold", pack_threshold},
                       {"embed_seconds", embed_s},
                       {"cluster_us_per_sighting", assignments ? 1e6 * cluster_s / double(assignments) : 0},
                       {"results", rows}};
    if (a.json) {
        PrintJson(out);
        return kExitOk;
    }
    std::printf("CFP frontal: %zu identities, %zu photos (%d without a face), %d shuffles, pack "
                "threshold %.3f\n",
                people.size(), paths.size(), no_face, a.orders, pack_threshold);
    std::printf("%-22s %9s %8s %7s %9s %11s %12s\n", "rule", "threshold", "purity", "mixed",
                "strangers", "per-ident.", "mostly-one");
    for (const auto& r : rows)
        std::printf("%-22s %9.3f %8.4f %7.1f %9.1f %11.3f %12.4f%s\n",
                    r["rule"].get<std::string>().c_str(), r["threshold"].get<double>(),
                    r["purity"].get<double>(), r["mixed_strangers"].get<double>(),
                    r["strangers"].get<double>(), r["strangers_per_identity"].get<double>(),
                    r["identities_mostly_in_one"].get<double>(), r["default"].get<bool>() ? "  (default)" : "");
    return kExitOk;
}

}  // namespace

void RegisterEvalStrangersCommand(CLI::App& app, Action& action) {
    auto a = std::make_shared<StrangersArgs>();
    CLI::App* eval = SubcommandOf(app, "eval", "Measure accuracy");
    CLI::App* cmd = eval->add_subcommand(
        "strangers", "Strangers clustering purity and fragmentation on CFP frontal photos");
    a->engine.AddTo(*cmd, true);
    cmd->add_option("--root", a->root, "CFP root (holds Data/Images/<id>/frontal/NN.jpg)");
    cmd->add_option("--video", a->videos,
                    "Cluster the unknown tracks of this clip instead (repeatable; no labels: counts "
                    "tracks seen in one frame that share a stranger)");
    cmd->add_option("--people", a->people, "Use the first N identities (0 = all)")
        ->check(CLI::Range(0, 100000))
        ->capture_default_str();
    cmd->add_option("--thresholds", a->thresholds,
                    "Thresholds to measure (default: the pack's, 0.30, 0.35, 0.45, 0.50)")
        ->check(CLI::Range(-1.0, 1.0));
    cmd->add_option("--orders", a->orders, "Shuffled arrival orders averaged")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    cmd->add_option("--seed", a->seed, "Seed of the first shuffle")->capture_default_str();
    cmd->add_option("--max-exemplars", a->max_exemplars, "Embeddings kept per stranger")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    cmd->add_option("--workers", a->workers, "Worker threads")->capture_default_str();
    cmd->add_flag("--json", a->json, "JSON output");
    cmd->callback([a, &action] { action = [a] { return RunStrangers(*a); }; });
}

}  // namespace fg::cli
