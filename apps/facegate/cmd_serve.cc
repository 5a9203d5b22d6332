// SPDX-License-Identifier: Apache-2.0
// facegate serve --config FILE: the REST API, the gallery and the stream pipeline in one process
// (docs/serve-config.md, docs/api.md), optionally showing the scale-out cluster's results read
// from the bus (ClusterFeed) and gathering its nodes' statuses into metrics and GET /v1/cluster.
// facegate config check --config FILE: validates the file.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "cmd_audit.h"
#include "common.h"
#include "fg/api/api.h"
#include "fg/api/serve_config.h"
#include "fg/auth/http_auth.h"
#include "fg/auth/key_store.h"
#include "fg/base/log.h"
#include "fg/bus/bus.h"
#include "fg/cluster/bus_url.h"
#include "fg/cluster/change_stream.h"
#include "fg/cluster/cluster_status.h"
#include "fg/cluster/result_consumer.h"
#include "fg/events/event.h"
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

/// Serve beside the cluster (docs/scale.md): one ResultConsumer per configured region turns the
/// workers' results into live events on the hub (and sightings when the history is on), so the
/// console and SSE clients see the whole cluster. Connecting runs on a thread of its own and
/// retries, so a bus that is down never delays or fails serve's own API; ResultConsumer itself
/// keeps retrying once connected.
/// With cluster.status_interval_s > 0 it is also the cluster's metrics point: a thread of its
/// own gathers every node's status (NATS request/reply, ~1 s window) and each region's backlog
/// into the facegate_cluster_* gauges and the snapshot GET /v1/cluster answers.
/// Thread-safety: Start, Sample and Stop from the owner's thread; StatusJson and Snapshot from
/// any (HTTP handlers); the result callbacks run on the consumers' threads.
class ClusterFeed {
  public:
    struct Sinks {
        std::shared_ptr<api::EventHub> hub;
        std::shared_ptr<history::HistoryStore> history;  ///< null: bus results are not stored
        std::shared_ptr<gallery::Gallery> gallery;       ///< null: no display names
        std::shared_ptr<metrics::ServiceMetrics> metrics;
    };

    ClusterFeed(api::ServeClusterConfig config, std::shared_ptr<const gallery::KeyRing> keys, Sinks sinks)
        : config_(std::move(config)), keys_(std::move(keys)), sinks_(std::move(sinks)) {
        for (const std::string& r : config_.regions) {
            regions_.push_back({r, "connecting", 0, 0, {}});
            sinks_.metrics->SetClusterConnected(r, false);
            sinks_.metrics->AddClusterDuplicates(r, 0);
        }
    }
    ~ClusterFeed() { Stop(); }
    ClusterFeed(const ClusterFeed&) = delete;
    ClusterFeed& operator=(const ClusterFeed&) = delete;

    void Start() {
        started_ = std::chrono::steady_clock::now();
        connector_ = std::thread([this] { Connect(); });
        if (config_.status_interval_s > 0) poller_ = std::thread([this] { PollStatus(); });
    }

    /// Stops the consumers (the result in hand finishes), then drops the bus. Idempotent.
    void Stop() {
        {
            std::lock_guard lock(wake_mu_);
            stop_ = true;
        }
        wake_.notify_all();
        if (poller_.joinable()) poller_.join();  // before connected_ falls: it uses the bus
        connected_ = false;
        if (connector_.joinable()) connector_.join();
        for (auto& c : consumers_) c->Stop();
        consumers_.clear();
        if (relay_) relay_->Stop();
        relay_.reset();
        bus_.reset();
    }

