// SPDX-License-Identifier: Apache-2.0
// facegate gallery ... (enroll, list, identify, verify, delete, rename, metadata, merge,
// remove-face, export, import, rotate-key, reembed, settings, stats, snapshot) and
// facegate bench gallery.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <unordered_map>

#include "common.h"
#include "fg/gallery/calibration.h"
#include "fg/gallery/enroll_gate.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/vision/liveness.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace fg::cli {
namespace {

using gallery::Gallery;

struct GalleryArgs {
    EngineOptions engine;
    std::string db;
    std::string key_file;
    std::string key_env = "FG_GALLERY_KEY";
    std::string subject;
    std::string name;
    std::string metadata;
    std::vector<std::string> images;
    std::string embedding_file;
    std::string model_id;
    bool force = false;
    bool json = false;
    int top_k = 0;
    // identify/verify --liveness: check the probe face before trusting the match.
    bool liveness = false;
    std::string liveness_model;     // preset or pack (empty = the default preset)
    float liveness_threshold = 0.5f;
    std::string after;
    int limit = 100;
    std::string from, into;
    std::int64_t face_id = 0;
    std::string file;
    bool skip_existing = false;
    std::string new_key_file;
    std::vector<std::string> set;
    std::string root;
    double write_far = 0;
    int batch = 5000;
};

GalleryLocation Where(const GalleryArgs& a) { return {a.db, a.key_file, a.key_env}; }

Result<std::unique_ptr<Gallery>> OpenGallery(const GalleryArgs& a) {
    return OpenGalleryAt(Where(a), a.engine);
}

/// PNG: lossless, so re-embedding sees exactly the pixels the first embedder saw.
Result<std::vector<std::uint8_t>> EncodeCrop(const cv::Mat& aligned) {
    std::vector<std::uint8_t> png;
    if (aligned.empty() || !cv::imencode(".png", aligned, png))
        return Internal("cannot encode the aligned face crop");
    return png;
}

/// Reads {"embedding": [...]} (optionally "model_id"), {"embeddings": [[...], ...]}, or the
/// output of `facegate embed --json`.
Status ReadEmbeddingFile(const std::string& path, std::vector<std::vector<float>>& out,
                         std::string& model_id) {
    std::ifstream in(path);
    if (!in) return NotFound("cannot open embedding file " + path);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return InvalidArgument(path + " is not valid JSON");
    try {
        if (j.contains("model_id")) model_id = j["model_id"].get<std::string>();
        if (j.contains("embedding")) out.push_back(j["embedding"].get<std::vector<float>>());
        if (j.contains("embeddings")) {
            for (const auto& e : j["embeddings"]) out.push_back(e.get<std::vector<float>>());
        }
        if (j.contains("images")) {
            for (const auto& im : j["images"]) {
                for (const auto& f : im.value("faces", nlohmann::json::array())) {
                    if (f.contains("embedding"))
                        out.push_back(f["embedding"].get<std::vector<float>>());
                }
            }
        }
    } catch (const std::exception& e) {
        return InvalidArgument(path + ": embeddings must be arrays of numbers (" + e.what() + ")");
    }
    if (out.empty())
        return InvalidArgument(path + " holds no embedding (expected {\"embedding\": [...]})");
    return Status::Ok();
}

/// The probe's embedding and, with --liveness, the liveness of the same (main) face.
struct Probe {
    vision::Embedding embedding;
    std::optional<vision::LivenessResult> liveness;
};

/// One probe from --image (main face) or --embedding-file.
Result<Probe> ProbeFromArgs(const GalleryArgs& a, const Gallery& g) {
    if (!a.embedding_file.empty()) {
        // A bare vector carries no pixels to judge: refuse rather than report a probe as checked.
        if (a.liveness) return InvalidArgument("--liveness needs --image (an embedding file has no pixels)");
        std::vector<std::vector<float>> v;
        std::string model = a.model_id;
        FG_RETURN_IF_ERROR(ReadEmbeddingFile(a.embedding_file, v, model));
        if (model.empty()) model = g.model_id();
        return Probe{vision::Embedding{model, std::move(v.front())}, std::nullopt};
    }
    if (a.images.size() != 1) return InvalidArgument("give one --image or --embedding-file");
    FG_ASSIGN_OR_RETURN(auto ew, MakeEngineWorker(a.engine, true));
    auto& worker = ew.worker;
    FG_ASSIGN_OR_RETURN(cv::Mat img, LoadImage(a.images[0]));
    FG_ASSIGN_OR_RETURN(
        auto faces, worker->Analyze(img, {.embed = true, .keep_aligned = false, .max_faces = 1}));
    const int main = PickMainFace(faces);
    if (main < 0 || !faces[size_t(main)].embedding)
        return NotFound("no face found in " + a.images[0]);
    Probe probe{*faces[size_t(main)].embedding, std::nullopt};
    if (a.liveness) {
        // The face that was embedded is the one judged, so a spoof cannot hide behind a live bystander.
        FG_ASSIGN_OR_RETURN(auto backend, infer::MakeBackend(ew.engine->config().backend));
        FG_ASSIGN_OR_RETURN(auto model, vision::LoadLiveness(a.liveness_model, ew.engine->pack(), *backend));
        FG_ASSIGN_OR_RETURN(auto checker, model->CreateChecker({.threshold = a.liveness_threshold}));
        FG_ASSIGN_OR_RETURN(probe.liveness, checker->Check(img, faces[size_t(main)].detection));
    }
    return probe;
}

nlohmann::json ToJson(const gallery::Identification& id) {
    nlohmann::json c = nlohmann::json::array();
    for (const auto& k : id.candidates) {
        c.push_back({{"subject_id", k.subject_id},
                     {"display_name", k.display_name},
                     {"score", k.score},
                     {"face_id", k.face_id}});
    }
    return {{"decision", id.known ? "known" : "unknown"},
            {"subject_id", id.known ? nlohmann::json(id.subject_id) : nlohmann::json(nullptr)},
            {"reason", id.reason},
            {"threshold", id.threshold},
            {"margin", id.margin},
            {"candidates", c}};
}

int Finish(Gallery& g, int code) {
    Status s = g.Close();
    if (!s.ok()) std::cerr << "warning: index snapshot not written: " << s.ToString() << "\n";
    return code;
}

int RunEnroll(const GalleryArgs& a) {
    if (a.images.empty() == a.embedding_file.empty())
        return Fail(InvalidArgument("give --image FILE... or --embedding-file FILE"));
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    std::vector<gallery::NewFace> faces;
    std::string model = a.model_id;
    nlohmann::json out{{"subject_id", a.subject}};
    nlohmann::json rejected = nlohmann::json::array();
    if (!a.embedding_file.empty()) {
        std::vector<std::vector<float>> v;
        if (Status s = ReadEmbeddingFile(a.embedding_file, v, model); !s.ok()) return Fail(s);
        if (model.empty()) model = (*g)->model_id().empty() ? "external" : (*g)->model_id();
        for (auto& e : v)
            faces.push_back({std::move(e), -1.f, "embedding-file:" + a.embedding_file, {}});
    } else {
        auto ew = MakeEngineWorker(a.engine, true);
        if (!ew.ok()) return Fail(ew.status());
        const auto& engine = ew->engine;
        auto& worker = ew->worker;
        model = engine->embedder_info()->model_id;
        const bool keep_crops = (*g)->settings().keep_crops;
        for (const std::string& path : a.images) {
            auto img = LoadImage(path);
            if (!img.ok()) return Fail(img.status().WithContext(path));
            auto found =
                worker->Analyze(*img, {.embed = true, .keep_aligned = keep_crops, .max_faces = 1});
            if (!found.ok()) return Fail(found.status().WithContext(path));
            gallery::GateDecision d = gallery::CheckEnrollmentFaces(*found);
            int pick = PickMainFace(*found);
            if (pick >= 0 && !(*found)[size_t(pick)].embedding) pick = -1;
            if ((!d.accepted && !a.force) || pick < 0) {
                if (pick < 0 && d.reasons.empty()) d.reasons.push_back("no_face");
                rejected.push_back(
                    {{"source", path}, {"reasons", d.reasons}, {"detail", d.detail}});
                continue;
            }
            const vision::Face& f = (*found)[size_t(pick)];
            faces.push_back({f.embedding->values, f.quality.score, path, {}});
            if (keep_crops) {
                auto png = EncodeCrop(f.aligned.image);
                if (!png.ok()) return Fail(png.status().WithContext(path));
                faces.back().crop = std::move(*png);
            }
        }
    }
    std::vector<std::string> sources;
    for (const auto& f : faces) sources.push_back(f.source);
    nlohmann::json ids = nlohmann::json::array();
    if (!faces.empty()) {
        auto r = (*g)->Enroll(a.subject,
                              {.model_id = model,
                               .create_subject = true,
                               .display_name = a.name,
                               .metadata = a.metadata.empty() ? "{}" : a.metadata,
                               .force = a.force},
                              faces);
        if (!r.ok()) return Fail(r.status());
        ids = r->face_ids;
        for (const auto& rej : r->rejected) {
            rejected.push_back(
                {{"source", sources[rej.face]}, {"reasons", {rej.reason}}, {"detail", rej.detail}});
        }
    }
    out["model_id"] = model;
    out["enrolled_face_ids"] = ids;
    out["rejected"] = rejected;
    if (a.json) {
        PrintJson(out);
    } else {
        std::cout << "enrolled " << ids.size() << " face(s) for " << a.subject << "\n";
        for (const auto& r : rejected) {
            std::cout << "rejected " << r["source"].get<std::string>() << ": "
                      << r["reasons"].dump() << " " << r["detail"].get<std::string>() << "\n";
        }
    }
    // Exit 0 only when every given face is durably enrolled.
    return Finish(**g, rejected.empty() ? kExitOk : kExitError);
}

nlohmann::json SubjectJson(const gallery::Subject& s) {
    return {{"id", s.id},
            {"display_name", s.display_name},
            {"metadata", nlohmann::json::parse(s.metadata, nullptr, false)},
            {"faces", s.face_count},
            {"created_at", s.created_at},
            {"updated_at", s.updated_at}};
}

int RunList(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    auto page = (*g)->store().ListSubjects(a.after, a.limit);
    if (!page.ok()) return Fail(page.status());
    auto stats = (*g)->Stats();
    if (!stats.ok()) return Fail(stats.status());
    nlohmann::json subjects = nlohmann::json::array();
    for (const auto& s : page->subjects) subjects.push_back(SubjectJson(s));
    if (a.json) {
        PrintJson({{"subjects", subjects},
                   {"next_after", page->next_after.empty() ? nlohmann::json(nullptr)
                                                           : nlohmann::json(page->next_after)},
                   {"total_subjects", stats->subjects},
                   {"total_faces", stats->templates},
                   {"model_id", stats->model_id}});
    } else {
        for (const auto& s : page->subjects)
            std::cout << s.id << "\t" << s.display_name << "\t" << s.face_count << " face(s)\n";
        if (!page->next_after.empty()) std::cout << "(more: --after " << page->next_after << ")\n";
    }
    return kExitOk;
}

int RunIdentify(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    auto probe = ProbeFromArgs(a, **g);
    if (!probe.ok()) return Fail(probe.status());
    auto id = (*g)->Identify(probe->embedding, a.top_k);
    if (!id.ok()) return Fail(id.status());
    // A spoofed probe is never a recognised subject, however well it matches (the photo of an
    // enrolled person matches by design). Candidates stay, so an audit sees who was targeted.
    const bool spoof = probe->liveness && !probe->liveness->live;
    if (spoof) {
        id->known = false;
        id->subject_id.clear();
        id->reason = "spoof";
    }
    if (a.json) {
        nlohmann::json j = ToJson(*id);
        if (spoof) j["decision"] = "spoof";
        if (probe->liveness) j["liveness"] = LivenessJson(*probe->liveness);
        PrintJson(j);
    } else {
        if (probe->liveness) {
            std::printf("liveness %.3f: %s\n", probe->liveness->score, probe->liveness->live ? "live" : "SPOOF");
        }
        std::cout << (spoof ? "spoof" : id->known ? id->subject_id : "unknown") << " (" << id->reason << ")\n";
        for (const auto& c : id->candidates)
            std::printf("  %-24s %.4f\n", c.subject_id.c_str(), c.score);
    }
    return Finish(**g, kExitOk);
}

int RunVerify(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    auto probe = ProbeFromArgs(a, **g);
    if (!probe.ok()) return Fail(probe.status());
    auto score = (*g)->Verify(probe->embedding, a.subject);
    if (!score.ok()) return Fail(score.status());
    const float t = (*g)->settings().threshold;
    // As in identify: a spoofed probe is never the subject, whatever the score.
    const bool spoof = probe->liveness && !probe->liveness->live;
    const bool same = *score >= t && !spoof;
    if (a.json) {
        nlohmann::json j{{"subject_id", a.subject}, {"score", *score}, {"threshold", t}, {"same", same}};
        if (probe->liveness) {
            j["decision"] = spoof ? "spoof" : same ? "same" : "different";
            j["liveness"] = LivenessJson(*probe->liveness);
        }
        PrintJson(j);
    } else {
        if (probe->liveness) {
            std::printf("liveness %.3f: %s\n", probe->liveness->score, probe->liveness->live ? "live" : "SPOOF");
        }
        std::printf("score %.4f threshold %.4f: %s\n", *score, t,
                    spoof ? "spoof (not accepted)" : same ? "same person" : "different person");
    }
    return kExitOk;
}

/// Commands that change one thing and print {"ok": true}.
int RunSimple(const GalleryArgs& a, const std::function<Status(Gallery&)>& fn) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    if (Status s = fn(**g); !s.ok()) return Fail(s);
    if (a.json) PrintJson({{"ok", true}});
    return Finish(**g, kExitOk);
}

