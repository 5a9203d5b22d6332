// SPDX-License-Identifier: Apache-2.0
// facegate gallery ... (enroll, list, identify, verify, delete, rename, metadata, merge,
// remove-face, snapshot) and the registration of every gallery subcommand; the whole-gallery
// commands are in cmd_gallery_admin.cc.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>

#include "common.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"
#include "fg/infer/model_pack.h"
#include "fg/vision/enroll_gate.h"
#include "fg/vision/liveness.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cmd_gallery.h"
#include "cmd_audit.h"

namespace fg::cli {

using gallery::Gallery;

GalleryLocation Where(const GalleryArgs& a) { return {a.db, a.key_file, a.key_env}; }

Result<std::unique_ptr<Gallery>> OpenGallery(const GalleryArgs& a) {
    return OpenGalleryAt(Where(a), a.engine);
}

int Finish(Gallery& g, int code) {
    Status s = g.Close();
    if (!s.ok()) std::cerr << "warning: index snapshot not written: " << s.ToString() << "\n";
    return code;
}

namespace {

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

/// One probe face: its embedding and, from an image, its box and (with --liveness) liveness.
struct Probe {
    vision::Embedding embedding;
    std::optional<vision::LivenessResult> liveness;
    std::optional<vision::FaceDetection> detection;  ///< none for an embedding file
};

/// The probes of --image or --embedding-file: with `every_face`, every face of the image
/// (largest first) or every embedding of the file; otherwise only the main (largest) face.
Result<std::vector<Probe>> ProbesFromArgs(const GalleryArgs& a, const Gallery& g, bool every_face) {
    std::vector<Probe> probes;
    if (!a.embedding_file.empty()) {
        // A bare vector carries no pixels to judge: refuse rather than report a probe as checked.
        if (a.liveness) return InvalidArgument("--liveness needs --image (an embedding file has no pixels)");
        std::vector<std::vector<float>> v;
        std::string model = a.model_id;
        FG_RETURN_IF_ERROR(ReadEmbeddingFile(a.embedding_file, v, model));
        if (model.empty()) model = g.model_id();
        if (!every_face) v.resize(1);
        for (auto& e : v) probes.push_back(Probe{vision::Embedding{model, std::move(e)}, std::nullopt, std::nullopt});
        return probes;
    }
    if (a.images.size() != 1) return InvalidArgument("give one --image or --embedding-file");
    FG_ASSIGN_OR_RETURN(auto ew, MakeEngineWorker(a.engine, true));
    auto& worker = ew.worker;
    FG_ASSIGN_OR_RETURN(cv::Mat img, LoadImage(a.images[0]));
    FG_ASSIGN_OR_RETURN(auto faces, worker->Analyze(img, {.embed = true, .keep_aligned = false,
                                                          .max_faces = every_face ? 0 : 1}));
    std::vector<int> order;
    if (every_face) {
        for (int i = 0; i < int(faces.size()); ++i) {
            if (faces[size_t(i)].embedding) order.push_back(i);
        }
        auto area = [&](int i) { return faces[size_t(i)].detection.box.width * faces[size_t(i)].detection.box.height; };
        std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return area(x) > area(y); });
    } else if (const int main = PickMainFace(faces); main >= 0 && faces[size_t(main)].embedding) {
        order.push_back(main);
    }
    if (order.empty()) return NotFound("no face found in " + a.images[0]);
    for (int i : order) {
        auto& f = faces[size_t(i)];
        probes.push_back(Probe{std::move(*f.embedding), std::nullopt, f.detection});
    }
    if (a.liveness) {
        // The faces that were embedded are the ones judged, so a spoof cannot hide behind a live bystander.
        FG_ASSIGN_OR_RETURN(auto model, ew.engine->Liveness(a.liveness_model));
        FG_ASSIGN_OR_RETURN(auto checker, model->CreateChecker({.threshold = a.liveness_threshold}));
        std::vector<vision::FaceDetection> boxes;
        for (const auto& p : probes) boxes.push_back(*p.detection);
        std::vector<vision::LivenessResult> live;
        FG_RETURN_IF_ERROR(checker->CheckBatch(img, boxes, live));
        if (live.size() != probes.size()) return Internal("liveness returned a wrong number of results");
        for (size_t i = 0; i < probes.size(); ++i) probes[i].liveness = live[i];
    }
    return probes;
}

