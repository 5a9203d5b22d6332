// SPDX-License-Identifier: Apache-2.0
// The one config file of `facegate serve` (docs/serve-config.md): HTTP server (listen, TLS,
// threads, limits, CORS, rate limit), API keys, audit log, API settings, the scale-out results
// it shows (cluster), plus everything of a
// `facegate run` file (engine, gallery, streams, pipeline, sinks). Every field has a default;
// every error names the field; FG_SERVE_<NAME> environment variables override single fields.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/api/api.h"
#include "fg/base/status.h"
#include "fg/pipeline/run_config.h"
#include "fg/server/http.h"

namespace fg::api {

/// The `cluster` section: serve reads the recognition results the workers of these regions put
/// on the bus (docs/scale.md, "Serve beside the cluster").
struct ServeClusterConfig {
    std::string bus;                   ///< nats://host:port[,...] or kafka://host:port[,...]
    std::vector<std::string> regions;  ///< routing tokens, at least one, no repeats
    std::string group = "serve";       ///< the consumer group (a token): one per serve
    /// Seconds between gathering the nodes' statuses and the regions' backlogs into the
    /// facegate_cluster_* gauges and GET /v1/cluster (0: off). NATS only (Kafka has no
    /// request/reply).
    int status_interval_s = 15;
    std::string workers_group = "workers";  ///< the workers' work-queue group, for the backlog
    int replicas = 2;                       ///< replicas each shard should have (shard health)
};

struct ServeConfig {
    server::ServerConfig server;
    std::string keys_file;        ///< auth.keys_file: the API key store ("" = `facegate keys`' default)
    std::string audit_file;       ///< audit.file: "" = no audit log
    /// audit.key_file: the gallery key file the audit MAC key is derived from ("" = the
    /// gallery's key_file, else $FG_GALLERY_KEY, else the per-user key, as `facegate audit`).
    std::string audit_key_file;
    ApiOptions api;
    std::size_t events_backlog = 1000;  ///< api.events_backlog: events kept for Last-Event-ID
    pipeline::RunConfig run;            ///< engine, gallery, streams, pipeline, sinks
    std::optional<ServeClusterConfig> cluster;  ///< unset: no results read from a bus
    /// Each configured stream's JSON as written (GET /v1/streams/{id} shows it).
    std::map<std::string, nlohmann::json> stream_specs;
};

/// One FG_SERVE_<name> variable: the field it sets and how its text is read.
struct ServeEnvVar {
    std::string name;   ///< e.g. "FG_SERVE_LISTEN_PORT"
    std::string field;  ///< e.g. "listen.port"
    std::string type;   ///< "string", "path", "integer", "number", "boolean", "list" (comma-separated)
};
const std::vector<ServeEnvVar>& ServeEnvVars();

using GetEnv = std::function<const char*(const char*)>;

/// Applies the environment overrides (paths given there are relative to the working directory),
/// then parses and validates. Relative paths in the file are relative to `base_dir`.
Result<ServeConfig> ParseServeConfig(nlohmann::json j, const std::filesystem::path& base_dir,
                                     const GetEnv& getenv = [](const char* n) { return std::getenv(n); });
/// Reads FILE (JSON, comments allowed); "" = no file: defaults plus the environment.
Result<ServeConfig> LoadServeConfig(const std::filesystem::path& file,
                                    const GetEnv& getenv = [](const char* n) { return std::getenv(n); });

/// The effective config as JSON (for `facegate config check --print`).
nlohmann::json ServeConfigSummary(const ServeConfig& c);

}  // namespace fg::api