int RunExport(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    auto doc = (*g)->Export();
    if (!doc.ok()) return Fail(doc.status());
    if (a.file.empty() || a.file == "-") {
        PrintJson(*doc, false);
        return kExitOk;
    }
    std::ofstream out(a.file);
    out << doc->dump() << "\n";
    out.close();
    if (!out) return Fail(Unavailable("cannot write " + a.file));
    std::cerr << "note: " << a.file << " holds plaintext embeddings; protect it like the key\n";
    return kExitOk;
}

/// JSON Lines bulk enrollment: one {"subject_id", "embedding", ["display_name", "model_id",
/// "source"]} per line, enrolled in transactions of --batch records.
int RunImportRecords(const GalleryArgs& a, Gallery& g) {
    std::ifstream in(a.file);
    std::string line, model = a.model_id;
    std::vector<gallery::BulkFace> batch;
    std::int64_t enrolled = 0, line_no = 0;
    nlohmann::json rejected = nlohmann::json::array();
    std::int64_t first_line = 1;
    auto flush = [&]() -> Status {
        if (batch.empty()) return Status::Ok();
        if (model.empty()) model = g.model_id().empty() ? "external" : g.model_id();
        auto r = g.EnrollBulk(batch, {.model_id = model,
                                      .create_subject = true,
                                      .display_name = "",
                                      .metadata = "{}",
                                      .force = a.force});
        if (!r.ok()) {
            return r.status().WithContext("lines " + std::to_string(first_line) + ".." +
                                          std::to_string(line_no));
        }
        enrolled += std::int64_t(r->face_ids.size());
        for (const auto& rej : r->rejected) {
            rejected.push_back({{"line", first_line + std::int64_t(rej.face)},
                                {"subject_id", batch[rej.face].subject_id},
                                {"reasons", {rej.reason}},
                                {"detail", rej.detail}});
        }
        batch.clear();
        first_line = line_no + 1;
        return Status::Ok();
    };
    while (std::getline(in, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
            if (batch.empty()) first_line = line_no + 1;
            continue;
        }
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        const std::string where = a.file + ":" + std::to_string(line_no);
        if (j.is_discarded() || !j.is_object())
            return Fail(InvalidArgument(where + ": not a JSON object"));
        gallery::BulkFace f;
        try {
            f.subject_id = j.at("subject_id").get<std::string>();
            f.face.embedding = j.at("embedding").get<std::vector<float>>();
            f.display_name = j.value("display_name", "");
            f.face.source = j.value("source", "import:" + a.file);
            if (j.contains("model_id")) {
                const std::string m = j["model_id"].get<std::string>();
                if (!model.empty() && m != model)
                    return Fail(InvalidArgument(where + ": model_id '" + m + "' differs from '" +
                                                model + "' of the earlier records"));
                model = m;
            }
        } catch (const std::exception& e) {
            return Fail(InvalidArgument(where + ": needs \"subject_id\" (string) and " +
                                        "\"embedding\" (array of numbers): " + e.what()));
        }
        batch.push_back(std::move(f));
        if (int(batch.size()) >= a.batch) {
            if (Status s = flush(); !s.ok()) return Fail(s);
        }
    }
    if (Status s = flush(); !s.ok()) return Fail(s);
    PrintJson({{"imported_faces", enrolled}, {"rejected", rejected}});
    return Finish(g, rejected.empty() ? kExitOk : kExitError);
}

