// SPDX-License-Identifier: Apache-2.0
#include "fg/metrics/service_metrics.h"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <set>
#include <variant>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "fg/stream/source.h"

namespace fg::metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr std::array<Stage, 8> kStages = {Stage::kQueue,  Stage::kGate,  Stage::kDetect,
                                          Stage::kTrack,  Stage::kSelect, Stage::kEmbed,
                                          Stage::kSearch, Stage::kEndToEnd};
constexpr std::array<Outcome, 3> kOutcomes = {Outcome::kKnown, Outcome::kUnknown, Outcome::kSpoof};
constexpr std::array<stream::SourceState, 6> kStates = {
    stream::SourceState::kConnecting, stream::SourceState::kLive,  stream::SourceState::kStalled,
    stream::SourceState::kFailed,     stream::SourceState::kEnded, stream::SourceState::kStopped};

// Frame stages take ~1 ms (gate, track) to ~1 s (a detector on a busy 2-core box).
const Histogram::BucketBoundaries kStageBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5,   5};
// An embedding identify answers in ~1 ms, an image in ~100 ms, an export in seconds.
const Histogram::BucketBoundaries kHttpBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};

Histogram::BucketBoundaries ScoreBuckets() {
    // Cosine similarity over [0, 1] in 0.05 steps: fine enough to see the median move.
    Histogram::BucketBoundaries b;
    for (int i = 1; i <= 20; ++i) b.push_back(i / 20.0);  // i * 0.05 would print 0.8500000000000001
    return b;
}

// Counts the distinct values a caller-supplied label took; past `max` new ones become "other".
class CappedValues {
  public:
    explicit CappedValues(int max) : max_(max) {}
    std::string Get(std::string_view value) {
        std::string v(value);
        if (v.empty()) v = "none";
        if (seen_.count(v) != 0) return v;
        if (static_cast<int>(seen_.size()) >= max_) return "other";
        seen_.insert(v);
        return v;
    }

  private:
    int max_;
    std::set<std::string> seen_;
};

}  // namespace

std::string_view StageName(Stage stage) {
    switch (stage) {
        case Stage::kQueue: return "queue";
        case Stage::kGate: return "gate";
        case Stage::kDetect: return "detect";
        case Stage::kTrack: return "track";
        case Stage::kSelect: return "select";
        case Stage::kEmbed: return "embed";
        case Stage::kSearch: return "search";
        case Stage::kEndToEnd: return "end_to_end";
    }
    return "unknown";
}

std::string_view OutcomeName(Outcome outcome) {
    switch (outcome) {
        case Outcome::kKnown: return "known";
        case Outcome::kUnknown: return "unknown";
        case Outcome::kSpoof: return "spoof";
    }
    return "unknown";
}

// The series of one stream and the cumulative values last seen by Collect.
struct StreamSeries {
    Counter* received = nullptr;
    Counter* processed = nullptr;
    Counter* gated = nullptr;
    Counter* dropped = nullptr;
    Counter* reconnects = nullptr;
    Gauge* fps = nullptr;
    Gauge* queue_depth = nullptr;
    std::array<Gauge*, kStates.size()> state{};
    std::array<std::uint64_t, 5> last{};  // received, processed, gated, dropped, reconnects
};