/// The main face only (verify).
Result<Probe> ProbeFromArgs(const GalleryArgs& a, const Gallery& g) {
    FG_ASSIGN_OR_RETURN(auto probes, ProbesFromArgs(a, g, false));
    return std::move(probes.front());
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
            vision::GateDecision d = vision::CheckEnrollmentFaces(*found);
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
    auto page = (*g)->ListSubjects(a.after, a.limit);
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

/// Every face of the probe image is identified (an image of two enrolled people names both).
/// JSON: {"faces": [{box, detection_score, decision, subject_id, reason, threshold, margin,
/// candidates, liveness?}, ...]} largest face first; the top-level decision..candidates
/// repeat faces[0] for callers written when only the largest face was answered.
int RunIdentify(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    auto probes = ProbesFromArgs(a, **g, true);
    if (!probes.ok()) return Fail(probes.status());
    nlohmann::json faces = nlohmann::json::array();
    int n = 0, known = 0, spoofs = 0;
    for (const Probe& probe : *probes) {
        auto id = (*g)->Identify(probe.embedding, a.top_k);
        if (!id.ok()) return Fail(id.status());
        // A spoofed face is never a recognised subject, however well it matches (the photo of an
        // enrolled person matches by design). Candidates stay, so an audit sees who was targeted.
        const bool spoof = probe.liveness && !probe.liveness->live;
        if (spoof) {
            id->known = false;
            id->subject_id.clear();
            id->reason = "spoof";
        }
        known += id->known;
        spoofs += spoof;
        nlohmann::json j = ToJson(*id);
        if (spoof) j["decision"] = "spoof";
        if (probe.detection) {
            j["box"] = cli::ToJson(probe.detection->box);
            j["detection_score"] = probe.detection->score;
        }
        if (probe.liveness) j["liveness"] = LivenessJson(*probe.liveness);
        faces.push_back(j);
        if (a.json) continue;
        std::cout << "face " << ++n;
        if (probe.detection) {
            const Rect2f& b = probe.detection->box;
            std::printf(" [x %.0f y %.0f w %.0f h %.0f]", b.x, b.y, b.width, b.height);
        }
        if (probe.liveness) {
            std::printf(" liveness %.3f %s", probe.liveness->score, probe.liveness->live ? "live" : "SPOOF");
        }
        std::cout << ": " << (spoof ? "spoof" : id->known ? id->subject_id : "unknown") << " (" << id->reason << ")\n";
        for (const auto& c : id->candidates) std::printf("  %-24s %.4f\n", c.subject_id.c_str(), c.score);
    }
    SetAuditOutcome("faces=" + std::to_string(faces.size()) + " known=" + std::to_string(known) +
                    " unknown=" + std::to_string(int(faces.size()) - known - spoofs) + " spoof=" + std::to_string(spoofs));
    if (a.json) {
        nlohmann::json out = faces.front();
        out.erase("box");
        out.erase("detection_score");
        out["faces"] = faces;
        PrintJson(out);
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
    SetAuditOutcome(spoof ? "spoof" : same ? "same" : "different");
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

/// The command as an audited action (cmd_audit.h RunAudited): `facegate audit` shows who ran it,
/// on what, with which exit code; never an image or an embedding.
Action Audited(const std::shared_ptr<GalleryArgs>& a, std::string name, std::function<std::string()> target,
               Action run) {
    return [a, name = std::move(name), target = std::move(target), run = std::move(run)] {
        // rotate-key: the audit log follows the gallery to the new key (cmd_audit.h).
        return RunAudited({a->audit_file, a->key_file, a->key_env, {}, name == "rotate_key" ? a->new_key_file : ""},
                          name, target(), run);
    };
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
        c->add_option("--audit", a->audit_file,
                      "Audit log for changes, identify and verify (default: $FG_AUDIT_FILE, else "
                      "~/.config/facegate/audit.db when it exists)");
    };
    const auto subject = [a] { return a->subject; };
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
    enroll->callback([a, subject, &action] { action = Audited(a, "enroll", subject, [a] { return RunEnroll(*a); }); });

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
        gal->add_subcommand("identify", "Who is in this image? Every face: top-k subjects and known/unknown/spoof");
    common(identify);
    probe(identify);
    identify->add_option("--top-k", a->top_k, "Candidates (default: the gallery's setting)");
    liveness(identify);
    identify->callback([a, identify, &action] {
        if (!a->liveness_model.empty() || identify->count("--liveness-threshold") > 0) a->liveness = true;
        action = Audited(a, "identify", [] { return std::string(); }, [a] { return RunIdentify(*a); });
    });

    CLI::App* verify = gal->add_subcommand("verify", "Is this the subject? (1:1)");
    common(verify);
    probe(verify);
    verify->add_option("--subject", a->subject, "Subject id")->required();
    liveness(verify);
    verify->callback([a, verify, subject, &action] {
        if (!a->liveness_model.empty() || verify->count("--liveness-threshold") > 0) a->liveness = true;
        action = Audited(a, "verify", subject, [a] { return RunVerify(*a); });
    });

    CLI::App* del =
        gal->add_subcommand("delete", "Delete a subject and erase all its face templates");
    common(del);
    del->add_option("--subject", a->subject, "Subject id")->required();
    del->callback([a, subject, &action] {
        action = Audited(a, "delete", subject, [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.DeleteSubject(a->subject); });
        });
    });

    CLI::App* rename = gal->add_subcommand("rename", "Change a subject's display name");
    common(rename);
    rename->add_option("--subject", a->subject, "Subject id")->required();
    rename->add_option("--name", a->name, "New display name")->required();
    rename->callback([a, subject, &action] {
        action = Audited(a, "update_subject", subject, [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.RenameSubject(a->subject, a->name); });
        });
    });

    CLI::App* meta = gal->add_subcommand("metadata", "Replace a subject's JSON metadata");
    common(meta);
    meta->add_option("--subject", a->subject, "Subject id")->required();
    meta->add_option("--set", a->metadata, "JSON object")->required();
    meta->callback([a, subject, &action] {
        action = Audited(a, "update_subject", subject, [a] {
            return RunSimple(*a,
                             [a](Gallery& g) { return g.UpdateMetadata(a->subject, a->metadata); });
        });
    });

    CLI::App* merge =
        gal->add_subcommand("merge", "Move all faces of one subject to another, delete the first");
    common(merge);
    merge->add_option("--from", a->from, "Subject to merge away")->required();
    merge->add_option("--into", a->into, "Subject that keeps the faces")->required();
    merge->callback([a, &action] {
        action = Audited(a, "merge", [a] { return a->from + "->" + a->into; }, [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.MergeSubjects(a->from, a->into); });
        });
    });

    CLI::App* rmface = gal->add_subcommand("remove-face", "Erase one face template");
    common(rmface);
    rmface->add_option("--face-id", a->face_id, "Face id (from enroll or identify)")->required();
    rmface->callback([a, &action] {
        action = Audited(a, "delete_face", [a] { return std::to_string(a->face_id); }, [a] {
            return RunSimple(*a, [a](Gallery& g) { return g.RemoveFace(a->face_id); });
        });
    });

    CLI::App* exp =
        gal->add_subcommand("export", "Write the versioned export, JSON Lines (plaintext embeddings!)");
    common(exp);
    exp->add_option("--out", a->file, "Output file (default stdout)");
    exp->callback([a, &action] {
        action = Audited(a, "export", [a] { return a->file; }, [a] { return RunExport(*a); });
    });

    CLI::App* imp = gal->add_subcommand(
        "import", "Import a JSON export, or bulk-enroll JSON Lines records (precomputed embeddings)");
    common(imp);
    a->engine.AddTo(*imp, true);  // only --pack matters: a new gallery's threshold
    imp->add_option("--in", a->file,
                    "Export file, or JSON Lines: {\"subject_id\": ..., \"embedding\": [...]} per line")
        ->required();
    imp->add_option("--batch", a->batch, "Records (faces) per transaction")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    imp->add_option("--model-id", a->model_id, "Model id of JSON Lines records without one");
    imp->add_flag("--force", a->force,
                  "JSON Lines: skip the duplicate_of_other_subject check (faster on big galleries)");
    imp->add_flag("--skip-existing", a->skip_existing,
                  "Skip subjects already present instead of failing");
    imp->callback([a, &action] {
        action = Audited(a, "import", [a] { return a->file; }, [a] { return RunImport(*a); });
    });

    CLI::App* rot = gal->add_subcommand("rotate-key", "Re-encrypt every template with a new key");
    common(rot);
    rot->add_option("--new-key-file", a->new_key_file, "New key file (created if missing)")
        ->required();
    rot->callback([a, &action] {
        action = Audited(a, "rotate_key", [] { return std::string(); }, [a] { return RunRotateKey(*a); });
    });

    CLI::App* reembed = gal->add_subcommand(
        "reembed", "Rebuild every template from its stored crop with --pack's embedder");
    common(reembed);
    a->engine.AddTo(*reembed, true);
    reembed->callback([a, &action] {
        action = Audited(a, "reembed", [] { return std::string(); }, [a] { return RunReembed(*a); });
    });

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
    cal->add_flag("--save", a->save_curve,
                  "Store the TAR/FAR curve (thresholds 0.20..0.80) in --db (GET /v1/calibration)");
    cal->callback([a, &action] { action = [a] { return RunCalibrate(*a); }; });
}

}  // namespace fg::cli