int RunImport(const GalleryArgs& a) {
    std::ifstream in(a.file);
    if (!in) return Fail(NotFound("cannot open " + a.file));
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
    in.close();
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    // An export is one JSON document; anything else is read as JSON Lines records.
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("format"))
        return RunImportRecords(a, **g);
    auto n = (*g)->Import(doc, a.skip_existing);
    if (!n.ok()) return Fail(n.status());
    PrintJson({{"imported_faces", *n}});
    return Finish(**g, kExitOk);
}

/// Rebuilds every template from its stored crop with --pack's embedder.
int RunReembed(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    if (!(*g)->settings().keep_crops) {
        auto n = (*g)->store().CountTemplates();
        if (n.ok() && *n > 0) {
            return Fail(FailedPrecondition(
                "this gallery does not keep face crops (setting keep_crops is off), so its "
                "templates cannot be re-embedded; re-enroll from the photos instead"));
        }
    }
    auto ew = MakeEngineWorker(a.engine, true);
    if (!ew.ok()) return Fail(ew.status());
    const std::string model = ew->engine->embedder_info()->model_id;
    const std::string old_model = (*g)->model_id();
    auto& worker = ew->worker;
    const int size = ew->engine->embedder_info()->input_size;
    auto embed = [&](std::span<const std::uint8_t> png) -> Result<std::vector<float>> {
        cv::Mat crop = cv::imdecode(cv::Mat(1, int(png.size()), CV_8U,
                                            const_cast<std::uint8_t*>(png.data())),
                                    cv::IMREAD_COLOR);
        if (crop.empty()) return DataLoss("stored face crop does not decode");
        if (crop.rows != size || crop.cols != size) {
            return FailedPrecondition("stored crops are " + std::to_string(crop.cols) + "x" +
                                      std::to_string(crop.rows) + ", the embedder takes " +
                                      std::to_string(size) + "x" + std::to_string(size));
        }
        std::vector<vision::Embedding> out;
        FG_RETURN_IF_ERROR(worker->EmbedAligned(std::span<const cv::Mat>(&crop, 1), out));
        if (out.size() != 1) return Internal("embedder returned no embedding");
        return std::move(out[0].values);
    };
    const float threshold = vision::DefaultVerifyThreshold(ew->engine->pack());
    const auto t0 = std::chrono::steady_clock::now();
    auto n = (*g)->Reembed(model, embed, threshold);
    if (!n.ok()) return Fail(n.status());
    PrintJson({{"reembedded", *n},
               {"from_model_id", old_model},
               {"model_id", model},
               {"threshold", threshold},
               {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                               .count()},
               {"note", "threshold reset to the pack's verify_threshold; re-run gallery calibrate "
                        "for this model"}});
    return Finish(**g, kExitOk);
}

