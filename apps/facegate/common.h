// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the facegate subcommands: engine options, JSON output, errors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/eval/face_choice.h"
#include "fg/vision/engine.h"

namespace fg::gallery {
class Gallery;
class KeyRing;
}  // namespace fg::gallery

namespace fg::vision {
struct LivenessResult;
struct FaceAttributes;
}  // namespace fg::vision

namespace fg::cli {

/// Exit codes of every subcommand.
enum ExitCode : int {
    kExitOk = 0,
    kExitError = 1,     ///< bad input, missing model, failed check
    kExitUsage = 2,     ///< wrong command line
};

/// Engine options shared by the commands that run models.
struct EngineOptions {
    std::string pack = "default";
    std::string detector_pack;
    std::string embedder_pack;
    std::string backend = "auto";
    int threads = 0;
    float score_threshold = 0.5f;
    float min_face = 20.f;
    bool no_flip = false;
    std::string pad = "auto";
    bool upscale = false;

    void AddTo(CLI::App& cmd, bool embedder_options = true);
    Result<vision::EngineConfig> ToConfig(bool load_embedder = true) const;
};

/// An engine and one worker for the single-threaded commands.
struct EngineAndWorker {
    std::shared_ptr<vision::Engine> engine;
    std::unique_ptr<vision::Worker> worker;
};
Result<EngineAndWorker> MakeEngineWorker(const EngineOptions& options, bool load_embedder = true);

/// The command to run after parsing; returns the process exit code.
using Action = std::function<int()>;

void RegisterImageCommands(CLI::App& app, Action& action);   // detect, embed, compare
void RegisterModelsCommands(CLI::App& app, Action& action);  // models list|verify
void RegisterEvalCommands(CLI::App& app, Action& action);    // eval pairs
void RegisterOpenSetCommand(CLI::App& app, Action& action);  // eval openset
void RegisterDemoCommand(CLI::App& app, Action& action);     // demo
void RegisterGalleryCommands(CLI::App& app, Action& action); // gallery ...
void RegisterBenchCommands(CLI::App& app, Action& action);   // bench models
void RegisterStreamCommands(CLI::App& app, Action& action);  // run, bench stream|cameras
void RegisterLivenessCommands(CLI::App& app, Action& action);// liveness, eval pose|attributes
void RegisterBenchGalleryCommand(CLI::App& app, Action& action);  // bench gallery
void RegisterKeysCommands(CLI::App& app, Action& action);    // keys create|list|revoke
void RegisterAuditCommands(CLI::App& app, Action& action);   // audit, audit verify
void RegisterServeCommands(CLI::App& app, Action& action);   // serve, config check
void RegisterHistoryCommands(CLI::App& app, Action& action); // history list|show|purge|strangers
void RegisterEdgeCommands(CLI::App& app, Action& action);    // edge (scale-out)
void RegisterWorkerCommands(CLI::App& app, Action& action);  // worker (scale-out)
void RegisterClusterCommands(CLI::App& app, Action& action); // cluster status (scale-out)

/// The subcommand `name` of `app` (a group such as `eval` or `bench`), added on first use with
/// `description` and one required subcommand. Every Register* reaches a group through this, so
/// they can be called in any order.
CLI::App* SubcommandOf(CLI::App& app, const std::string& name, const std::string& description);

/// Prints `error: <message>` to stderr and returns kExitError.
int Fail(const Status& status);

/// Where a gallery is and how its key is found.
struct GalleryLocation {
    std::string db;                          ///< SQLite path or postgresql:// URL
    std::string key_file;                    ///< "" = $key_env, else the per-user key file
    std::string key_env = "FG_GALLERY_KEY";
    /// A missing SQLite gallery file is created (the `gallery` commands). `run` and `serve`
    /// set it only with --create / "create": true, so a typo in a path never starts an empty
    /// gallery (nor creates a key).
    bool create = true;
};
/// NotFound, naming --create, when `where` is a SQLite path that does not exist and
/// `where.create` is false.
Status CheckGalleryExists(const GalleryLocation& where);
/// Opens (creating on first use, see GalleryLocation::create) a gallery. The key: --key-file, else $FG_GALLERY_KEY (hex),
/// else the per-user key file, created (0600) on first use. A new gallery takes the embedder
/// pack's verify_threshold.
/// `holds`: open a partial replica of those subjects only (a shard; GalleryOptions::holds).
Result<std::unique_ptr<gallery::Gallery>> OpenGalleryAt(
    const GalleryLocation& where, const EngineOptions& engine,
    std::function<bool(std::string_view)> holds = nullptr);
/// The key alone (rotate-key): same search order as OpenGalleryAt.
Result<std::shared_ptr<const gallery::KeyRing>> ResolveGalleryKeys(const GalleryLocation& where);
/// The raw key bytes (32), same search order (the audit key is derived from them).
Result<std::vector<std::uint8_t>> ResolveGalleryKeyBytes(const GalleryLocation& where);
/// $XDG_CONFIG_HOME/facegate/gallery.key, else ~/.config/facegate/gallery.key.
std::filesystem::path DefaultGalleryKeyPath();

/// Prints JSON (pretty when `pretty`) to stdout.
void PrintJson(const nlohmann::json& j, bool pretty = true);

nlohmann::json ToJson(const Rect2f& r);
nlohmann::json ToJson(const vision::FaceDetection& d);
nlohmann::json ToJson(const vision::QualityReport& q);
// Defined in cmd_liveness.cc (forward-declared: common.h stays free of those headers).
nlohmann::json LivenessJson(const vision::LivenessResult& r);
nlohmann::json AttributesJson(const vision::FaceAttributes& a);

/// The main face of one image (see eval::FaceChoice), embedded.
struct MainFaceResult {
    std::optional<vision::Embedding> embedding;  ///< none when no face was found
    std::string error;                           ///< load or inference error (not "no face")
    int faces = 0;                               ///< faces the detector found in the image
};
/// Embeds the main face of every image, `choice` saying which face that is (largest: the
/// largest box; center: the one nearest the image centre), one Worker per thread (`workers`
/// threads). `fatal` gets a worker creation error.
std::vector<MainFaceResult> EmbedMainFaces(const vision::Engine& engine,
                                           const std::vector<std::filesystem::path>& images,
                                           int workers, Status& fatal,
                                           eval::FaceChoice choice = eval::FaceChoice::kLargest);

/// Index of the face to use when one image should give one identity: the largest box.
int PickMainFace(const std::vector<vision::Face>& faces);

}  // namespace fg::cli
