// SPDX-License-Identifier: Apache-2.0
// facegate worker          a recognition worker of the scale-out cluster (docs/scale.md, "Worker"):
//                          face items from the bus in, one result per item out
// facegate worker results  the results of a region as JSON lines (each item once)
#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common.h"
#include "stream_root.h"
#include "fg/cluster/bus_url.h"
#include "fg/cluster/change_stream.h"
#include "fg/cluster/cluster_status.h"
#include "fg/cluster/embedders.h"
#include "fg/cluster/result_consumer.h"
#include "fg/cluster/shard.h"
#include "fg/cluster/shard_server.h"
#include "fg/cluster/worker.h"
#include "fg/bus/bus.h"
#include "fg/gallery/gallery.h"

namespace fg::cli {
namespace {

std::atomic<bool> g_stop{false};

// The first Ctrl-C / SIGTERM stops cleanly (in-flight items finished, nothing undone acked); a
// second one exits at once (the bus redelivers what was not acked).
extern "C" void OnWorkerSignal(int) {
    if (g_stop.exchange(true)) std::_Exit(130);
}

struct WorkerArgs {
    std::string bus;
    std::string region;
    std::string group = "workers";
    std::string worker_id;
    int threads = 1;
    int batch = 8;
    int ack_wait_ms = 30000;
    int publish_timeout_ms = 10000;
    int max_deliver = 10;
    std::string embedder = "model";
    bool seal_results = false;
    // The sharded gallery (docs/scale.md, "Sharded gallery"): S > 1 splits subjects into shards.
    int shards = 1;
    std::string hold;               ///< shards this worker holds ("0,2", "0-3", "all"; "" = none)
    std::string gallery_name = "main";
    int query_timeout_ms = 500;
    int follow_ms = 500;            ///< the gallery's change-log poll (the bus stream wakes it sooner)
    GalleryLocation gallery{.db = {}, .key_file = {}, .key_env = "FG_GALLERY_KEY", .create = false};
    EngineOptions engine;
};

struct ResultsArgs {
    std::string bus;
    std::string region;
    std::string group = "cli";
    int count = 0;
    double timeout_s = 0;
    std::string key_file;
};

std::string DefaultWorkerId() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return std::string(host[0] ? host : "worker") + "-" + std::to_string(getpid());
}

nlohmann::json StatsJson(const cluster::WorkerStats& s) {
    return {{"fetched", s.fetched},       {"redelivered", s.redelivered}, {"results", s.results},
            {"republished", s.republished}, {"known", s.known},
            {"unknown", s.unknown},       {"spoof", s.spoof},
            {"poison", s.poison},         {"newer_version", s.newer_version},
            {"publish_failures", s.publish_failures}, {"embed_failures", s.embed_failures},
            {"bus_errors", s.bus_errors}, {"ack_failures", s.ack_failures}};
}

/// Connects, retrying (doubling from 0.5 s to 10 s) while the bus is unreachable: a worker started
/// before its bus waits for it. A bad URL fails at once; Cancelled when stopped meanwhile.
Result<std::unique_ptr<bus::Bus>> ConnectRetrying(const std::string& url, const cluster::BusOptions& o) {
    std::chrono::milliseconds wait(500);
    for (;;) {
        Result<std::unique_ptr<bus::Bus>> b = cluster::ConnectBus(url, o);
        if (b.ok() || b.status().code() != StatusCode::kUnavailable) return b;
        spdlog::warn("worker: bus not reachable, retrying in {} ms: {}", wait.count(), b.status().ToString());
        for (auto until = std::chrono::steady_clock::now() + wait; std::chrono::steady_clock::now() < until;) {
            if (g_stop) return Status(StatusCode::kCancelled, "stopped before the bus was reachable");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        wait = std::min(wait * 2, std::chrono::milliseconds(10000));
    }
}

std::int64_t NowUnixMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// The shards this worker holds: one partial gallery replica per shard, each loaded from the
/// system of record and following its change log (docs/scale.md, "Sharded gallery").
struct ShardReplicas {
    std::vector<int> held;
    std::vector<std::shared_ptr<gallery::Gallery>> replicas;  // parallel to held
};

Result<ShardReplicas> OpenShardReplicas(const WorkerArgs& a) {
    ShardReplicas out;
    FG_ASSIGN_OR_RETURN(out.held, a.hold.empty() ? Result<std::vector<int>>(std::vector<int>{})
                                                 : cluster::ParseShardList(a.hold, a.shards, "--hold"));
    for (int s : out.held) {
        const auto start = std::chrono::steady_clock::now();
        const int shards = a.shards;
        Result<std::unique_ptr<gallery::Gallery>> g = OpenGalleryAt(
            a.gallery, a.engine, [s, shards](std::string_view id) { return cluster::ShardOf(id, shards) == s; });
        if (!g.ok()) return g.status().WithContext("shard " + std::to_string(s));
        std::shared_ptr<gallery::Gallery> replica = std::move(*g);
        FG_RETURN_IF_ERROR(replica->StartFollowing(std::chrono::milliseconds(a.follow_ms)));
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        spdlog::info("worker: shard {}/{} loaded: {} templates at change {} in {:.2f} s", s, a.shards,
                     replica->templates_in_memory(), replica->applied_change(), secs);
        out.replicas.push_back(std::move(replica));
    }
    return out;
}

int RunWorker(const WorkerArgs& a) {
    if (a.bus.empty() || a.region.empty()) {
        std::cerr << "error: facegate worker needs --bus and --region\n";
        return kExitUsage;
    }
    if (a.embedder != "model" && a.embedder != "stub") {
        std::cerr << "error: --embedder: '" << a.embedder << "' is not model or stub\n";
        return kExitUsage;
    }
    if (Status st = bus::ValidToken(a.region, "--region"); !st.ok()) return Fail(st);
    if (Status st = bus::ValidToken(a.group, "--group"); !st.ok()) return Fail(st);
    // Engine and gallery first: a worker that cannot recognise must not take items off the bus.
    std::optional<StreamRoot> root;
    std::shared_ptr<cluster::FaceEmbedder> embedder;
    std::shared_ptr<const pipeline::Identifier> identifier;
    std::shared_ptr<const gallery::KeyRing> keys;
    const bool sharded = a.shards > 1;
    if (sharded && a.gallery.db.empty()) {
        std::cerr << "error: --shards needs --db (the system of record the shards load from)\n";
        return kExitUsage;
    }
    if (!sharded && !a.hold.empty()) {
        std::cerr << "error: --hold needs --shards > 1\n";
        return kExitUsage;
    }
    if (Status st = bus::ValidToken(a.gallery_name, "--gallery-name"); !st.ok()) return Fail(st);
    ShardReplicas shard_replicas;
    if (a.embedder == "stub") {
        // The plumbing benchmark: no model, no gallery (every face unknown).
        if (!a.gallery.db.empty() && !sharded)
            spdlog::warn("worker: --embedder stub ignores --db (stub vectors match nobody)");
        embedder = cluster::MakeStubEmbedder();
    } else {
        StreamRootConfig rc;
        rc.engine = a.engine;
        // Sharded: the worker holds only its shards (below), never the whole gallery.
        if (!sharded) rc.gallery = a.gallery;
        rc.gallery_follow = std::chrono::milliseconds(a.follow_ms);  // enrollments seen within ~1 s
        rc.history.enabled = false;
        Result<StreamRoot> r = StreamRoot::Build(rc);
        if (!r.ok()) return Fail(r.status());
        root = std::move(*r);
        Result<std::shared_ptr<cluster::FaceEmbedder>> e = cluster::MakeModelEmbedder(*root->models);
        if (!e.ok()) return Fail(e.status());
        embedder = std::move(*e);
        identifier = root->identifier;  // null without --db: every face unknown
        if (!identifier && !sharded) spdlog::warn("worker: no --db: every face is reported unknown");
    }
    if (sharded) {
        Result<ShardReplicas> sr = OpenShardReplicas(a);
        if (!sr.ok()) return Fail(sr.status());
        shard_replicas = std::move(*sr);
    }
    // The gallery key opens sealed face items; without a gallery it is optional.
    if (!a.gallery.db.empty() || !a.gallery.key_file.empty() || std::getenv(a.gallery.key_env.c_str())) {
        Result<std::shared_ptr<const gallery::KeyRing>> k = ResolveGalleryKeys(a.gallery);
        if (!k.ok()) return Fail(k.status().WithContext("gallery key"));
        keys = std::move(*k);
    }

    const std::string worker_id = a.worker_id.empty() ? DefaultWorkerId() : a.worker_id;
    cluster::BusOptions bo{.client_name = "facegate-worker-" + worker_id,
                           .publish_timeout = std::chrono::milliseconds(a.publish_timeout_ms),
                           .ack_wait = std::chrono::milliseconds(a.ack_wait_ms),
                           .max_deliver = a.max_deliver};
    std::signal(SIGINT, OnWorkerSignal);
    std::signal(SIGTERM, OnWorkerSignal);
    Result<std::unique_ptr<bus::Bus>> b = ConnectRetrying(a.bus, bo);
    if (!b.ok()) return b.status().code() == StatusCode::kCancelled ? kExitOk : Fail(b.status());

    // Sharded: serve the held shards, and search the whole gallery by scatter-gather (the
    // held shards in process, the others on one replica each over the bus).
    std::unique_ptr<cluster::ShardServer> shard_server;
    std::shared_ptr<cluster::ShardedIdentifier> sharded_identifier;
    if (sharded) {
        shard_server = std::make_unique<cluster::ShardServer>(
            cluster::ShardServerConfig{.gallery = a.gallery_name, .shards = a.shards, .replica_id = worker_id, .keys = keys},
            (*b)->rpc());
        for (std::size_t i = 0; i < shard_replicas.held.size(); ++i)
            if (Status st = shard_server->Hold(shard_replicas.held[i], shard_replicas.replicas[i]); !st.ok())
                return Fail(st);
        if (Status st = shard_server->Start(); !st.ok()) return Fail(st);
        sharded_identifier = std::make_shared<cluster::ShardedIdentifier>(
            cluster::ShardedIdentifierConfig{.gallery = a.gallery_name,
                                             .shards = a.shards,
                                             .attempt_timeout = std::chrono::milliseconds(a.query_timeout_ms),
                                             .keys = keys},
            (*b)->rpc(), shard_server.get());
        identifier = sharded_identifier;
    }

    // The gallery's change stream on the bus wakes the replicas at once (serve publishes it);
    // their own 500 ms poll of the change log stays as the safety net.
    std::vector<std::shared_ptr<gallery::Gallery>> followed = shard_replicas.replicas;
    if (root && root->gallery) followed.push_back(root->gallery);
    std::unique_ptr<cluster::ChangeListener> changes;
    if (!followed.empty()) {
        std::string group = "replica_" + worker_id;  // each worker needs every change
        for (char& ch : group)
            if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') ch = '_';
        changes = std::make_unique<cluster::ChangeListener>(cluster::ChangeListenerConfig{.group = group.substr(0, 64)},
                                                            **b, followed);
        if (Status st = changes->Start(); !st.ok()) return Fail(st);
    }

    cluster::WorkerConfig wc;
    wc.worker_id = worker_id;
    wc.region = a.region;
    wc.group = a.group;
    wc.threads = a.threads;
    wc.fetch_batch = a.batch;
    wc.keys = keys;
    wc.seal_results = a.seal_results;
    cluster::RecognitionWorker worker(wc, **b, embedder, identifier);
    if (Status st = worker.Start(); !st.ok()) return Fail(st);
    // `facegate cluster status` (NATS only: Kafka has no request/reply; the worker runs anyway).
    const std::int64_t started = NowUnixMs();
    cluster::StatusResponder status((*b)->rpc(), [&] {
        cluster::NodeStatus st{.node = worker_id, .role = "worker", .region = a.region};
        st.started_unix_ms = started;
        nlohmann::json c = StatsJson(worker.stats());
        if (sharded) {
            st.gallery = a.gallery_name;
            st.shards = a.shards;
            st.held = shard_replicas.held;
            st.applied_change = INT64_MAX;
            for (std::size_t i = 0; i < shard_replicas.held.size(); ++i) {
                st.templates[shard_replicas.held[i]] = shard_replicas.replicas[i]->templates_in_memory();
                st.applied_change = std::min(st.applied_change, shard_replicas.replicas[i]->applied_change());
            }
            if (shard_replicas.held.empty()) st.applied_change = 0;
            const cluster::ShardServerStats ss = shard_server->stats();
            const cluster::ShardedIdentifierStats is = sharded_identifier->stats();
            c["shard_queries_served"] = ss.queries;
            c["shard_query_errors"] = ss.errors;
            c["searches"] = is.queries;
            c["search_retries"] = is.retries;
            c["search_failures"] = is.failures;
        } else if (root && root->gallery) {
            st.applied_change = root->gallery->applied_change();
        }
        st.counters = std::move(c);
        return st;
    });
    if (Status st = status.Start(); !st.ok()) spdlog::info("worker {}: no cluster status: {}", worker_id, st.message());
    spdlog::info("worker {}: consuming face items of region {} with {} thread(s)", worker_id, a.region, a.threads);
    std::printf("facegate worker: %s ready (region %s)\n", worker_id.c_str(), a.region.c_str());
    std::fflush(stdout);
    auto last_log = std::chrono::steady_clock::now();
    while (!g_stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (std::chrono::steady_clock::now() - last_log > std::chrono::seconds(30)) {
            last_log = std::chrono::steady_clock::now();
            spdlog::info("worker {}: {}", worker_id, StatsJson(worker.stats()).dump());
        }
    }
    spdlog::info("worker {}: stopping (finishing the items in hand)", worker_id);
    status.Stop();
    worker.Stop();
    if (changes) changes->Stop();
    // The shard replicas stop answering only after the worker stopped asking: another worker's
    // query in flight is routed to the other replicas from here on.
    if (shard_server) shard_server->Stop();
    for (const auto& r : shard_replicas.replicas) r->StopFollowing();
    if (root && root->gallery) root->gallery->StopFollowing();
    std::cerr << StatsJson(worker.stats()).dump() << "\n";
    return kExitOk;
}

int RunResults(const ResultsArgs& a) {
    if (a.bus.empty() || a.region.empty()) {
        std::cerr << "error: facegate worker results needs --bus and --region\n";
        return kExitUsage;
    }
    std::shared_ptr<const gallery::KeyRing> keys;
    if (!a.key_file.empty() || std::getenv("FG_GALLERY_KEY")) {
        GalleryLocation where{.db = {}, .key_file = a.key_file, .key_env = "FG_GALLERY_KEY", .create = false};
        Result<std::shared_ptr<const gallery::KeyRing>> k = ResolveGalleryKeys(where);
        if (!k.ok()) return Fail(k.status().WithContext("gallery key"));
        keys = std::move(*k);
    }
    Result<std::unique_ptr<bus::Bus>> b = cluster::ConnectBus(a.bus, {.client_name = "facegate-results"});
    if (!b.ok()) return Fail(b.status());
    std::atomic<int> printed{0};
    cluster::ResultConsumer rc(
        {.region = a.region, .group = a.group, .keys = keys}, **b,
        [&](const bus::RecognitionResult& r, const bus::Envelope& env) {
            const nlohmann::json j = {{"item_id", r.item_id},   {"decision", r.decision},
                                      {"subject_id", r.subject_id}, {"score", r.score},
                                      {"stream_id", r.stream_id}, {"track_id", r.track_id},
                                      {"frame_index", r.frame_index}, {"capture_unix_ms", r.capture_unix_ms},
                                      {"worker_id", r.worker_id}, {"region", env.region},
                                      {"camera", env.camera},   {"sent_unix_ms", env.sent_unix_ms}};
            std::printf("%s\n", j.dump().c_str());
            std::fflush(stdout);
            printed.fetch_add(1);
        });
    std::signal(SIGINT, OnWorkerSignal);
    std::signal(SIGTERM, OnWorkerSignal);
    if (Status st = rc.Start(); !st.ok()) return Fail(st);
    const auto start = std::chrono::steady_clock::now();
    bool timed_out = false;
    while (!g_stop && (a.count <= 0 || printed.load() < a.count)) {
        if (a.timeout_s > 0 && std::chrono::steady_clock::now() - start >
                                   std::chrono::duration<double>(a.timeout_s)) {
            timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    rc.Stop();
    if (timed_out && a.count > 0) {
        std::cerr << "error: " << printed.load() << " of " << a.count << " results within " << a.timeout_s << " s\n";
        return kExitError;
    }
    return kExitOk;
}

}  // namespace

void RegisterWorkerCommands(CLI::App& app, Action& action) {
    auto wa = std::make_shared<WorkerArgs>();
    auto* cmd = app.add_subcommand(
        "worker", "Recognition worker: face items from the bus in, one result per item out (docs/scale.md)");
    cmd->add_option("--bus", wa->bus, "nats://HOST:PORT or kafka://HOST:PORT[,HOST:PORT...]");
    cmd->add_option("--region", wa->region, "Region whose face items this worker takes");
    cmd->add_option("--group", wa->group, "Work-queue group (one per region on NATS)");
    cmd->add_option("--worker-id", wa->worker_id, "Name in results and logs (default: host-pid)");
    cmd->add_option("--db", wa->gallery.db, "Gallery (SQLite path or postgresql:// URL); none: every face unknown");
    cmd->add_option("--key-file", wa->gallery.key_file, "Gallery key file (else $FG_GALLERY_KEY, else the per-user key)");
    cmd->add_option("--recognition-threads", wa->threads, "Recognition threads (one bus consumer each)")
        ->check(CLI::Range(1, 64));
    cmd->add_option("--batch", wa->batch, "Face items per fetch")->check(CLI::Range(1, 256));
    cmd->add_option("--ack-wait-ms", wa->ack_wait_ms,
                    "NATS: an unacked item goes to another worker after this long")
        ->check(CLI::Range(100, 3600000));
    cmd->add_option("--publish-timeout-ms", wa->publish_timeout_ms, "A result publish gives up after this long")
        ->check(CLI::Range(100, 600000));
    cmd->add_option("--max-deliver", wa->max_deliver, "NATS: deliveries of one item before the bus drops it")
        ->check(CLI::Range(2, 1000));
    cmd->add_option("--embedder", wa->embedder, "model (default) or stub (benchmark of the plumbing: no model)");
    cmd->add_flag("--seal-results", wa->seal_results, "Seal results with the gallery key too");
    cmd->add_option("--shards", wa->shards,
                    "Sharded gallery: subjects split into this many shards (1 = every worker holds the whole gallery)")
        ->check(CLI::Range(1, cluster::kMaxShards));
    cmd->add_option("--hold", wa->hold, "Shards this worker holds and serves, e.g. 0,2 or 0-3 or all (default none)");
    cmd->add_option("--gallery-name", wa->gallery_name, "Sharded gallery name on the bus (default main)");
    cmd->add_option("--follow-ms", wa->follow_ms,
                    "How often the gallery's change log is polled (the bus's change stream wakes it sooner)")
        ->check(CLI::Range(50, 3600000));
    cmd->add_option("--query-timeout-ms", wa->query_timeout_ms,
                    "Sharded: one attempt's wait for a shard replica (a dead replica costs this much once)")
        ->check(CLI::Range(10, 60000));
    wa->engine.AddTo(*cmd);

    auto ra = std::make_shared<ResultsArgs>();
    auto* res = cmd->add_subcommand("results", "Print a region's results as JSON lines, each item once");
    res->add_option("--bus", ra->bus, "nats://HOST:PORT or kafka://HOST:PORT[,HOST:PORT...]");
    res->add_option("--region", ra->region, "Region whose results are printed");
    res->add_option("--group", ra->group, "Consumer group (a new group starts at the oldest result kept)");
    res->add_option("--count", ra->count, "Exit after this many results (0: until Ctrl-C)")->check(CLI::NonNegativeNumber);
    res->add_option("--timeout", ra->timeout_s, "With --count: exit 1 if they did not all come within this many seconds")
        ->check(CLI::NonNegativeNumber);
    res->add_option("--key-file", ra->key_file, "Gallery key, for sealed results (else $FG_GALLERY_KEY)");

    cmd->callback([&action, wa, res] {
        if (res->parsed()) return;  // `worker results`: its own action (set by its callback)
        action = [wa] { return RunWorker(*wa); };
    });
    res->callback([&action, ra] { action = [ra] { return RunResults(*ra); }; });
}

}  // namespace fg::cli
