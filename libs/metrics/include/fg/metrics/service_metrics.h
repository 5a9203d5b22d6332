// SPDX-License-Identifier: Apache-2.0
// The service's Prometheus metrics (facegate_*): a prometheus-cpp registry (core only, no
// exposer: our own HTTP server serves Serialize() at /metrics), fed by a pipeline observer,
// a per-scrape Collect() over the pipeline's stats, the HTTP server's request observer and
// setters. Every metric is listed in libs/metrics/README.md.
//
//   auto m = std::make_shared<fg::metrics::ServiceMetrics>();
//   observers.push_back(std::make_shared<fg::metrics::MetricsObserver>(m));  // Pipeline::Create
//   fg::server::Server::Create(server_config, router, m->HttpObserver());
//   GET /metrics: m->Collect(pipeline->Stats()); return m->Serialize();
//
// Privacy: labels carry stream ids, stages, outcomes, routes, states and bus regions only; never images,
// embeddings, names or subject ids.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fg/pipeline/config.h"
#include "fg/pipeline/event_emitter.h"

namespace fg::metrics {

/// A pipeline stage of facegate_stage_latency_seconds{stage}.
enum class Stage { kQueue, kGate, kDetect, kTrack, kSelect, kEmbed, kSearch, kEndToEnd };
/// "queue", "gate", "detect", "track", "select", "embed", "search", "end_to_end".
std::string_view StageName(Stage stage);

/// A recognition decision of facegate_recognitions_total{outcome}.
enum class Outcome { kKnown, kUnknown, kSpoof };
/// "known", "unknown", "spoof".
std::string_view OutcomeName(Outcome outcome);

/// Bounds on label values that come from callers (routes, audit actions, queue and pool
/// names): past the limit new values are counted under "other", so a bug or a scanner hitting
/// random paths cannot grow the series without bound.
struct MetricsLimits {
    int max_routes = 64;
    int max_label_values = 32;  ///< per family, for audit actions, queues, pools
    int max_cluster_nodes = 1000;  ///< nodes with per-node series (the rest are counted only)
};

/// One gathering of the cluster's node statuses and backlogs (serve's status poller), plain
/// data so this library stays free of the cluster's: ServiceMetrics::SetClusterStatus.
struct ClusterStatusSample {
    struct Node {
        std::string node;
        std::string role;  ///< "worker", "edge"
        std::string region;
        std::int64_t applied_change = 0;
        // The node's own cumulative counters; unset when it does not report them.
        std::optional<double> redelivered;   ///< worker "redelivered"
        std::optional<double> republished;   ///< worker "republished" (dedupe hits)
        std::optional<double> buffer_depth;  ///< edge "buffer_depth"
    };
    struct Gallery {
        std::string name;
        std::vector<int> replicas;  ///< per shard 0..S-1: how many nodes hold it
    };
    std::vector<Node> nodes;
    std::vector<Gallery> galleries;                   ///< the sharded galleries seen now
    std::vector<std::pair<std::string, double>> backlogs;  ///< region, items (regions that answered)
};

/// Thread-safety: every method may be called from any thread at once (prometheus-cpp metrics
/// are atomic; the few maps here are under a mutex).
class ServiceMetrics {
  public:
    explicit ServiceMetrics(MetricsLimits limits = {});
    ~ServiceMetrics();
    ServiceMetrics(const ServiceMetrics&) = delete;
    ServiceMetrics& operator=(const ServiceMetrics&) = delete;

