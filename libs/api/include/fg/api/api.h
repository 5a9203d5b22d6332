// SPDX-License-Identifier: Apache-2.0
// The REST API of `facegate serve` (docs/api.md, api/openapi.json): handlers for /v1 and the
// health probes, registered on a server::Router over what the service runs (engine, gallery,
// stream pipeline, event hub).
//
//   fg::api::ApiContext ctx;                       // must outlive the server
//   ctx.engine = engine; ctx.gallery = gallery; ctx.pipeline = pipeline.get();
//   ctx.events = hub; ctx.live = live_view;        // also given to the pipeline
//   fg::server::Router router;
//   fg::api::AddRoutes(router, ctx);
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "fg/api/event_hub.h"
#include "fg/api/live_view.h"
#include "fg/server/http.h"

namespace fg::vision {
class Engine;
}
namespace fg::gallery {
class Gallery;
}
namespace fg::pipeline {
class Pipeline;
}
namespace fg::history {
class HistoryStore;
}
namespace fg::audit {
class AuditLog;
}

namespace fg::api {

struct ApiOptions {
    int max_faces = 50;          ///< faces per image answered; more is 422 too_many_faces
    int max_images = 10;         ///< images per enrollment request
    int max_page = 1000;         ///< largest ?limit= of a list
    int default_page = 100;
    int top_k = 5;               ///< default ?top_k= of identify
    bool enroll_gate = true;     ///< refuse poor enrollment photos (vision::CheckEnrollmentFaces)
    /// 1:1 threshold of /v1/verify; 0 = the gallery's threshold, else the pack's.
    float verify_threshold = 0;
    std::string liveness_preset;      ///< "" = the default preset
    float liveness_threshold = 0.5f;  ///< ?liveness=true: spoof below this
    std::chrono::milliseconds heartbeat{15000};  ///< SSE comment lines, so proxies keep it open
    double mjpeg_fps = 5;             ///< frames per second sent to each MJPEG client
    int max_sse_clients = 100;
    int max_mjpeg_clients = 16;
    std::filesystem::path base_dir = ".";  ///< relative file sources of POST /v1/streams
};

/// who, what action (identify, verify, enroll, delete, merge, ...), target (a subject id, a
/// stream id, ""), result ("ok", "not_found", an error code). Never an image or an embedding.
using AuditHook = std::function<void(const server::Principal&, const std::string& action,
                                     const std::string& target, const std::string& result)>;

/// AuditHook without waiting: `done` gets Ok once the record is durable, or why it could not be
/// written; called exactly once, from any thread (the audit log's commit thread).
using AuditAsyncHook = std::function<void(const server::Principal&, const std::string& action,
                                          const std::string& target, const std::string& result,
                                          std::function<void(Status)> done)>;

struct ApiRuntime;  // src/runtime.h: worker pools, stream specs, the SSE/MJPEG broadcaster

/// What the handlers use. Set the members, then AddRoutes; the context must outlive the
/// server. Thread-safety: the members are not changed after AddRoutes (except `accepting`).
struct ApiContext {
    std::shared_ptr<vision::Engine> engine;    ///< detect / identify / verify / enroll
    std::shared_ptr<gallery::Gallery> gallery;  ///< null: no gallery (identify is 409)
    bool gallery_configured = false;           ///< readiness: a gallery was asked for
    pipeline::Pipeline* pipeline = nullptr;    ///< null: no streams API (409)
    /// The JSON spec of each configured stream (as in the config), for GET /v1/streams/{id}.
    std::map<std::string, nlohmann::json> stream_specs;
    std::shared_ptr<EventHub> events;
    std::shared_ptr<LiveView> live;
    AuditHook audit;
    /// When set, /v1/identify and /v1/verify answer only once their record is durable, without
    /// holding a thread meanwhile (a deferred response), and 503 audit_unavailable when it
    /// cannot be written. AddRoutes derives `audit` from it when `audit` is unset (it then
    /// blocks until durable and throws 503 audit_unavailable on failure: never a 2xx).
    AuditAsyncHook audit_async;
    /// The log GET /v1/audit reads (null: 409 no_audit_log). Usually the one `audit` appends to.
    std::shared_ptr<audit::AuditLog> audit_log;
    /// Recognition history and strangers (null: the history routes answer 409 no_history).
    std::shared_ptr<history::HistoryStore> history;
    ApiOptions options;
    /// When set, GET /metrics (scope read) answers its text (Prometheus exposition format).
    std::function<std::string()> metrics;
    /// When set, /readyz adds its answer as "cluster" (serve's bus result consumer). It never
    /// changes readiness: a bus that is down must not take serve's own API out of service.
    std::function<nlohmann::json()> cluster_status;
    /// When set, GET /v1/cluster answers the last gathered cluster status (the document of
    /// `facegate cluster status --json`), or null before the first gathering (503). Unset: 409
    /// no_cluster (no `cluster` section, or its status_interval_s is 0).
    std::function<nlohmann::json()> cluster_snapshot;
    /// /readyz answers 503 once this is false (shutting down).
    std::atomic<bool> accepting{true};
    /// api/openapi.json as embedded at build time (set by AddRoutes when empty).
    std::string openapi;
    /// Checks the key of POST /v1/session (serve passes the server's authenticator); null:
    /// the session routes answer 409 no_auth.
    server::Authenticator authenticate;
    /// Set-Cookie fg_session gets `Secure` (serve sets it when TLS is on).
    bool secure_cookies = false;

    std::shared_ptr<ApiRuntime> runtime;  ///< made by AddRoutes
    ~ApiContext();
};

/// Registers every /v1 route, /healthz and /readyz on `router`, starts the broadcaster thread
/// (SSE heartbeats, MJPEG frames; stopped with the context).
void AddRoutes(server::Router& router, ApiContext& context);

/// api/openapi.json, embedded at build time.
const std::string& OpenApiDocument();

}  // namespace fg::api
