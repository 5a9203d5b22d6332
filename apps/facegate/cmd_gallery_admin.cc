// SPDX-License-Identifier: Apache-2.0
// facegate gallery export, import, reembed, rotate-key, settings, stats and calibrate: the
// commands that administer a whole gallery (split from cmd_gallery.cc to keep files short).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cmd_gallery.h"
#include "common.h"
#include "fg/eval/calibration.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"
#include "fg/infer/model_pack.h"

namespace fg::cli {

using gallery::Gallery;

int RunExport(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    // JSON Lines written as the store is read: memory stays flat at any gallery size.
    if (a.file.empty() || a.file == "-") {
        if (Status s = (*g)->ExportTo(std::cout); !s.ok()) return Fail(s);
        return kExitOk;
    }
    // Plaintext embeddings: the file is created 0600 whatever the umask (an existing one is
    // tightened) before anything is written to it.
    if (const int fd = ::open(a.file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600); fd >= 0) {
        (void)::fchmod(fd, 0600);
        ::close(fd);
    }
    std::ofstream out(a.file, std::ios::trunc);
    if (Status s = (*g)->ExportTo(out); !s.ok()) return Fail(s.WithContext(a.file));
    out.close();
    if (!out) return Fail(Unavailable("cannot write " + a.file));
    std::cerr << "note: " << a.file << " holds plaintext embeddings; protect it like the key\n";
    return kExitOk;
}

namespace {

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

/// calibrate --save: TAR and FAR (accept = score >= threshold, as the gallery decides) at
/// thresholds 0.20..0.80 step 0.01, for the console's settings page.
nlohmann::json CalibrationCurve(const eval::PairScores& scores) {
    std::vector<float> genuine = scores.genuine, impostor = scores.impostor;
    std::sort(genuine.begin(), genuine.end());
    std::sort(impostor.begin(), impostor.end());
    const auto rate_at_or_above = [](const std::vector<float>& v, float t) {
        if (v.empty()) return 0.0;
        return double(v.end() - std::lower_bound(v.begin(), v.end(), t)) / double(v.size());
    };
    nlohmann::json curve = nlohmann::json::array();
    for (int i = 20; i <= 80; ++i) {
        const float t = float(i) / 100.0f;
        curve.push_back({{"threshold", double(i) / 100.0},
                         {"tar", rate_at_or_above(genuine, t)},
                         {"far", rate_at_or_above(impostor, t)}});
    }
    return curve;
}

/// The labelled set's folder name (a full path could name a person or a host).
std::string SetName(const std::string& root) {
    std::filesystem::path p = std::filesystem::path(root).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.filename().string();
}

std::string Rfc3339Now() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

int RunImport(const GalleryArgs& a) {
    std::ifstream in(a.file);
    if (!in) return Fail(NotFound("cannot open " + a.file));
    // Bulk records are JSON Lines objects without "format" from the first line on; anything
    // else is an export (version 2 JSON Lines, or a version-1 document), streamed by the gallery.
    std::string first;
    while (std::getline(in, first) && first.find_first_not_of(" \t\r") == std::string::npos) {
    }
    const nlohmann::json head = nlohmann::json::parse(first, nullptr, false);
    const bool records = !head.is_discarded() && head.is_object() && !head.contains("format");
    in.clear();
    in.seekg(0);
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    if (records) return RunImportRecords(a, **g);
    auto n = (*g)->ImportFrom(in, {.skip_existing = a.skip_existing, .batch = a.batch});
    if (!n.ok()) return Fail(n.status().WithContext(a.file));
    PrintJson({{"imported_faces", *n}});
    return Finish(**g, kExitOk);
}

/// Rebuilds every template from its stored crop with --pack's embedder.
int RunReembed(const GalleryArgs& a) {
    auto g = OpenGallery(a);
    if (!g.ok()) return Fail(g.status());
    if (!(*g)->settings().keep_crops) {
        auto n = (*g)->Stats();
        if (n.ok() && n->templates > 0) {
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
    if (Status s = CheckGalleryExists({a.db, a.key_file, a.key_env, false}); !s.ok()) return Fail(s);
    auto old_keys = ResolveGalleryKeys(Where(a));
    if (!old_keys.ok()) return Fail(old_keys.status());
    std::error_code ec;
    auto fresh = std::filesystem::exists(a.new_key_file, ec)
                     ? gallery::LoadKeyFile(a.new_key_file)
                     : gallery::CreateKeyFile(a.new_key_file);
    if (!fresh.ok()) return Fail(fresh.status());
    // Opened with both keys: after an interrupted rotation rows are under either, and running
    // the same command again resumes it (docs/gallery.md "Keys").
    auto open_ring = std::make_shared<gallery::KeyRing>(**old_keys);
    open_ring->AddOld(*fresh);
    auto g = Gallery::Open({.location = a.db, .keys = open_ring, .index = {}, .snapshot_path = {}});
    if (!g.ok()) return Fail(g.status());
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
               {"store", s->store_kind},
               {"schema_version", s->schema_version},
               {"settings", (*g)->settings().ToJson()}});
    return kExitOk;
}

int RunCalibrate(const GalleryArgs& a) {
    if (a.save_curve && a.db.empty()) return Fail(InvalidArgument("--save needs --db"));
    std::error_code ec;
    if (!std::filesystem::is_directory(a.root, ec))
        return Fail(NotFound(a.root + " is not a folder"));
    auto ew = MakeEngineWorker(a.engine, true);
    if (!ew.ok()) return Fail(ew.status());
    const auto& engine = ew->engine;
    auto& worker = ew->worker;
    // One embedding per photo (its main face), labelled by its person's folder.
    std::vector<std::vector<float>> vectors;
    std::vector<int> labels;
    int skipped = 0;
    std::vector<std::filesystem::path> people;
    for (const auto& d : std::filesystem::directory_iterator(a.root, ec)) {
        if (d.is_directory()) people.push_back(d.path());
    }
    std::sort(people.begin(), people.end());
    for (size_t person = 0; person < people.size(); ++person) {
        std::vector<std::filesystem::path> photos;
        for (const auto& f : std::filesystem::directory_iterator(people[person], ec))
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
            vectors.push_back(std::move((*faces)[size_t(m)].embedding->values));
            labels.push_back(int(person));
        }
    }
    auto scores = eval::ScoreAllPairs(vectors, labels);
    if (!scores.ok()) return Fail(scores.status());
    // Computed before Calibrate takes the scores; Calibrate validates them (empty, non-finite).
    const nlohmann::json curve = a.save_curve ? CalibrationCurve(*scores) : nlohmann::json();
    auto rep = eval::Calibrate(std::move(scores->genuine), std::move(scores->impostor));
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
                       {"photos", vectors.size()},
                       {"skipped_photos", skipped},
                       {"genuine_pairs", rep->genuine_pairs},
                       {"impostor_pairs", rep->impostor_pairs},
                       {"points", points}};
    if (a.write_far > 0) {
        if (a.db.empty()) return Fail(InvalidArgument("--write-far needs --db"));
        const eval::OperatingPoint* it = eval::FindPoint(*rep, a.write_far);
        if (it == nullptr)
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
    if (a.save_curve) {
        auto g = OpenGallery(a);
        if (!g.ok()) return Fail(g.status());
        // The labelled set's folder name only: full paths can name people or hosts.
        const nlohmann::json saved{{"curve", curve},
                                   {"source", SetName(a.root)},
                                   {"created", Rfc3339Now()}};
        if (Status st = (*g)->SaveCalibration(saved); !st.ok()) return Fail(st);
        out["saved_curve_points"] = curve.size();
    }
    PrintJson(out);
    return kExitOk;
}

}  // namespace fg::cli
