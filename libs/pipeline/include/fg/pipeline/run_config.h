// SPDX-License-Identifier: Apache-2.0
// The `facegate run --config FILE` file: streams, engine, gallery, pipeline and sinks in one
// JSON document. Every option has a default; every error names the option (docs/run-config.md).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/pipeline/pipeline.h"

namespace fg::pipeline {

struct EngineSection {
    std::string pack = "default";
    std::string detector_pack;
    std::string embedder_pack;
    std::string backend = "auto";
    int threads = 1;               ///< inference threads per worker (one worker per stream)
    float score_threshold = 0.5f;  ///< detector
    float min_face = 20.f;         ///< pixels
    bool flip = true;              ///< embedder flip fusion
};

struct GallerySection {
    std::string db;                          ///< "" = no gallery: every face is unknown
    std::string key_file;                    ///< "" = $key_env, else the per-user key file
    std::string key_env = "FG_GALLERY_KEY";
    bool create = false;                     ///< create the SQLite gallery when its file is missing
};

/// Recognition history (libs/history, docs/history.md): every track decision stored, sealed
/// with the gallery key. Needs a gallery; off without one.
struct HistorySection {
    bool enabled = true;
    /// "" = beside the gallery: <gallery db>.history.db, or the gallery's own PostgreSQL database;
    /// a file path or a postgres:// URL otherwise (docs/history.md).
    std::string location;
    int retention_days = 7;  ///< 0 = keep nothing
    bool keep_crops = true;  ///< store the best-shot crop (sealed)
};

struct RunConfig {
    EngineSection engine;
    GallerySection gallery;
    HistorySection history;
    PipelineConfig pipeline;
    nlohmann::json sinks = nlohmann::json::array();  ///< events::CreateSinkFromJson objects
};

/// Parses and validates. Relative paths in the file (gallery db, key file, file sources,
/// draw_dir, jsonl sinks) are resolved against `base_dir` (the config file's folder).
/// `require_streams` = false accepts a config without streams (`facegate serve` adds them later
/// through its API).
Result<RunConfig> ParseRunConfig(const nlohmann::json& j, const std::filesystem::path& base_dir,
                                 bool require_streams = true);
/// One `streams[]` entry (also the body of `POST /v1/streams`); errors are prefixed by `where`.
Result<StreamSpec> ParseStreamSpec(const nlohmann::json& j, const std::string& where,
                                   const std::filesystem::path& base_dir);
Result<RunConfig> LoadRunConfig(const std::filesystem::path& file);

}  // namespace fg::pipeline