int RunRotateKey(const GalleryArgs& a) {
    auto old_keys = ResolveGalleryKeys(Where(a));
    if (!old_keys.ok()) return Fail(old_keys.status());
    auto g = Gallery::Open({.location = a.db, .keys = *old_keys, .index = {}, .snapshot_path = {}});
    if (!g.ok()) return Fail(g.status());
    std::error_code ec;
    auto fresh = std::filesystem::exists(a.new_key_file, ec)
                     ? gallery::LoadKeyFile(a.new_key_file)
                     : gallery::CreateKeyFile(a.new_key_file);
    if (!fresh.ok()) return Fail(fresh.status());
    auto ring = std::make_shared<gallery::KeyRing>(*fresh);
    auto old = a.key_file.empty() ? Result<gallery::TemplateKey>(NotFound(""))
                                  : gallery::LoadKeyFile(a.key_file);
    if (!a.key_file.empty() && old.ok()) ring->AddOld(*old);
    if (a.key_file.empty()) {
        auto env = gallery::LoadKeyEnv(a.key_env);
        if (env.ok())
            ring->AddOld(*env);
        else if (auto def = gallery::LoadKeyFile(DefaultGalleryKeyPath()); def.ok())
            ring->AddOld(*def);
    }
    auto n = (*g)->RotateKey(ring);
    if (!n.ok()) return Fail(n.status());
    PrintJson({{"reencrypted", *n}, {"key_id", ring->current_id()}, {"key_file", a.new_key_file}});
    return Finish(**g, kExitOk);
}

int RunSettings(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    gallery::GallerySettings s = (*g)->settings();
    if (!a.set.empty()) {
        nlohmann::json j = nlohmann::json::object();
        for (const std::string& kv : a.set) {
            const auto eq = kv.find('=');
            if (eq == std::string::npos)
                return Fail(InvalidArgument("--set takes KEY=VALUE, got " + kv));
            const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
            nlohmann::json val = nlohmann::json::parse(v, nullptr, false);
            j[k] = val.is_discarded() ? nlohmann::json(v) : val;
        }
        if (Status st = s.Update(j); !st.ok()) return Fail(st);
        if (Status st = (*g)->UpdateSettings(s); !st.ok()) return Fail(st);
    }
    PrintJson(s.ToJson());
    return Finish(**g, kExitOk);
}

int RunStats(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    auto s = (*g)->Stats();
    if (!s.ok()) return Fail(s.status());
    PrintJson({{"subjects", s->subjects},
               {"faces", s->templates},
               {"model_id", s->model_id},
               {"dim", s->dim},
               {"index", s->index_kind},
               {"index_bytes", s->index_bytes},
               {"index_source", s->index_source},
               {"store", (*g)->store().kind()},
               {"schema_version", (*g)->store().schema_version()},
               {"settings", (*g)->settings().ToJson()}});
    return kExitOk;
}

int RunCalibrate(const GalleryArgs& a) {
    std::error_code ec;
    if (!std::filesystem::is_directory(a.root, ec))
        return Fail(NotFound(a.root + " is not a folder"));
    auto ew = MakeEngineWorker(a.engine, true);
    if (!ew.ok()) return Fail(ew.status());
    const auto& engine = ew->engine;
    auto& worker = ew->worker;
    // One embedding per photo (its main face), labelled by the folder name.
    std::vector<std::pair<std::string, std::vector<float>>> items;
    int skipped = 0;
    std::vector<std::filesystem::path> people;
    for (const auto& d : std::filesystem::directory_iterator(a.root, ec)) {
        if (d.is_directory()) people.push_back(d.path());
    }
    std::sort(people.begin(), people.end());
    for (const auto& dir : people) {
        std::vector<std::filesystem::path> photos;
        for (const auto& f : std::filesystem::directory_iterator(dir, ec))
            photos.push_back(f.path());
        std::sort(photos.begin(), photos.end());
        for (const auto& p : photos) {
            auto img = LoadImage(p);
            if (!img.ok()) {
                ++skipped;
                continue;
            }
            auto faces =
                worker->Analyze(*img, {.embed = true, .keep_aligned = false, .max_faces = 1});
            const int m = faces.ok() ? PickMainFace(*faces) : -1;
            if (m < 0 || !(*faces)[size_t(m)].embedding) {
                ++skipped;
                continue;
            }
            items.emplace_back(dir.filename().string(), (*faces)[size_t(m)].embedding->values);
        }
    }
    std::vector<float> genuine, impostor;
    for (size_t i = 0; i < items.size(); ++i) {
        for (size_t j = i + 1; j < items.size(); ++j) {
            float s = 0;
            for (size_t k = 0; k < items[i].second.size(); ++k)
                s += items[i].second[k] * items[j].second[k];
            (items[i].first == items[j].first ? genuine : impostor).push_back(s);
        }
    }
    auto rep = gallery::Calibrate(genuine, impostor);
    if (!rep.ok()) return Fail(rep.status());
    nlohmann::json points = nlohmann::json::array();
    for (size_t i = 0; i < rep->points.size(); ++i) {
        const auto& p = rep->points[i];
        nlohmann::json growth = nlohmann::json::array();
        for (const auto& g : rep->growth[i])
            growth.push_back({{"gallery_size", g.gallery_size}, {"open_set_far", g.open_set_far}});
        points.push_back({{"target_far", p.target_far},
                          {"threshold", p.threshold},
                          {"far", p.far},
                          {"tar", p.tar},
                          {"resolvable", p.resolvable},
                          {"far_growth", growth}});
    }
    nlohmann::json out{{"model_id", engine->embedder_info()->model_id},
                       {"people", people.size()},
                       {"photos", items.size()},
                       {"skipped_photos", skipped},
                       {"genuine_pairs", rep->genuine_pairs},
                       {"impostor_pairs", rep->impostor_pairs},
                       {"points", points}};
    if (a.write_far > 0) {
        if (a.db.empty()) return Fail(InvalidArgument("--write-far needs --db"));
        auto it = std::find_if(rep->points.begin(), rep->points.end(), [&](const auto& p) {
            return std::fabs(p.target_far - a.write_far) < 1e-12;
        });
        if (it == rep->points.end())
            return Fail(InvalidArgument("--write-far must be one of 1e-2, 1e-3, 1e-4, 1e-5"));
        if (!it->resolvable) {
            return Fail(FailedPrecondition("too few impostor pairs to calibrate FAR " +
                                           std::to_string(a.write_far) +
                                           "; use a larger labelled set"));
        }
        auto g = OpenGallery(a);
        if (!g.ok()) return Fail(g.status());
        gallery::GallerySettings s = (*g)->settings();
        s.threshold = it->threshold;
        if (Status st = (*g)->UpdateSettings(s); !st.ok()) return Fail(st);
        out["written_threshold"] = it->threshold;
    }
    PrintJson(out);
    return kExitOk;
}