    /// Each region's state ("connecting": no bus yet; "connected"; "disconnected": the bus was
    /// lost or a fetch failed in the last few seconds) into the metrics and StatusJson(); the
    /// consumers' duplicate counts into the metrics. Called every ~200 ms by serve's main loop.
    void Sample() {
        const auto now = std::chrono::steady_clock::now();
        bus::BusStats bs;
        const bool have_bus = connected_.load();
        if (have_bus) bs = bus_->stats();
        std::lock_guard lock(mu_);
        for (std::size_t i = 0; i < regions_.size(); ++i) {
            Region& r = regions_[i];
            std::string state = "connecting";
            if (have_bus) {
                const cluster::ResultConsumerStats st = consumers_[i]->stats();
                if (st.bus_errors != r.bus_errors) r.last_error = now;
                r.bus_errors = st.bus_errors;
                if (st.duplicates > r.duplicates) sinks_.metrics->AddClusterDuplicates(r.name, st.duplicates - r.duplicates);
                r.duplicates = st.duplicates;
                // A failed fetch backs off up to 2 s before the next: 3 s without one is "back".
                const bool failing = r.bus_errors > 0 && now - r.last_error < std::chrono::seconds(3);
                state = bs.disconnects > bs.reconnects || failing ? "disconnected" : "connected";
            }
            if (state != r.state) {
                spdlog::info("cluster: results of region {}: {}", r.name, state);
                sinks_.metrics->SetClusterConnected(r.name, state == "connected");
            }
            r.state = std::move(state);
        }
        if (config_.status_interval_s > 0) {
            // Since the last successful gathering (or serve's start): the stale-status alert.
            const auto since = last_status_ok_.load();
            const auto from = since.time_since_epoch().count() != 0 ? since : started_;
            sinks_.metrics->SetClusterStatusAge(std::chrono::duration<double>(now - from).count());
        }
    }

    /// For GET /v1/cluster: the last gathered status (ClusterStatusJson plus when), or null
    /// before the first gathering.
    nlohmann::json Snapshot() const {
        std::lock_guard lock(snapshot_mu_);
        return snapshot_;
    }

    /// For /readyz: the overall state (the worst region's) and each region's. No URL, no error
    /// text: /readyz needs no key.
    nlohmann::json StatusJson() const {
        std::lock_guard lock(mu_);
        nlohmann::json regions = nlohmann::json::object();
        std::string overall = "connected";
        for (const Region& r : regions_) {
            regions[r.name] = r.state;
            if (r.state == "disconnected" || (r.state == "connecting" && overall == "connected")) overall = r.state;
        }
        return {{"bus", overall}, {"group", config_.group}, {"regions", regions}};
    }

  private:
    struct Region {
        std::string name;
        std::string state;
        std::uint64_t bus_errors = 0;
        std::uint64_t duplicates = 0;
        std::chrono::steady_clock::time_point last_error;
    };

    // Connects (retrying, doubling from 0.5 s to 5 s, while the bus is unreachable), then starts
    // one consumer per region. A bad URL was refused by the config check already.
    void Connect() {
        std::chrono::milliseconds wait(500);
        while (!stop_) {
            Result<std::unique_ptr<bus::Bus>> b =
                cluster::ConnectBus(config_.bus, {.client_name = "facegate-serve", .publish_timeout = std::chrono::seconds(3)});
            if (b.ok()) {
                bus_ = std::move(*b);
                break;
            }
            // The message may carry the URL (and its credentials): the code only.
            spdlog::warn("cluster: bus not reachable ({}), retrying in {} ms", StatusCodeName(b.status().code()),
                         wait.count());
            for (auto until = std::chrono::steady_clock::now() + wait; !stop_ && std::chrono::steady_clock::now() < until;)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            wait = std::min(wait * 2, std::chrono::milliseconds(5000));
        }
        if (stop_) return;
        for (const std::string& region : config_.regions) {
            auto c = std::make_unique<cluster::ResultConsumer>(
                cluster::ResultConsumerConfig{.region = region, .group = config_.group, .keys = keys_}, *bus_,
                [this](const bus::RecognitionResult& r, const bus::Envelope& env) { OnResult(r, env); });
            if (Status st = c->Start(); !st.ok()) {  // only a bad token, which the config refuses
                spdlog::error("cluster: region {}: {}", region, st.ToString());
                continue;
            }
            consumers_.push_back(std::move(c));
        }
        // This node writes the system of record: its change log goes on the bus as the gallery's
        // change stream, which wakes the workers' shard replicas (docs/scale.md).
        if (sinks_.gallery) {
            relay_ = std::make_unique<cluster::ChangeRelay>(cluster::ChangeRelayConfig{}, *bus_, sinks_.gallery);
            if (Status st = relay_->Start(); !st.ok()) spdlog::error("cluster: change stream: {}", st.ToString());
        }
        if (consumers_.size() == config_.regions.size()) {
            spdlog::info("cluster: reading the results of {} region(s) as group {}", consumers_.size(), config_.group);
            connected_ = true;
        }
    }