struct ServiceMetrics::Impl {
    explicit Impl(MetricsLimits l)
        : limits(l),
          registry(std::make_shared<prometheus::Registry>()),
          stage_latency(prometheus::BuildHistogram()
                            .Name("facegate_stage_latency_seconds")
                            .Help("Time a frame spent in each pipeline stage (end_to_end: from "
                                  "leaving the decoder to its events emitted)")
                            .Register(*registry)),
          frames_received(prometheus::BuildCounter()
                              .Name("facegate_stream_frames_received_total")
                              .Help("Frames decoded by a stream's source")
                              .Register(*registry)),
          frames_processed(prometheus::BuildCounter()
                               .Name("facegate_stream_frames_processed_total")
                               .Help("Frames a stream's pipeline processed")
                               .Register(*registry)),
          frames_gated(prometheus::BuildCounter()
                           .Name("facegate_stream_frames_gated_total")
                           .Help("Processed frames the motion gate skipped (no detector run)")
                           .Register(*registry)),
          frames_dropped(prometheus::BuildCounter()
                             .Name("facegate_stream_frames_dropped_total")
                             .Help("Frames replaced by a newer one before processing (the "
                                   "pipeline fell behind)")
                             .Register(*registry)),
          reconnects(prometheus::BuildCounter()
                         .Name("facegate_stream_reconnects_total")
                         .Help("Successful source opens after the first")
                         .Register(*registry)),
          fps(prometheus::BuildGauge()
                  .Name("facegate_stream_fps")
                  .Help("Decode rate of a stream's source over about the last second")
                  .Register(*registry)),
          stream_queue(prometheus::BuildGauge()
                           .Name("facegate_stream_queue_depth")
                           .Help("Frames decoded and waiting for the stream's pipeline")
                           .Register(*registry)),
          stream_state(prometheus::BuildGauge()
                           .Name("facegate_stream_state")
                           .Help("1 for the stream's current source state, 0 for the others")
                           .Register(*registry)),
          queue_depth(prometheus::BuildGauge()
                          .Name("facegate_queue_depth")
                          .Help("Items waiting in a service queue (compute: the inference pool)")
                          .Register(*registry)),
          inference_threads(prometheus::BuildGauge()
                                .Name("facegate_inference_threads")
                                .Help("Threads of an inference pool")
                                .Register(*registry)),
          inference_busy(prometheus::BuildCounter()
                             .Name("facegate_inference_busy_seconds_total")
                             .Help("Seconds an inference pool's threads spent working")
                             .Register(*registry)),
          recognitions(prometheus::BuildCounter()
                           .Name("facegate_recognitions_total")
                           .Help("Recognition decisions by outcome (known, unknown, spoof)")
                           .Register(*registry)),
          top1_score(prometheus::BuildHistogram()
                         .Name("facegate_recognition_top1_score")
                         .Help("Cosine similarity of the closest enrolled subject per decision "
                               "(known and unknown); drift shows here first")
                         .Register(*registry)),
          gallery_subjects(prometheus::BuildGauge()
                               .Name("facegate_gallery_subjects")
                               .Help("Subjects enrolled in the gallery")
                               .Register(*registry)),
          gallery_templates(prometheus::BuildGauge()
                                .Name("facegate_gallery_templates")
                                .Help("Templates (face embeddings) in the gallery")
                                .Register(*registry)),
          http_requests(prometheus::BuildCounter()
                            .Name("facegate_http_requests_total")
                            .Help("HTTP requests by route template and status code")
                            .Register(*registry)),
          http_duration(prometheus::BuildHistogram()
                            .Name("facegate_http_request_duration_seconds")
                            .Help("HTTP request latency by route template")
                            .Register(*registry)),
          audit_records(prometheus::BuildCounter()
                            .Name("facegate_audit_records_total")
                            .Help("Records appended to the audit log, by action")
                            .Register(*registry)),
          cluster_results(prometheus::BuildCounter()
                              .Name("facegate_cluster_results_total")
                              .Help("Recognition results read from the bus, by region and decision")
                              .Register(*registry)),
          cluster_duplicates(prometheus::BuildCounter()
                                 .Name("facegate_cluster_result_duplicates_total")
                                 .Help("Repeated results the bus delivered again and the consumer dropped")
                                 .Register(*registry)),
          cluster_connected(prometheus::BuildGauge()
                                .Name("facegate_cluster_bus_connected")
                                .Help("1 while a region's results are being read from the bus, else 0")
                                .Register(*registry)),
          cluster_nodes(prometheus::BuildGauge()
                            .Name("facegate_cluster_nodes")
                            .Help("Cluster nodes that answered the last status gathering, by role")
                            .Register(*registry)),
          cluster_shard_replicas(prometheus::BuildGauge()
                                     .Name("facegate_cluster_shard_replicas")
                                     .Help("Nodes holding each shard of a sharded gallery (0: nobody)")
                                     .Register(*registry)),
          cluster_backlog(prometheus::BuildGauge()
                              .Name("facegate_cluster_backlog_items")
                              .Help("Face items waiting for a region's workers")
                              .Register(*registry)),
          cluster_redeliveries(prometheus::BuildGauge()
                                   .Name("facegate_cluster_node_redeliveries")
                                   .Help("Face items the bus delivered again to a worker, since it started")
                                   .Register(*registry)),
          cluster_dedupe_hits(prometheus::BuildGauge()
                                  .Name("facegate_cluster_node_dedupe_hits")
                                  .Help("Redelivered items a worker answered from its result cache, since it started")
                                  .Register(*registry)),
          cluster_edge_buffered(prometheus::BuildGauge()
                                    .Name("facegate_cluster_edge_buffered_items")
                                    .Help("Face items an edge holds in its disk buffer (the bus was unreachable)")
                                    .Register(*registry)),
          cluster_applied_change(prometheus::BuildGauge()
                                     .Name("facegate_cluster_node_applied_change")
                                     .Help("Gallery change log position a worker has applied")
                                     .Register(*registry)),
          cluster_status_age(prometheus::BuildGauge()
                                 .Name("facegate_cluster_status_age_seconds")
                                 .Help("Seconds since serve last gathered the cluster's node statuses")
                                 .Register(*registry)),
          routes(l.max_routes),
          audit_actions(l.max_label_values),
          queues(l.max_label_values),
          pools(l.max_label_values),
          regions(l.max_label_values) {
        // Series that exist from the start, so dashboards and rates see 0 rather than nothing.
        for (const Stage s : kStages) {
            stages[static_cast<int>(s)] =
                &stage_latency.Add({{"stage", std::string(StageName(s))}}, kStageBuckets);
        }
        for (const Outcome o : kOutcomes) {
            outcomes[static_cast<int>(o)] =
                &recognitions.Add({{"outcome", std::string(OutcomeName(o))}});
        }
        score = &top1_score.Add({}, ScoreBuckets());
        subjects = &gallery_subjects.Add({});
        templates = &gallery_templates.Add({});
        queue_depth.Add({{"queue", queues.Get("compute")}});
        inference_threads.Add({{"pool", pools.Get("pipeline")}});
        inference_busy.Add({{"pool", "pipeline"}});
    }

