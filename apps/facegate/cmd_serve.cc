// SPDX-License-Identifier: Apache-2.0
// facegate serve --config FILE: the REST API, the gallery and the stream pipeline in one process
// (docs/serve-config.md, docs/api.md). facegate config check --config FILE: validates the file.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cmd_audit.h"
#include "common.h"
#include "fg/api/api.h"
#include "fg/api/serve_config.h"
#include "fg/auth/http_auth.h"
#include "fg/auth/key_store.h"
#include "fg/base/log.h"
#include "fg/gallery/gallery.h"
#include "fg/metrics/service_metrics.h"
#include "fg/server/http.h"
#include "stream_root.h"

namespace fg::cli {
namespace {

std::atomic<bool> g_stop{false};

// The first Ctrl-C / SIGTERM stops cleanly; a second one exits at once.
extern "C" void OnServeSignal(int) {
    if (g_stop.exchange(true)) std::_Exit(130);
}

struct ServeArgs {
    std::string config;
    bool create_admin_key = false;
    bool json = false;
    bool create = false;  ///< --create: a missing SQLite gallery is created
};

/// The API's audit hook over the audit log: result "ok" with the outcome in details, or the
/// error text (ids and codes only: handlers never pass images or embeddings). Asynchronous: the
/// record joins the next group commit and `done` runs on the log's commit thread once it is
/// durable, so no IO or compute thread waits for the fsync (libs/audit/README.md).
api::AuditAsyncHook MakeAuditHook(std::shared_ptr<audit::AuditLog> log, std::shared_ptr<metrics::ServiceMetrics> m) {
    return [log, m](const server::Principal& p, const std::string& action, const std::string& target,
                    const std::string& result, std::function<void(Status)> done) {
        audit::Record r;
        r.who = p.key_id.empty() ? "anonymous" : p.key_id;
        r.who_name = p.name;
        r.action = action;
        r.target = target.substr(0, 256);
        const bool ok = result == "ok" || result == "known" || result == "unknown" || result == "same" ||
                        result == "different" || result.starts_with("faces=") || result.starts_with("enrolled=");
        r.result = ok ? "ok" : "ERROR";
        r.details = {{ok ? "outcome" : "message", result.substr(0, 512)}};
        log->AppendAsync(std::move(r), [m, action, done = std::move(done)](Result<audit::Record> w) {
            if (!w.ok()) {
                spdlog::error("audit log: {}", w.status().message());
            } else if (m) {
                m->RecordAudit(action);
            }
            if (done) done(w.status());
        });
    };
}

int Serve(const ServeArgs& a) {
    auto cfg = api::LoadServeConfig(a.config);
    if (!cfg.ok()) return Fail(cfg.status());
    const GalleryLocation gallery_at{cfg->run.gallery.db, cfg->run.gallery.key_file, cfg->run.gallery.key_env,
                                     a.create || cfg->run.gallery.create};
    // First: a mistyped gallery path must not start a service (or create keys) at all.
    if (Status s = CheckGalleryExists(gallery_at); !s.ok()) return Fail(s.WithContext("gallery.db"));

    // Keys first: a service that cannot authenticate must not start.
    auto keys = auth::KeyStore::Open(cfg->keys_file.empty() ? auth::DefaultKeyStorePath()
                                                            : std::filesystem::path(cfg->keys_file));
    if (!keys.ok()) return Fail(keys.status().WithContext("auth.keys_file"));
    std::shared_ptr<auth::KeyStore> store = std::move(*keys);
    auto metrics = std::make_shared<metrics::ServiceMetrics>();
    std::shared_ptr<audit::AuditLog> audit_log;
    if (!cfg->audit_file.empty()) {
        auto log = OpenAudit({cfg->audit_file,
                              cfg->audit_key_file.empty() ? cfg->run.gallery.key_file : cfg->audit_key_file,
                              cfg->run.gallery.key_env});
        if (!log.ok()) return Fail(log.status().WithContext("audit"));
        audit_log = std::move(*log);
    }
    if (a.create_admin_key) {
        auto k = store->Create("serve-admin", {"admin"});
        if (!k.ok()) return Fail(k.status());
        if (audit_log) {
            (void)RecordCli(*audit_log, "key_create", k->info.id, Status::Ok(), {{"scopes", "admin"}});
        }
        std::printf("admin key: %s\n", k->secret.c_str());
        std::fflush(stdout);
    }

    StreamRootConfig rootc{FromSection(cfg->run.engine), gallery_at, {}};
    for (const auto& s : cfg->run.sinks) rootc.sinks.push_back(s);
    // The live feed: every stored decision also goes out as an SSE "sighting" (never a crop).
    auto hub = std::make_shared<api::EventHub>(cfg->events_backlog);
    rootc.history = cfg->run.history;
    rootc.on_sighting = [hub](const history::Sighting& s) {
        hub->PublishJson(s.stream, "sighting", nlohmann::json{{"type", "sighting"}, {"sighting", history::ToJson(s)}}.dump());
    };
    auto root = StreamRoot::Build(rootc);
    if (!root.ok()) return Fail(root.status());

    auto live = std::make_shared<api::LiveView>();
    auto pipe = root->MakePipeline(cfg->run.pipeline, hub,
                                   {live, std::make_shared<metrics::MetricsObserver>(metrics)});
    if (!pipe.ok()) return Fail(pipe.status());
    std::unique_ptr<pipeline::Pipeline> pipeline = std::move(*pipe);

    // The context outlives the server (declared first, destroyed last).
    api::ApiContext ctx;
    ctx.engine = root->engine;
    ctx.gallery = root->gallery;
    ctx.gallery_configured = !cfg->run.gallery.db.empty();
    ctx.pipeline = pipeline.get();
    ctx.stream_specs = cfg->stream_specs;
    ctx.events = hub;
    ctx.live = live;
    ctx.options = cfg->api;
    if (audit_log) ctx.audit_async = MakeAuditHook(audit_log, metrics);
    ctx.audit_log = audit_log;
    ctx.history = root->history;
    ctx.metrics = [m = metrics.get(), p = pipeline.get(), g = root->gallery]() {
        m->Collect(p->Stats());
        if (g) {
            if (auto st = g->Stats(); st.ok()) m->SetGallerySize(st->subjects, st->templates);
        }
        return m->Serialize();
    };
    server::Authenticator authenticator = auth::MakeAuthenticator(store);
    ctx.authenticate = authenticator;  // POST /v1/session checks the key it is given
    ctx.secure_cookies = cfg->server.tls.has_value();
    server::Router router;
    api::AddRoutes(router, ctx);
    auto srv = server::Server::Create(cfg->server, std::move(router), authenticator,
                                      metrics->HttpObserver());
    if (!srv.ok()) return Fail(srv.status());
    metrics->SetInferenceThreads("compute", cfg->server.compute_threads);

    std::signal(SIGINT, OnServeSignal);
    std::signal(SIGTERM, OnServeSignal);
    if (Status st = pipeline->Start(); !st.ok()) return Fail(st);
    if (Status st = (*srv)->Start(); !st.ok()) {
        pipeline->Stop();
        return Fail(st);
    }
    const std::string url = std::string(cfg->server.tls ? "https" : "http") + "://" +
                            cfg->server.listen_address + ":" + std::to_string((*srv)->port());
    if (a.json) {
        PrintJson({{"url", url}, {"port", (*srv)->port()}}, false);
    } else {
        std::printf("facegate serve: listening on %s (API: %s/v1/openapi.json)\n", url.c_str(), url.c_str());
    }
    std::fflush(stdout);
    double compute_busy = 0;  // the compute pool's busy seconds already added to the metrics
    while (!g_stop) {
        (*srv)->compute_queue_depth();  // cheap; keeps the loop honest about the server
        metrics->SetComputeQueueDepth(static_cast<double>((*srv)->compute_queue_depth()));
        const double busy = (*srv)->compute_busy_seconds();
        metrics->AddInferenceBusySeconds("compute", busy - compute_busy);  // the dashboard's utilisation
        compute_busy = busy;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    spdlog::info("stopping: closing connections, ending tracks, flushing sinks");
    ctx.accepting = false;
    (*srv)->Stop();
    pipeline->Stop();
    if (root->recorder) root->recorder->Stop();  // stores what the streams decided last
    if (root->history) root->history->Stop();
    if (root->gallery) {
        if (Status st = root->gallery->Close(); !st.ok()) spdlog::warn("gallery close: {}", st.message());
    }
    return kExitOk;
}

int CheckConfig(const ServeArgs& a) {
    auto cfg = api::LoadServeConfig(a.config);
    if (!cfg.ok()) return Fail(cfg.status());
    if (a.json) {
        PrintJson({{"ok", true}, {"config", api::ServeConfigSummary(*cfg)}});
    } else {
        std::printf("%s: OK (%zu stream(s), listen %s:%d)\n", a.config.empty() ? "(defaults)" : a.config.c_str(),
                    cfg->run.pipeline.streams.size(), cfg->server.listen_address.c_str(), cfg->server.port);
    }
    return kExitOk;
}

}  // namespace

void RegisterServeCommands(CLI::App& app, Action& action) {
    auto args = std::make_shared<ServeArgs>();
    CLI::App* serve = app.add_subcommand("serve", "Run the REST API, the gallery and the streams (docs/api.md)");
    serve->add_option("--config", args->config, "Service config (docs/serve-config.md); FG_SERVE_* override fields");
    serve->add_flag("--create-admin-key", args->create_admin_key,
                    "Create an admin API key at start and print it on stdout (demos; shown once)");
    serve->add_flag("--json", args->json, "Print the listening URL as JSON");
    serve->add_flag("--create", args->create,
                    "Create the gallery if its file does not exist (else a missing gallery is an error)");
    serve->callback([&action, args] { action = [args] { return Serve(*args); }; });

    CLI::App* config = SubcommandOf(app, "config", "Service configuration");
    CLI::App* check = config->add_subcommand("check", "Validate a serve config file (with FG_SERVE_* applied)");
    check->add_option("--config", args->config, "Service config file")->required();
    check->add_flag("--json", args->json, "Print the effective settings as JSON");
    check->callback([&action, args] { action = [args] { return CheckConfig(*args); }; });
}

}  // namespace fg::cli