    // --- pipeline ---
    void ObserveStage(Stage stage, double seconds);
    /// One processed frame: queue and end_to_end always; every other stage that ran (> 0 ms).
    /// Also adds the frame's processing time to the "pipeline" pool's busy seconds.
    void ObserveFrame(const pipeline::StageTimes& times);
    /// A recognition decision; `top1_score` (the best cosine similarity, known or not) feeds
    /// facegate_recognition_top1_score.
    void RecordRecognition(Outcome outcome, double top1_score);
    void RecordSpoof();
    /// A source's state ("connecting", "live", "stalled", ...): facegate_stream_state{stream,
    /// state} is 1 for it and 0 for every other state.
    void SetStreamState(const std::string& stream, std::string_view state);
    /// Per-stream frames received / processed / gated / dropped, fps, queue depth, reconnects and
    /// state from the pipeline's cumulative stats (counters advance by the difference since the
    /// last call; a restarted stream's counters restart from its new value). Streams no longer
    /// in `stats` lose their series. Call on each scrape.
    void Collect(const pipeline::PipelineStats& stats);

    // --- service ---
    void SetGallerySize(std::uint64_t subjects, std::uint64_t templates);
    /// facegate_queue_depth{queue}: e.g. "compute" (the inference pool), "embed".
    void SetQueueDepth(std::string_view queue, double depth);
    /// The same for queue="compute".
    void SetComputeQueueDepth(double depth) { SetQueueDepth("compute", depth); }
    /// Inference thread utilisation = rate(facegate_inference_busy_seconds_total) /
    /// facegate_inference_threads, per pool.
    void SetInferenceThreads(std::string_view pool, int threads);
    void AddInferenceBusySeconds(std::string_view pool, double seconds);
    /// One HTTP request: `route` is the route template ("/v1/subjects/{id}"), never the raw
    /// path. Same signature as fg::server::RequestObserver.
    void ObserveHttpRequest(const std::string& route, int status, double seconds);
    /// ObserveHttpRequest as a callable for fg::server::Server::Create's request observer.
    /// It refers to this object, which must outlive the server.
    std::function<void(const std::string&, int, double)> HttpObserver();
    /// One audit record appended; `action` is its kind ("identify", "enroll", "key_create"...).
    void RecordAudit(std::string_view action);

    // --- scale-out: serve reading the cluster's results (docs/scale.md) ---
    /// One recognition result read from the bus: facegate_cluster_results_total{region,
    /// decision} (`decision` is known, unknown or spoof; anything else counts as "other").
    void RecordClusterResult(std::string_view region, std::string_view decision);
    /// Repeats the region's result consumer dropped since the last call:
    /// facegate_cluster_result_duplicates_total{region}.
    void AddClusterDuplicates(std::string_view region, std::uint64_t count);
    /// facegate_cluster_bus_connected{region}: 1 while the region's results are being read.
    void SetClusterConnected(std::string_view region, bool connected);

    /// The gauges of one status gathering: facegate_cluster_nodes{role},
    /// facegate_cluster_shard_replicas{gallery,shard}, facegate_cluster_backlog_items{region} and
    /// the per-node facegate_cluster_node_* / facegate_cluster_edge_buffered_items series. Nodes
    /// absent from `sample` lose their series; shards of a gallery absent from it read 0 (until
    /// restart: a gallery nobody holds is an outage, not a removal); a region whose backlog is
    /// missing keeps its last value (its age shows in facegate_cluster_status_age_seconds).
    void SetClusterStatus(const ClusterStatusSample& sample);
    /// facegate_cluster_status_age_seconds: since the last successful gathering.
    void SetClusterStatusAge(double seconds);

    /// The text exposition format (version 0.0.4) of every family.
    std::string Serialize() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

/// Feeds ServiceMetrics from a pipeline: recognized / unknown_face / spoof_detected events,
/// stream_state events and every frame's StageTimes. Pass it to Pipeline::Create's observers.
/// Thread-safety: called from every stream thread at once (ServiceMetrics is thread-safe).
class MetricsObserver : public pipeline::PipelineObserver {
  public:
    explicit MetricsObserver(std::shared_ptr<ServiceMetrics> metrics)
        : metrics_(std::move(metrics)) {}
    void OnEvent(const events::Event& event) override;
    void OnFrame(const pipeline::FrameView& view) override;

  private:
    std::shared_ptr<ServiceMetrics> metrics_;
};

}  // namespace fg::metrics