    StreamSeries& Stream(const std::string& id) {  // mu held
        auto it = streams.find(id);
        if (it != streams.end()) return it->second;
        StreamSeries s;
        const prometheus::Labels l = {{"stream", id}};
        s.received = &frames_received.Add(l);
        s.processed = &frames_processed.Add(l);
        s.gated = &frames_gated.Add(l);
        s.dropped = &frames_dropped.Add(l);
        s.reconnects = &reconnects.Add(l);
        s.fps = &fps.Add(l);
        s.queue_depth = &stream_queue.Add(l);
        for (std::size_t i = 0; i < kStates.size(); ++i) {
            s.state[i] = &stream_state.Add(
                {{"stream", id}, {"state", std::string(stream::SourceStateName(kStates[i]))}});
        }
        return streams.emplace(id, s).first->second;
    }

    void RemoveStream(const StreamSeries& s) {  // mu held
        frames_received.Remove(s.received);
        frames_processed.Remove(s.processed);
        frames_gated.Remove(s.gated);
        frames_dropped.Remove(s.dropped);
        reconnects.Remove(s.reconnects);
        fps.Remove(s.fps);
        stream_queue.Remove(s.queue_depth);
        for (Gauge* g : s.state) stream_state.Remove(g);
    }

    static void SetState(StreamSeries& s, std::string_view state) {
        bool known = false;
        for (const auto st : kStates) known = known || stream::SourceStateName(st) == state;
        if (!known) return;  // a state this version does not know: keep the last one
        for (std::size_t i = 0; i < kStates.size(); ++i) {
            s.state[i]->Set(stream::SourceStateName(kStates[i]) == state ? 1 : 0);
        }
    }