// ---- facegate bench gallery -------------------------------------------------------------

struct BenchArgs {
    std::int64_t size = 10000;
    int dim = 512;
    std::string index = "auto";
    int queries = 1000;
    std::vector<int> ef_search = {96};
    std::vector<int> nprobe = {32};
    std::vector<int> rerank = {gallery::IndexConfig{}.scan_rerank};
    int scan_dims = 0;
    int nlist = 0;
    int hnsw_m = 32;
    bool with_store = false;
    int batch = 5000;
    bool json = false;
    std::string data = "face";
    std::string keep_dir;
};

double Seconds(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Normalise(float* v, int dim) {
    double n = 0;
    for (int i = 0; i < dim; ++i) n += double(v[i]) * v[i];
    n = std::sqrt(n);
    for (int i = 0; i < dim; ++i) v[i] = float(v[i] / n);
}

/// Exact best match of each query by matrix products over blocks of the gallery (OpenCV's
/// GEMM: minutes of scalar loops become seconds at 1M templates).
std::vector<std::int64_t> ExactTop1(const std::vector<float>& xb, const std::vector<float>& xq,
                                    int nq, int dim, const std::vector<std::int64_t>& ids) {
    const size_t n = ids.size();
    std::vector<float> best(size_t(nq), -2.f);
    std::vector<std::int64_t> arg(size_t(nq), -1);
    const cv::Mat q(nq, dim, CV_32F, const_cast<float*>(xq.data()));
    constexpr size_t kBlock = 65536;
    for (size_t start = 0; start < n; start += kBlock) {
        const int rows = int(std::min(kBlock, n - start));
        const cv::Mat x(rows, dim, CV_32F, const_cast<float*>(&xb[start * size_t(dim)]));
        cv::Mat scores;
        cv::gemm(q, x, 1.0, cv::noArray(), 0.0, scores, cv::GEMM_2_T);
        for (int i = 0; i < nq; ++i) {
            const float* row = scores.ptr<float>(i);
            for (int j = 0; j < rows; ++j) {
                if (row[j] > best[size_t(i)]) {
                    best[size_t(i)] = row[j];
                    arg[size_t(i)] = ids[start + size_t(j)];
                }
            }
        }
    }
    return arg;
}

struct Timing {
    double p50 = 0, p99 = 0, recall = 1;
};

/// Latency percentiles of single-probe searches and recall@1 against `exact` (first
/// `exact.size()` probes).
Result<Timing> TimeSearches(const gallery::FaceIndex& index, const std::vector<float>& xq,
                            int queries, int dim, const std::vector<std::int64_t>& exact) {
    std::vector<double> ms;
    int agree = 0;
    for (int q = 0; q < queries; ++q) {
        std::span<const float> probe(&xq[size_t(q) * size_t(dim)], size_t(dim));
        const auto t0 = std::chrono::steady_clock::now();
        auto nn = index.Search(probe, 10);
        ms.push_back(Seconds(t0) * 1e3);
        if (!nn.ok()) return nn.status();
        if (size_t(q) < exact.size())
            agree += (!nn->empty() && nn->front().id == exact[size_t(q)]);
    }
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * double(ms.size())))]; };
    Timing t{pct(0.50), pct(0.99), 1.0};
    if (!exact.empty()) t.recall = double(agree) / double(exact.size());
    return t;
}

/// Synthetic gallery (n x dim, unit rows) and probes (queries x dim, unit rows).
///  - "uniform": isotropic Gaussian directions, i.e. uniform on the sphere; a probe is a gallery
///    vector plus isotropic noise (cosine ~0.6 to it). No neighbourhood structure at all: the
///    worst case for any approximate index.
///  - "face": what face embeddings look like. Measured on fr_feature embeddings of 2 000 CFP
///    frontal photos of 500 people (BENCHMARKS.md "Gallery"): people spread over a few
///    hundred directions with eigenvalues decaying ~exp(-i/45) (effective dimension ~80 of 512;
///    impostor cosines have a std of 0.10, not uniform's 0.044), and photos of one person
///    scatter around the person's centre with eigenvalues ~exp(-i/65) and 0.39 of the
///    between-person variance (genuine cosine ~0.72). A template and a probe are two
///    independent photos of the same person. The directions are randomly rotated so that no
///    index can profit from the coordinate axes.
void GenerateSynthetic(const BenchArgs& b, std::vector<float>& xb, std::vector<float>& xq) {
    const size_t n = size_t(b.size), d = size_t(b.dim);
    std::mt19937 rng(12345);
    std::normal_distribution<float> g;
    xb.assign(n * d, 0.f);
    xq.assign(size_t(b.queries) * d, 0.f);
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    std::vector<size_t> sources(size_t(b.queries));
    for (size_t& s : sources) s = pick(rng);
    if (b.data == "uniform") {
        for (float& x : xb) x = g(rng);
        for (size_t i = 0; i < n; ++i) Normalise(&xb[i * d], b.dim);
        for (int q = 0; q < b.queries; ++q) {
            for (size_t k = 0; k < d; ++k)
                xq[size_t(q) * d + k] =
                    xb[sources[size_t(q)] * d + k] + 1.3f * g(rng) / std::sqrt(float(d));
            Normalise(&xq[size_t(q) * d], b.dim);
        }
        return;
    }
    std::vector<float> sb(d), sw(d);
    double tb = 0, tw = 0;
    for (size_t k = 0; k < d; ++k) {
        tb += std::exp(-double(k) / 45.0);
        tw += std::exp(-double(k) / 65.0);
    }
    for (size_t k = 0; k < d; ++k) {
        sb[k] = float(std::sqrt(std::exp(-double(k) / 45.0) / tb));
        sw[k] = float(std::sqrt(0.39 * std::exp(-double(k) / 65.0) / tw));
    }
    // People's centres are needed again for the probes drawn from them.
    std::unordered_map<size_t, std::vector<float>> centres;
    for (size_t s : sources) centres.emplace(s, std::vector<float>(d));
    std::vector<float> c(d);
    for (size_t i = 0; i < n; ++i) {
        for (size_t k = 0; k < d; ++k) c[k] = sb[k] * g(rng);
        if (auto it = centres.find(i); it != centres.end()) it->second = c;
        float* x = &xb[i * d];
        for (size_t k = 0; k < d; ++k) x[k] = c[k] + sw[k] * g(rng);
    }
    for (int q = 0; q < b.queries; ++q) {
        const std::vector<float>& cs = centres.at(sources[size_t(q)]);
        float* x = &xq[size_t(q) * d];
        for (size_t k = 0; k < d; ++k) x[k] = cs[k] + sw[k] * g(rng);
    }
    // A random rotation (the orthogonal factor of a Gaussian matrix), applied with GEMM.
    cv::Mat r(static_cast<int>(d), static_cast<int>(d), CV_32F);
    for (int i = 0; i < r.rows; ++i)
        for (int j = 0; j < r.cols; ++j) r.at<float>(i, j) = g(rng);
    cv::Mat w, u, vt;
    cv::SVD::compute(r, w, u, vt);
    const cv::Mat rot = u * vt;  // orthogonal
    auto rotate = [&](std::vector<float>& m, size_t rows) {
        constexpr size_t kBlock = 65536;
        for (size_t start = 0; start < rows; start += kBlock) {
            const int nr = int(std::min(kBlock, rows - start));
            cv::Mat x(nr, int(d), CV_32F, &m[start * d]);
            cv::Mat y = x * rot;
            y.copyTo(x);
        }
        for (size_t i = 0; i < rows; ++i) Normalise(&m[i * d], int(d));
    };
    rotate(xb, n);
    rotate(xq, size_t(b.queries));
}