    // The status poller's thread: waits for the bus, then gathers every status_interval_s.
    void PollStatus() {
        const auto interval = std::chrono::seconds(config_.status_interval_s);
        std::unique_lock lock(wake_mu_);
        while (!stop_) {
            if (connected_) {
                lock.unlock();
                if (bus_->rpc() == nullptr) {
                    spdlog::warn("cluster: status_interval_s is set but the bus has no request/reply (Kafka): "
                                 "no cluster status");
                    return;
                }
                GatherOnce();
                lock.lock();
                wake_.wait_for(lock, interval, [this] { return stop_.load(); });
            } else {
                wake_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_.load(); });
            }
        }
    }

    // One gathering: the nodes' answers (~1 s), the configured regions' backlogs, then the
    // gauges and the snapshot. A failed gathering changes nothing: the status age grows.
    void GatherOnce() {
        int skipped = 0;
        Result<std::vector<cluster::NodeStatus>> nodes =
            cluster::GatherStatus(*bus_->rpc(), std::chrono::milliseconds(1000), &skipped);
        if (!nodes.ok()) {
            spdlog::warn("cluster: status not gathered ({})", StatusCodeName(nodes.status().code()));
            return;
        }
        std::vector<cluster::RegionBacklog> backlogs;
        metrics::ClusterStatusSample sample;
        for (const std::string& region : config_.regions) {
            Result<std::uint64_t> b = bus_->Backlog(region, config_.workers_group);
            backlogs.push_back({region, b.ok() ? std::optional(*b) : std::nullopt, b.ok() ? "" : b.status().message()});
            if (b.ok()) sample.backlogs.emplace_back(region, static_cast<double>(*b));
        }
        nlohmann::json snapshot = cluster::ClusterStatusJson(*nodes, backlogs, config_.replicas, skipped);
        for (const cluster::NodeStatus& n : *nodes) {
            const auto counter = [&n](const char* name) -> std::optional<double> {
                auto it = n.counters.find(name);  // unknown or absent counters are absent
                return it != n.counters.end() && it->is_number() ? std::optional(it->get<double>()) : std::nullopt;
            };
            sample.nodes.push_back({.node = n.node, .role = n.role, .region = n.region,
                                    .applied_change = n.applied_change, .redelivered = counter("redelivered"),
                                    .republished = counter("republished"), .buffer_depth = counter("buffer_depth")});
        }
        for (const nlohmann::json& g : snapshot["galleries"]) {
            metrics::ClusterStatusSample::Gallery mg{g["gallery"].get<std::string>(), {}};
            for (const nlohmann::json& h : g["shard_health"]) mg.replicas.push_back(int(h["replicas"].size()));
            sample.galleries.push_back(std::move(mg));
        }
        sinks_.metrics->SetClusterStatus(sample);
        snapshot["gathered_unix_ms"] = events::NowUnixMs();
        {
            std::lock_guard lock(snapshot_mu_);
            snapshot_ = std::move(snapshot);
        }
        last_status_ok_ = std::chrono::steady_clock::now();
    }

    // On a consumer's thread, once per item id (ResultConsumer dedupes). The event mirrors the
    // pipeline's (libs/events: recognized / unknown_face / spoof_detected, same field names) plus
    // where it came from. No crop or embedding exists to attach: results carry neither.
    void OnResult(const bus::RecognitionResult& r, const bus::Envelope& env) {
        const std::string type = r.decision == "known"   ? "recognized"
                                 : r.decision == "spoof" ? "spoof_detected"
                                                         : "unknown_face";
        const std::string stream = r.stream_id.empty() ? env.camera : r.stream_id;
        const std::int64_t t = r.capture_unix_ms > 0 ? r.capture_unix_ms : env.sent_unix_ms;
        std::string display_name;
        if (r.decision == "known" && sinks_.gallery) {
            if (auto s = sinks_.gallery->GetSubject(r.subject_id); s.ok()) display_name = s->display_name;
        }
        nlohmann::json data = nlohmann::json::object();
        if (r.decision == "known") {
            data = {{"subject_id", r.subject_id}, {"display_name", display_name}, {"score", r.score}};
        } else if (r.decision == "unknown") {
            data = {{"best_score", r.score}};
        }
        const nlohmann::json j = {{"schema_version", events::kSchemaVersion},
                                  {"type", type},
                                  {"stream_id", stream},
                                  {"track_id", r.track_id},
                                  {"timestamp", events::FormatIso8601Utc(t)},
                                  {"timestamp_ms", t},
                                  {"frame_index", r.frame_index},
                                  {"data", data},
                                  {"source", "bus"},
                                  {"item_id", r.item_id},
                                  {"worker_id", r.worker_id},
                                  {"region", env.region},
                                  {"camera", env.camera}};
        sinks_.hub->PublishJson(stream, type, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        sinks_.metrics->RecordClusterResult(env.region, r.decision);
        if (!sinks_.history) return;
        // Stored without crop or embedding (none travels): listed and filtered like any
        // sighting, but an unknown is not clustered into a stranger (that needs the embedding).
        history::SightingInput in;
        in.time_ms = t;
        in.stream = stream;
        in.track = static_cast<std::int64_t>(r.track_id);
        in.outcome = r.decision == "known"   ? history::Outcome::kKnown
                     : r.decision == "spoof" ? history::Outcome::kSpoof
                                             : history::Outcome::kUnknown;
        in.subject_id = r.subject_id;
        in.display_name = display_name;
        in.score = r.score;
        Result<history::Sighting> s = sinks_.history->Record(in);
        if (!s.ok()) {
            spdlog::warn("cluster: result of {} not stored in the history: {}", stream, s.status().ToString());
        } else if (s->id != 0) {
            sinks_.hub->PublishJson(stream, "sighting",
                                    nlohmann::json{{"type", "sighting"}, {"sighting", history::ToJson(*s)}}.dump());
        }
    }

    const api::ServeClusterConfig config_;
    const std::shared_ptr<const gallery::KeyRing> keys_;
    Sinks sinks_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> connected_{false};  ///< bus_ and consumers_ are set (then never change until Stop)
    std::unique_ptr<bus::Bus> bus_;
    std::vector<std::unique_ptr<cluster::ResultConsumer>> consumers_;
    std::unique_ptr<cluster::ChangeRelay> relay_;  // publishes the gallery's change log
    mutable std::mutex mu_;  // guards regions_
    std::vector<Region> regions_;
    std::thread connector_;
    // The status poller: woken early by Stop.
    std::mutex wake_mu_;
    std::condition_variable wake_;
    std::thread poller_;
    std::chrono::steady_clock::time_point started_;
    std::atomic<std::chrono::steady_clock::time_point> last_status_ok_{};
    mutable std::mutex snapshot_mu_;  // guards snapshot_
    nlohmann::json snapshot_;
};

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

    std::unique_ptr<ClusterFeed> feed;  // outlives ctx, whose cluster_status refers to it
    if (cfg->cluster) {
        // Sealed results (worker --seal-results) open with the gallery key; without a gallery
        // the key is optional, as for `facegate worker results`.
        std::shared_ptr<const gallery::KeyRing> keys;
        if (!gallery_at.db.empty() || !gallery_at.key_file.empty() ||
            (!gallery_at.key_env.empty() && std::getenv(gallery_at.key_env.c_str()))) {
            Result<std::shared_ptr<const gallery::KeyRing>> k = ResolveGalleryKeys(gallery_at);
            if (!k.ok()) return Fail(k.status().WithContext("cluster: gallery key"));
            keys = std::move(*k);
        }
        feed = std::make_unique<ClusterFeed>(*cfg->cluster, std::move(keys),
                                             ClusterFeed::Sinks{hub, root->history, root->gallery, metrics});
    }

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
    if (feed) ctx.cluster_status = [f = feed.get()] { return f->StatusJson(); };
    if (feed && cfg->cluster->status_interval_s > 0) ctx.cluster_snapshot = [f = feed.get()] { return f->Snapshot(); };
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
    if (feed) feed->Start();  // connects in the background: the API is up whatever the bus does
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
        if (feed) feed->Sample();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    spdlog::info("stopping: closing connections, ending tracks, flushing sinks");
    ctx.accepting = false;
    (*srv)->Stop();
    pipeline->Stop();
    if (feed) feed->Stop();  // before the history it stores into
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
        std::printf("%s: OK (%zu stream(s), listen %s:%d%s)\n", a.config.empty() ? "(defaults)" : a.config.c_str(),
                    cfg->run.pipeline.streams.size(), cfg->server.listen_address.c_str(), cfg->server.port,
                    cfg->cluster ? (", results of " + std::to_string(cfg->cluster->regions.size()) + " region(s) from the bus").c_str()
                                 : "");
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