    MetricsLimits limits;
    std::shared_ptr<prometheus::Registry> registry;
    Family<Histogram>& stage_latency;
    Family<Counter>& frames_received;
    Family<Counter>& frames_processed;
    Family<Counter>& frames_gated;
    Family<Counter>& frames_dropped;
    Family<Counter>& reconnects;
    Family<Gauge>& fps;
    Family<Gauge>& stream_queue;
    Family<Gauge>& stream_state;
    Family<Gauge>& queue_depth;
    Family<Gauge>& inference_threads;
    Family<Counter>& inference_busy;
    Family<Counter>& recognitions;
    Family<Histogram>& top1_score;
    Family<Gauge>& gallery_subjects;
    Family<Gauge>& gallery_templates;
    Family<Counter>& http_requests;
    Family<Histogram>& http_duration;
    Family<Counter>& audit_records;
    Family<Counter>& cluster_results;
    Family<Counter>& cluster_duplicates;
    Family<Gauge>& cluster_connected;
    Family<Gauge>& cluster_nodes;
    Family<Gauge>& cluster_shard_replicas;
    Family<Gauge>& cluster_backlog;
    Family<Gauge>& cluster_redeliveries;
    Family<Gauge>& cluster_dedupe_hits;
    Family<Gauge>& cluster_edge_buffered;
    Family<Gauge>& cluster_applied_change;
    Family<Gauge>& cluster_status_age;

    std::array<Histogram*, kStages.size()> stages{};
    std::array<Counter*, kOutcomes.size()> outcomes{};
    Histogram* score = nullptr;
    Gauge* subjects = nullptr;
    Gauge* templates = nullptr;

    std::mutex mu;  // guards what follows (Family::Add itself is thread-safe)
    std::map<std::string, StreamSeries> streams;
    CappedValues routes;
    CappedValues audit_actions;
    CappedValues queues;
    CappedValues pools;
    CappedValues regions;
    // The per-node series of the last status gathering, keyed by node id.
    std::map<std::string, std::vector<std::pair<Family<Gauge>*, Gauge*>>> cluster_node_series;
    std::map<std::string, int> cluster_gallery_shards;  // gallery -> S last seen
};