int RunBench(const BenchArgs& b) {
    auto kind = gallery::ParseIndexKind(b.index);
    if (!kind.ok()) return Fail(kind.status());
    if (b.size < 1 || b.dim < 1 || b.queries < 1)
        return Fail(InvalidArgument("size, dim and queries must be positive"));
    if (b.data != "face" && b.data != "uniform")
        return Fail(InvalidArgument("--data must be face or uniform"));
    const size_t n = size_t(b.size), d = size_t(b.dim);
    std::vector<float> xb, xq;
    GenerateSynthetic(b, xb, xq);
    std::vector<std::int64_t> ids(n);
    std::iota(ids.begin(), ids.end(), 1);
    gallery::IndexConfig cfg{.kind = *kind, .dim = b.dim};
    cfg.hnsw_m = b.hnsw_m;
    cfg.hnsw_ef_search = b.ef_search.front();
    cfg.ivf_nprobe = b.nprobe.front();
    cfg.ivf_nlist = b.nlist;
    cfg.scan_rerank = b.rerank.front();
    cfg.scan_dims = b.scan_dims;
    auto t0 = std::chrono::steady_clock::now();
    auto index = gallery::FaceIndex::Build(cfg, ids, xb);
    if (!index.ok()) return Fail(index.status());
    const double build_s = Seconds(t0);

    auto bytes = (*index)->Serialize();
    if (!bytes.ok()) return Fail(bytes.status());
    const double snapshot_bytes = double(bytes->size());
    t0 = std::chrono::steady_clock::now();
    auto reopened = gallery::FaceIndex::Deserialize(cfg, *bytes);
    if (!reopened.ok()) return Fail(reopened.status());
    const double open_s = Seconds(t0);
    bytes->clear();
    bytes->shrink_to_fit();
    index->reset();
    const gallery::IndexKind built = (*reopened)->kind();
    const bool exact = built == gallery::IndexKind::kFlat;
    // Recall against exact search on up to 300 probes (skipped when the index is exact).
    const int recall_queries = exact ? 0 : std::min(b.queries, 300);
    std::vector<std::int64_t> truth;
    if (!exact) truth = ExactTop1(xb, xq, recall_queries, b.dim, ids);

    nlohmann::json sweep = nlohmann::json::array();
    Timing first;
    auto efforts = built == gallery::IndexKind::kHnsw  ? b.ef_search
                   : built == gallery::IndexKind::kIvf ? b.nprobe
                   : built == gallery::IndexKind::kScan ? b.rerank
                                                       : std::vector<int>{0};
    for (size_t e = 0; e < efforts.size(); ++e) {
        gallery::IndexConfig c = cfg;
        if (built == gallery::IndexKind::kHnsw) c.hnsw_ef_search = efforts[e];
        if (built == gallery::IndexKind::kIvf) c.ivf_nprobe = efforts[e];
        if (built == gallery::IndexKind::kScan) c.scan_rerank = efforts[e];
        (*reopened)->SetSearchEffort(c);
        auto t = TimeSearches(**reopened, xq, b.queries, b.dim, truth);
        if (!t.ok()) return Fail(t.status());
        if (e == 0) first = *t;
        nlohmann::json row{{"p50_ms", t->p50}, {"p99_ms", t->p99}, {"recall_at_1", t->recall}};
        if (built == gallery::IndexKind::kHnsw) row["ef_search"] = efforts[e];
        if (built == gallery::IndexKind::kIvf) row["nprobe"] = efforts[e];
        if (built == gallery::IndexKind::kScan) row["rerank"] = efforts[e];
        sweep.push_back(row);
    }
    nlohmann::json out{{"size", b.size},
                       {"dim", b.dim},
                       {"data", b.data},
                       {"index", std::string(gallery::IndexKindName(built))},
                       {"queries", b.queries},
                       {"p50_ms", first.p50},
                       {"p99_ms", first.p99},
                       {"recall_at_1", first.recall},
                       {"recall_queries", recall_queries},
                       {"bytes_per_template", double((*reopened)->MemoryBytes()) / double(b.size)},
                       {"snapshot_bytes_per_template", snapshot_bytes / double(b.size)},
                       {"build_s", build_s},
                       {"open_s", open_s}};
    if (sweep.size() > 1) out["sweep"] = sweep;
    if (built == gallery::IndexKind::kHnsw) {
        out["hnsw_m"] = b.hnsw_m;
        out["ef_search"] = efforts.front();
    }
    if (built == gallery::IndexKind::kIvf) out["nprobe"] = efforts.front();
    if (built == gallery::IndexKind::kScan) out["rerank"] = efforts.front();
    reopened->reset();
    if (b.with_store) {
        // Full path: one template per subject, sealed, into SQLite through the bulk path
        // (--batch templates of as many subjects per durable transaction) with the index
        // updated; then the gallery is reopened from its sealed snapshot.
        char tmpl[] = "/tmp/fg-bench-XXXXXX";
        std::string dir = b.keep_dir;
        if (dir.empty()) {
            if (!mkdtemp(tmpl)) return Fail(Internal("mkdtemp failed"));
            dir = tmpl;
        } else {
            std::error_code ec;
            std::filesystem::create_directories(dir, ec);
            if (std::filesystem::exists(dir + "/bench.db"))
                return Fail(AlreadyExists(dir + "/bench.db exists"));
            std::ofstream(dir + "/bench.key") << std::string(64, 'a') << "\n";
            std::filesystem::permissions(dir + "/bench.key", std::filesystem::perms::owner_read |
                                                               std::filesystem::perms::owner_write);
        }
        auto key = gallery::ParseKey(std::string(64, 'a'));
        auto keys = std::make_shared<gallery::KeyRing>(*key);
        gallery::GalleryOptions o{
            .location = dir + "/bench.db", .keys = keys, .index = cfg, .snapshot_path = {}};
        o.snapshot_min_size = 1;
        // IVF trains on what it holds, so enrollment batches start the gallery exact.
        o.default_settings = nlohmann::json{{"index", b.index == "ivf" ? "flat" : b.index}};
        {
            auto gal = Gallery::Open(o);
            if (!gal.ok()) return Fail(gal.status());
            t0 = std::chrono::steady_clock::now();
            const size_t batch = size_t(b.batch);
            std::vector<gallery::BulkFace> faces;
            for (size_t i = 0; i < n; i += batch) {
                faces.clear();
                for (size_t j = i; j < std::min(n, i + batch); ++j) {
                    faces.push_back({"s" + std::to_string(j),
                                     {std::vector<float>(&xb[j * d], &xb[j * d] + d), -1.f,
                                      "bench", {}},
                                     ""});
                }
                auto r = (*gal)->EnrollBulk(faces, {.model_id = "bench",
                                                    .create_subject = true,
                                                    .display_name = "",
                                                    .metadata = "{}",
                                                    .force = true});
                if (!r.ok()) return Fail(r.status());
            }
            out["enroll_templates_per_s"] = double(n) / Seconds(t0);
            out["enroll_batch"] = b.batch;
            auto st = (*gal)->Stats();
            if (st.ok()) out["store_index"] = st->index_kind;
            t0 = std::chrono::steady_clock::now();
            if (Status s2 = (*gal)->Close(); !s2.ok()) return Fail(s2);
            out["snapshot_write_s"] = Seconds(t0);
        }
        t0 = std::chrono::steady_clock::now();
        auto gal = Gallery::Open(o);
        if (!gal.ok()) return Fail(gal.status());
        out["gallery_open_s"] = Seconds(t0);
        out["gallery_open_source"] = (*gal)->Stats()->index_source;
        out["db_bytes_per_template"] =
            double(std::filesystem::file_size(dir + "/bench.db")) / double(n);
        gal->reset();
        if (b.keep_dir.empty()) std::filesystem::remove_all(dir);
    }
    if (b.json) {
        PrintJson(out);
    } else {
        std::cout << out.dump(2) << "\n";
    }
    return kExitOk;
}

}  // namespace

