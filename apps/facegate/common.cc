// SPDX-License-Identifier: Apache-2.0
#include "common.h"

#include <cstdlib>
#include <thread>
#include <mutex>
#include <atomic>
#include <filesystem>
#include <iostream>

#include "fg/gallery/crypto.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"
#include "fg/infer/model_pack.h"
#include <spdlog/spdlog.h>

namespace fg::cli {

void EngineOptions::AddTo(CLI::App& cmd, bool embedder_options) {
    cmd.add_option("--pack", pack, "Model pack: a built-in name or a manifest file")->capture_default_str();
    cmd.add_option("--detector-pack", detector_pack, "Take the detector (and landmarker) from this pack");
    cmd.add_option("--backend", backend, "Inference backend: auto (oneDNN, OpenCV fallback), onednn, opencv")
        ->check(CLI::IsMember({"auto", "onednn", "opencv"}))
        ->capture_default_str();
    cmd.add_option("--threads", threads, "Inference threads (0 = library default)")->capture_default_str();
    cmd.add_option("--score-threshold", score_threshold, "Minimum detector score")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    cmd.add_option("--min-face", min_face, "Minimum face size in pixels (0 = any)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd.add_option("--pad", pad, "Pad the image for face-filling crops: auto (retry when nothing found), always, never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
    cmd.add_flag("--upscale", upscale, "Enlarge images smaller than the detector input (off: detect at native size)");
    if (embedder_options) {
        cmd.add_option("--embedder-pack", embedder_pack, "Take the embedder from this pack");
        cmd.add_flag("--no-flip", no_flip, "Disable horizontal-flip fusion of embeddings");
    }
}

Result<vision::EngineConfig> EngineOptions::ToConfig(bool load_embedder) const {
    vision::EngineConfig c;
    c.pack = pack;
    c.detector_pack = detector_pack;
    c.embedder_pack = embedder_pack;
    c.backend.name = backend;
    c.backend.threads = threads;
    c.detector.score_threshold = score_threshold;
    c.detector.min_face_size = min_face;
    c.detector.pad = pad == "always" ? vision::PadPolicy::kAlways
                   : pad == "never"  ? vision::PadPolicy::kNever
                                     : vision::PadPolicy::kIfNoneFound;
    c.detector.upscale = upscale;
    c.embedder.flip_fusion = !no_flip;
    c.load_embedder = load_embedder;
    FG_RETURN_IF_ERROR(c.detector.Validate());
    return c;
}

Result<EngineAndWorker> MakeEngineWorker(const EngineOptions& options, bool load_embedder) {
    FG_ASSIGN_OR_RETURN(vision::EngineConfig cfg, options.ToConfig(load_embedder));
    EngineAndWorker ew;
    FG_ASSIGN_OR_RETURN(ew.engine, vision::Engine::Create(cfg));
    FG_ASSIGN_OR_RETURN(ew.worker, ew.engine->CreateWorker());
    return ew;
}

std::filesystem::path DefaultGalleryKeyPath() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    std::filesystem::path base = xdg && *xdg     ? std::filesystem::path(xdg)
                                 : home && *home ? std::filesystem::path(home) / ".config"
                                                 : std::filesystem::path(".");
    return base / "facegate" / "gallery.key";
}

namespace {

Result<gallery::TemplateKey> ResolveGalleryKey(const GalleryLocation& where) {
    Result<gallery::TemplateKey> key = NotFound("");
    if (!where.key_file.empty()) {
        key = gallery::LoadKeyFile(where.key_file);
    } else if (const char* v = std::getenv(where.key_env.c_str()); v && *v) {
        key = gallery::LoadKeyEnv(where.key_env);
    } else {
        const auto path = DefaultGalleryKeyPath();
        std::error_code ec;
        if (std::filesystem::exists(path, ec)) {
            key = gallery::LoadKeyFile(path);
        } else {
            key = gallery::CreateKeyFile(path);
            if (key.ok()) {
                std::cerr << "note: created the gallery key " << path.string() << " (keep it safe)\n";
            }
        }
    }
    return key;
}

}  // namespace

Result<std::vector<std::uint8_t>> ResolveGalleryKeyBytes(const GalleryLocation& where) {
    FG_ASSIGN_OR_RETURN(gallery::TemplateKey key, ResolveGalleryKey(where));
    return std::move(key.bytes);
}

Result<std::shared_ptr<const gallery::KeyRing>> ResolveGalleryKeys(const GalleryLocation& where) {
    FG_ASSIGN_OR_RETURN(gallery::TemplateKey key, ResolveGalleryKey(where));
    return std::shared_ptr<const gallery::KeyRing>(
        std::make_shared<gallery::KeyRing>(std::move(key)));
}

Status CheckGalleryExists(const GalleryLocation& where) {
    if (where.create || where.db.empty() || where.db.starts_with("postgres")) return Status::Ok();
    std::error_code ec;
    if (std::filesystem::exists(where.db, ec)) return Status::Ok();
    return NotFound("gallery " + where.db +
                    " does not exist; pass --create (or \"create\": true in the gallery section) "
                    "to start with a new, empty gallery");
}

Result<std::unique_ptr<gallery::Gallery>> OpenGalleryAt(const GalleryLocation& where,
                                                        const EngineOptions& engine,
                                                        std::function<bool(std::string_view)> holds) {
    // Before the key: a mistyped path must not create a key file either.
    FG_RETURN_IF_ERROR(CheckGalleryExists(where));
    FG_ASSIGN_OR_RETURN(auto keys, ResolveGalleryKeys(where));
    gallery::GalleryOptions o{.location = where.db, .keys = keys, .index = {}, .snapshot_path = {}};
    o.create_if_missing = where.create;
    o.holds = std::move(holds);
    auto pack = infer::ResolvePack(engine.embedder_pack.empty() ? engine.pack : engine.embedder_pack);
    if (pack.ok()) o.default_threshold = vision::DefaultVerifyThreshold(*pack);
    return gallery::Gallery::Open(o);
}

int Fail(const Status& status) {
    std::cerr << "error: " << status.ToString() << "\n";
    return kExitError;
}

CLI::App* SubcommandOf(CLI::App& app, const std::string& name, const std::string& description) {
    for (CLI::App* c : app.get_subcommands([&](CLI::App* s) { return s->get_name() == name; }))
        return c;
    CLI::App* group = app.add_subcommand(name, description);
    group->require_subcommand(1);
    return group;
}

void PrintJson(const nlohmann::json& j, bool pretty) {
    std::cout << (pretty ? j.dump(2) : j.dump()) << "\n";
}

nlohmann::json ToJson(const Rect2f& r) {
    return {{"x", r.x}, {"y", r.y}, {"width", r.width}, {"height", r.height}};
}

nlohmann::json ToJson(const vision::FaceDetection& d) {
    nlohmann::json lm = nlohmann::json::array();
    for (const Point2f& p : d.landmarks) lm.push_back({p.x, p.y});
    return {{"box", ToJson(d.box)}, {"score", d.score}, {"landmarks", lm}};
}

nlohmann::json ToJson(const vision::QualityReport& q) {
    return {{"score", q.score},
            {"face_size_px", q.face_size_px},
            {"sharpness", q.sharpness},
            {"brightness", q.brightness},
            {"contrast", q.contrast},
            {"pose", {{"yaw", q.pose.yaw}, {"pitch", q.pose.pitch}, {"roll", q.pose.roll}}},
            {"detector_score", q.detector_score},
            {"factors",
             {{"size", q.size_factor},
              {"sharpness", q.sharpness_factor},
              {"exposure", q.exposure_factor},
              {"pose", q.pose_factor}}}};
}

namespace {

/// Detects every face, picks one with `choice` and embeds only that one (the same alignment
/// as Worker::Analyze, without embedding faces nobody asked about).
Status EmbedChosenFace(vision::Worker& worker, const cv::Mat& img, eval::FaceChoice choice,
                       MainFaceResult& result) {
    FG_ASSIGN_OR_RETURN(std::vector<vision::FaceDetection> dets, worker.Detect(img));
    result.faces = static_cast<int>(dets.size());
    std::vector<Rect2f> boxes;
    boxes.reserve(dets.size());
    for (const auto& d : dets) boxes.push_back(d.box);
    const int pick = eval::PickFace(boxes, float(img.cols), float(img.rows), choice);
    if (pick < 0) return Status::Ok();
    std::vector<vision::Embedding> out;
    FG_RETURN_IF_ERROR(worker.Embed(img, std::span(&dets[size_t(pick)], 1), out));
    if (out.size() != 1) return Internal("embedder returned no embedding");
    result.embedding = std::move(out.front());
    return Status::Ok();
}

}  // namespace

std::vector<MainFaceResult> EmbedMainFaces(const vision::Engine& engine,
                                           const std::vector<std::filesystem::path>& images,
                                           int workers, Status& fatal, eval::FaceChoice choice) {
    std::vector<MainFaceResult> results(images.size());
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
    std::mutex mu;
    auto body = [&] {
        auto worker = engine.CreateWorker();
        if (!worker.ok()) {
            std::lock_guard lock(mu);
            fatal = worker.status();
            return;
        }
        for (size_t i = next++; i < images.size(); i = next++) {
            auto img = LoadImage(images[i]);
            if (!img.ok()) {
                results[i].error = img.status().ToString();
            } else if (Status s = EmbedChosenFace(**worker, *img, choice, results[i]); !s.ok()) {
                results[i].error = s.ToString();
            }
            const size_t d = ++done;
            if (d % 500 == 0) spdlog::info("{}/{} images embedded", d, images.size());
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < std::max(1, workers); ++t) threads.emplace_back(body);
    for (auto& t : threads) t.join();
    return results;
}

int PickMainFace(const std::vector<vision::Face>& faces) {
    std::vector<Rect2f> boxes;
    boxes.reserve(faces.size());
    for (const auto& f : faces) boxes.push_back(f.detection.box);
    return eval::PickFace(boxes, 0, 0, eval::FaceChoice::kLargest);
}

}  // namespace fg::cli