ServiceMetrics::ServiceMetrics(MetricsLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
ServiceMetrics::~ServiceMetrics() = default;

void ServiceMetrics::ObserveStage(Stage stage, double seconds) {
    impl_->stages[static_cast<int>(stage)]->Observe(std::max(0.0, seconds));
}

void ServiceMetrics::ObserveFrame(const pipeline::StageTimes& t) {
    // Stages that did not run report 0 ms; observing those would drag every percentile to 0.
    const auto maybe = [this](Stage s, double ms) {
        if (ms > 0) ObserveStage(s, ms / 1000.0);
    };
    ObserveStage(Stage::kQueue, t.queue_ms / 1000.0);
    maybe(Stage::kGate, t.gate_ms);
    maybe(Stage::kDetect, t.detect_ms);
    maybe(Stage::kTrack, t.track_ms);
    maybe(Stage::kSelect, t.select_ms);
    maybe(Stage::kEmbed, t.embed_ms);
    maybe(Stage::kSearch, t.search_ms);
    ObserveStage(Stage::kEndToEnd, t.total_ms / 1000.0);
    const double busy_ms = t.total_ms - t.queue_ms;
    if (busy_ms > 0) AddInferenceBusySeconds("pipeline", busy_ms / 1000.0);
}

void ServiceMetrics::RecordRecognition(Outcome outcome, double top1_score) {
    impl_->outcomes[static_cast<int>(outcome)]->Increment();
    if (outcome != Outcome::kSpoof) impl_->score->Observe(top1_score);
}

void ServiceMetrics::RecordSpoof() { impl_->outcomes[static_cast<int>(Outcome::kSpoof)]->Increment(); }

void ServiceMetrics::SetStreamState(const std::string& stream, std::string_view state) {
    std::lock_guard lock(impl_->mu);
    Impl::SetState(impl_->Stream(stream), state);
}

void ServiceMetrics::Collect(const pipeline::PipelineStats& stats) {
    std::lock_guard lock(impl_->mu);
    std::set<std::string> present;
    for (const auto& st : stats.streams) {
        present.insert(st.id);
        StreamSeries& s = impl_->Stream(st.id);
        const std::array<std::uint64_t, 5> now = {st.source.frames_decoded, st.frames, st.gated,
                                                  st.source.frames_dropped, st.source.reconnects};
        const std::array<Counter*, 5> counters = {s.received, s.processed, s.gated, s.dropped,
                                                  s.reconnects};
        for (std::size_t i = 0; i < now.size(); ++i) {
            // A restarted stream starts its counts again: count its new frames from zero.
            const std::uint64_t delta = now[i] >= s.last[i] ? now[i] - s.last[i] : now[i];
            if (delta > 0) counters[i]->Increment(static_cast<double>(delta));
            s.last[i] = now[i];
        }
        s.fps->Set(st.source.fps);
        const std::uint64_t out = st.source.frames_delivered + st.source.frames_dropped;
        s.queue_depth->Set(st.source.frames_decoded > out
                               ? static_cast<double>(st.source.frames_decoded - out)
                               : 0.0);
        Impl::SetState(s, stream::SourceStateName(st.source.state));
    }
    // Each stream has one processing thread: the "pipeline" pool's size.
    impl_->inference_threads.Add({{"pool", "pipeline"}})
        .Set(static_cast<double>(stats.streams.size()));
    for (auto it = impl_->streams.begin(); it != impl_->streams.end();) {
        if (present.count(it->first) == 0) {
            impl_->RemoveStream(it->second);
            it = impl_->streams.erase(it);
        } else {
            ++it;
        }
    }
}

void ServiceMetrics::SetGallerySize(std::uint64_t subjects, std::uint64_t templates) {
    impl_->subjects->Set(static_cast<double>(subjects));
    impl_->templates->Set(static_cast<double>(templates));
}

void ServiceMetrics::SetQueueDepth(std::string_view queue, double depth) {
    std::lock_guard lock(impl_->mu);
    impl_->queue_depth.Add({{"queue", impl_->queues.Get(queue)}}).Set(depth);
}

void ServiceMetrics::SetInferenceThreads(std::string_view pool, int threads) {
    std::lock_guard lock(impl_->mu);
    impl_->inference_threads.Add({{"pool", impl_->pools.Get(pool)}}).Set(threads);
}

void ServiceMetrics::AddInferenceBusySeconds(std::string_view pool, double seconds) {
    if (!(seconds > 0)) return;  // also drops NaN
    std::lock_guard lock(impl_->mu);
    impl_->inference_busy.Add({{"pool", impl_->pools.Get(pool)}}).Increment(seconds);
}

void ServiceMetrics::ObserveHttpRequest(const std::string& route, int status, double seconds) {
    std::lock_guard lock(impl_->mu);
    const std::string r = impl_->routes.Get(route);
    const std::string code = status >= 100 && status <= 599 ? std::to_string(status) : "other";
    impl_->http_requests.Add({{"route", r}, {"status", code}}).Increment();
    impl_->http_duration.Add({{"route", r}}, kHttpBuckets).Observe(std::max(0.0, seconds));
}

std::function<void(const std::string&, int, double)> ServiceMetrics::HttpObserver() {
    return [this](const std::string& route, int status, double seconds) {
        ObserveHttpRequest(route, status, seconds);
    };
}

void ServiceMetrics::RecordAudit(std::string_view action) {
    std::lock_guard lock(impl_->mu);
    impl_->audit_records.Add({{"action", impl_->audit_actions.Get(action)}}).Increment();
}

void ServiceMetrics::RecordClusterResult(std::string_view region, std::string_view decision) {
    const bool known = decision == "known" || decision == "unknown" || decision == "spoof";
    std::lock_guard lock(impl_->mu);
    impl_->cluster_results.Add({{"region", impl_->regions.Get(region)}, {"decision", known ? std::string(decision) : "other"}})
        .Increment();
}

void ServiceMetrics::AddClusterDuplicates(std::string_view region, std::uint64_t count) {
    std::lock_guard lock(impl_->mu);
    // Added even for 0, so the series exists (and rates read 0) from the consumer's start.
    impl_->cluster_duplicates.Add({{"region", impl_->regions.Get(region)}}).Increment(static_cast<double>(count));
}

void ServiceMetrics::SetClusterConnected(std::string_view region, bool connected) {
    std::lock_guard lock(impl_->mu);
    impl_->cluster_connected.Add({{"region", impl_->regions.Get(region)}}).Set(connected ? 1 : 0);
}

void ServiceMetrics::SetClusterStatus(const ClusterStatusSample& sample) {
    Impl& m = *impl_;
    std::lock_guard lock(m.mu);
    // Fixed roles (a role this version does not know counts as "other"), all always shown.
    std::map<std::string, int> roles = {{"worker", 0}, {"edge", 0}, {"other", 0}};
    for (const auto& n : sample.nodes) ++roles[n.role == "worker" || n.role == "edge" ? n.role : "other"];
    for (const auto& [role, count] : roles) m.cluster_nodes.Add({{"role", role}}).Set(count);

    // Shards: a gallery seen now sets each of its S shards (fewer than before: the old ones go);
    // one not seen any more reads 0 replicas until restart.
    std::set<std::string> seen_galleries;
    for (const auto& g : sample.galleries) {
        seen_galleries.insert(g.name);
        auto prev = m.cluster_gallery_shards.find(g.name);
        const int shards = static_cast<int>(g.replicas.size());
        if (prev != m.cluster_gallery_shards.end()) {
            for (int s = shards; s < prev->second; ++s)
                m.cluster_shard_replicas.Remove(&m.cluster_shard_replicas.Add({{"gallery", g.name}, {"shard", std::to_string(s)}}));
        }
        for (int s = 0; s < shards; ++s)
            m.cluster_shard_replicas.Add({{"gallery", g.name}, {"shard", std::to_string(s)}}).Set(g.replicas[std::size_t(s)]);
        m.cluster_gallery_shards[g.name] = shards;
    }
    for (const auto& [name, shards] : m.cluster_gallery_shards) {
        if (seen_galleries.count(name)) continue;
        for (int s = 0; s < shards; ++s)
            m.cluster_shard_replicas.Add({{"gallery", name}, {"shard", std::to_string(s)}}).Set(0);
    }

    for (const auto& [region, items] : sample.backlogs) m.cluster_backlog.Add({{"region", m.regions.Get(region)}}).Set(items);

    // Per node: rebuilt from the answers; nodes that did not answer lose their series.
    std::map<std::string, std::vector<std::pair<Family<Gauge>*, Gauge*>>> now;
    for (const auto& n : sample.nodes) {
        if (static_cast<int>(now.size()) >= m.limits.max_cluster_nodes) break;
        if (now.count(n.node)) continue;  // a duplicate id: the first answer wins
        auto& series = now[n.node];
        const prometheus::Labels nr = {{"node", n.node}, {"region", n.region}};
        const auto set = [&series](Family<Gauge>& f, const prometheus::Labels& l, double v) {
            Gauge* g = &f.Add(l);
            g->Set(v);
            series.emplace_back(&f, g);
        };
        if (n.role == "worker") {
            set(m.cluster_applied_change, {{"node", n.node}}, static_cast<double>(n.applied_change));
            if (n.redelivered) set(m.cluster_redeliveries, nr, *n.redelivered);
            if (n.republished) set(m.cluster_dedupe_hits, nr, *n.republished);
        }
        if (n.role == "edge" && n.buffer_depth) set(m.cluster_edge_buffered, nr, *n.buffer_depth);
    }
    for (const auto& [node, series] : m.cluster_node_series) {
        auto it = now.find(node);
        for (const auto& [family, gauge] : series) {
            const bool kept = it != now.end() && std::find(it->second.begin(), it->second.end(),
                                                           std::make_pair(family, gauge)) != it->second.end();
            if (!kept) family->Remove(gauge);
        }
    }
    m.cluster_node_series = std::move(now);
}

void ServiceMetrics::SetClusterStatusAge(double seconds) {
    impl_->cluster_status_age.Add({}).Set(std::max(0.0, seconds));
}

std::string ServiceMetrics::Serialize() const {
    return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

void MetricsObserver::OnEvent(const events::Event& event) {
    if (const auto* r = std::get_if<events::Recognized>(&event.payload)) {
        metrics_->RecordRecognition(Outcome::kKnown, r->score);
    } else if (const auto* u = std::get_if<events::UnknownFace>(&event.payload)) {
        metrics_->RecordRecognition(Outcome::kUnknown, u->best_score);
    } else if (std::holds_alternative<events::SpoofDetected>(event.payload)) {
        metrics_->RecordSpoof();
    } else if (const auto* s = std::get_if<events::StreamState>(&event.payload)) {
        metrics_->SetStreamState(event.stream_id, s->state);
    }
}

void MetricsObserver::OnFrame(const pipeline::FrameView& view) {
    if (view.times != nullptr) metrics_->ObserveFrame(*view.times);
}

}  // namespace fg::metrics