void RegisterGalleryCommands(CLI::App& app, Action& action) {
    auto a = std::make_shared<GalleryArgs>();
    CLI::App* gal = app.add_subcommand(
        "gallery", "Enrolled people: enroll, identify (1:N), verify (1:1), manage");
    gal->require_subcommand(1);

    auto common = [&](CLI::App* c) {
        c->add_option("--db", a->db,
                      "Gallery: SQLite file (created on first use) or postgresql:// URL")
            ->required();
        c->add_option(
            "--key-file", a->key_file,
            "Template encryption key file (64 hex chars, mode 0600); default $FG_GALLERY_KEY, then "
            "~/.config/facegate/gallery.key (created on first use)");
        c->add_flag("--json", a->json, "JSON output");
    };
    auto probe = [&](CLI::App* c) {
        a->engine.AddTo(*c, true);
        c->add_option("--image", a->images, "Image file(s)");
        c->add_option("--embedding-file", a->embedding_file,
                      "JSON file with {\"embedding\": [...]}");
        c->add_option("--model-id", a->model_id, "Model id of the embedding file's vectors");
    };

    CLI::App* enroll =
        gal->add_subcommand("enroll", "Add faces to a subject (created if new); exit 0 = durable");
    common(enroll);
    probe(enroll);
    enroll->add_option("--subject", a->subject, "Subject id")->required();
    enroll->add_option("--name", a->name, "Display name of a new subject");
    enroll->add_option("--metadata", a->metadata, "JSON object for a new subject");
    enroll->add_flag("--force", a->force,
                     "Enroll faces the quality gate or duplicate check would refuse");
    enroll->callback([a, &action] { action = [a] { return RunEnroll(*a); }; });

    CLI::App* list = gal->add_subcommand("list", "List subjects (paged)");
    common(list);
    list->add_option("--after", a->after, "Start after this subject id");
    list->add_option("--limit", a->limit, "Page size")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    list->callback([a, &action] { action = [a] { return RunList(*a); }; });

    // identify/verify: opt-in liveness of the probe face; a spoof is never a match.
    auto liveness = [&](CLI::App* c) {
        c->add_flag("--liveness", a->liveness,
                    "Check the probe face's liveness; a spoof is never recognised (decision \"spoof\")");
        c->add_option("--liveness-model", a->liveness_model,
                      "Liveness preset: fr_liveness, minifasnet, fused, or a pack (default: " +
                          std::string(vision::DefaultLivenessPreset()) + "); implies --liveness");
        c->add_option("--liveness-threshold", a->liveness_threshold,
                      "Live when the liveness score is at least this; implies --liveness")
            ->check(CLI::Range(0.0, 1.0));
    };

    CLI::App* identify =
        gal->add_subcommand("identify", "Who is this? Top-k subjects and known/unknown");
    common(identify);
    probe(identify);
    identify->add_option("--top-k", a->top_k, "Candidates (default: the gallery's setting)");
    liveness(identify);
    identify->callback([a, identify, &action] {
        if (!a->liveness_model.empty() || identify->count("--liveness-threshold") > 0) a->liveness = true;
        action = [a] { return RunIdentify(*a); };
    });

    CLI::App* verify = gal->add_subcommand("verify", "Is this the subject? (1:1)");
    common(verify);
    probe(verify);
    verify->add_option("--subject", a->subject, "Subject id")->required();
    liveness(verify);
    verify->callback([a, verify, &action] {
        if (!a->liveness_model.empty() || verify->count("--liveness-threshold") > 0) a->liveness = true;
        action = [a] { return RunVerify(*a); };
    });

    CLI::App* del =
        gal->add_subcommand("delete", "Delete a subject and erase all its face templates");
    common(del);
    del->add_option("--subject", a->subject, "Subject id")->required();
    del->callback([a, &action] {
        action = [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.DeleteSubject(a->subject); });
        };
    });

    CLI::App* rename = gal->add_subcommand("rename", "Change a subject's display name");
    common(rename);
    rename->add_option("--subject", a->subject, "Subject id")->required();
    rename->add_option("--name", a->name, "New display name")->required();
    rename->callback([a, &action] {
        action = [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.RenameSubject(a->subject, a->name); });
        };
    });

    CLI::App* meta = gal->add_subcommand("metadata", "Replace a subject's JSON metadata");
    common(meta);
    meta->add_option("--subject", a->subject, "Subject id")->required();
    meta->add_option("--set", a->metadata, "JSON object")->required();
    meta->callback([a, &action] {
        action = [a] {
            return RunSimple(*a,
                             [a](Gallery& g) { return g.UpdateMetadata(a->subject, a->metadata); });
        };
    });

    CLI::App* merge =
        gal->add_subcommand("merge", "Move all faces of one subject to another, delete the first");
    common(merge);
    merge->add_option("--from", a->from, "Subject to merge away")->required();
    merge->add_option("--into", a->into, "Subject that keeps the faces")->required();
    merge->callback([a, &action] {
        action = [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.MergeSubjects(a->from, a->into); });
        };
    });

    CLI::App* rmface = gal->add_subcommand("remove-face", "Erase one face template");
    common(rmface);
    rmface->add_option("--face-id", a->face_id, "Face id (from enroll or identify)")->required();
    rmface->callback([a, &action] {
        action = [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.RemoveFace(a->face_id); });
        };
    });

    CLI::App* exp =
        gal->add_subcommand("export", "Write the versioned JSON export (plaintext embeddings!)");
    common(exp);
    exp->add_option("--out", a->file, "Output file (default stdout)");
    exp->callback([a, &action] { action = [a] { return RunExport(*a); }; });

    CLI::App* imp = gal->add_subcommand(
        "import", "Import a JSON export, or bulk-enroll JSON Lines records (precomputed embeddings)");
    common(imp);
    a->engine.AddTo(*imp, true);  // only --pack matters: a new gallery's threshold
    imp->add_option("--in", a->file,
                    "Export file, or JSON Lines: {\"subject_id\": ..., \"embedding\": [...]} per line")
        ->required();
    imp->add_option("--batch", a->batch, "JSON Lines records per transaction")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    imp->add_option("--model-id", a->model_id, "Model id of JSON Lines records without one");
    imp->add_flag("--force", a->force,
                  "JSON Lines: skip the duplicate_of_other_subject check (faster on big galleries)");
    imp->add_flag("--skip-existing", a->skip_existing,
                  "Skip subjects already present instead of failing");
    imp->callback([a, &action] { action = [a] { return RunImport(*a); }; });

    CLI::App* rot = gal->add_subcommand("rotate-key", "Re-encrypt every template with a new key");
    common(rot);
    rot->add_option("--new-key-file", a->new_key_file, "New key file (created if missing)")
        ->required();
    rot->callback([a, &action] { action = [a] { return RunRotateKey(*a); }; });

    CLI::App* reembed = gal->add_subcommand(
        "reembed", "Rebuild every template from its stored crop with --pack's embedder");
    common(reembed);
    a->engine.AddTo(*reembed, true);
    reembed->callback([a, &action] { action = [a] { return RunReembed(*a); }; });

    CLI::App* set = gal->add_subcommand(
        "settings", "Show or change identify settings (threshold, margin, ...)");
    common(set);
    set->add_option("--set", a->set,
                    "KEY=VALUE: threshold, margin, top_k, duplicate_threshold, index, keep_crops");
    set->callback([a, &action] { action = [a] { return RunSettings(*a); }; });

    CLI::App* stats =
        gal->add_subcommand("stats", "Counts, model, index kind and where it came from");
    common(stats);
    stats->callback([a, &action] { action = [a] { return RunStats(*a); }; });

    CLI::App* snap =
        gal->add_subcommand("snapshot", "Write the sealed index snapshot now (faster next open)");
    common(snap);
    snap->callback([a, &action] {
        action = [a] { return RunSimple(*a, [](Gallery& g) { return g.SaveSnapshot(); }); };
    });

    CLI::App* cal = gal->add_subcommand(
        "calibrate", "Thresholds for target false-accept rates from a labelled set");
    a->engine.AddTo(*cal, true);
    cal->add_option("--root", a->root, "Folder with one sub-folder of photos per person")
        ->required();
    cal->add_option("--db", a->db, "Gallery whose threshold --write-far sets");
    cal->add_option("--key-file", a->key_file, "Template encryption key file");
    cal->add_option("--write-far", a->write_far,
                    "Write the threshold for this FAR (1e-2..1e-5) into --db's settings");
    cal->callback([a, &action] { action = [a] { return RunCalibrate(*a); }; });

    auto b = std::make_shared<BenchArgs>();
    CLI::App* bench =
        app.get_subcommands([](CLI::App* c) { return c->get_name() == "bench"; }).empty()
            ? app.add_subcommand("bench", "Benchmarks")
            : app.get_subcommand("bench");
    bench->require_subcommand(1);
    CLI::App* bg =
        bench->add_subcommand("gallery", "Identify latency and recall on a synthetic gallery");
    bg->add_option("--size", b->size, "Templates")->capture_default_str();
    bg->add_option("--dim", b->dim, "Dimension")->capture_default_str();
    bg->add_option("--index", b->index, "auto, flat, scan, hnsw, ivf")->capture_default_str();
    bg->add_option("--queries", b->queries, "Probes")->capture_default_str();
    bg->add_option("--data", b->data,
                   "Synthetic vectors: face (spread like face embeddings, see BENCHMARKS.md) or "
                   "uniform (on the sphere: the worst case for approximate indexes)")
        ->check(CLI::IsMember({"face", "uniform"}))
        ->capture_default_str();
    bg->add_option("--ef-search", b->ef_search,
                   "HNSW efSearch; several values are measured on one build (sweep)")
        ->delimiter(',')
        ->capture_default_str();
    bg->add_option("--nprobe", b->nprobe, "IVF nprobe; several values give a sweep")
        ->delimiter(',')
        ->capture_default_str();
    bg->add_option("--nlist", b->nlist, "IVF lists (0: 4 sqrt(N))")->capture_default_str();
    bg->add_option("--rerank", b->rerank,
                   "scan: candidates re-ranked exactly; several values give a sweep")
        ->delimiter(',')
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bg->add_option("--scan-dims", b->scan_dims,
                   "scan: coded principal components (0: enough for the index's variance share)")
        ->check(CLI::Range(0, 512))
        ->capture_default_str();
    bg->add_option("--hnsw-m", b->hnsw_m, "HNSW M")->capture_default_str();
    bg->add_flag("--with-store", b->with_store,
                 "Also bulk-enroll into SQLite (throughput) and reopen the gallery");
    bg->add_option("--keep-dir", b->keep_dir,
                   "With --with-store: write the gallery to DIR/bench.db (key in DIR/bench.key) "
                   "and keep it, e.g. to time `facegate gallery stats --db DIR/bench.db`");
    bg->add_option("--batch", b->batch, "Templates per enrollment transaction (--with-store)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    bg->add_flag("--json", b->json, "JSON output");
    bg->callback([b, &action] { action = [b] { return RunBench(*b); }; });
}

}  // namespace fg::cli
