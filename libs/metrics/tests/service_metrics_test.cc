// SPDX-License-Identifier: Apache-2.0
// ServiceMetrics and MetricsObserver with synthetic events, frames and pipeline stats; values
// are read back from the text exposition.
#include "fg/metrics/service_metrics.h"

#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace fg::metrics {
namespace {

// The value of one series ("name{labels}" exactly as serialized; labels sorted by name), or
// nullopt when the series is absent.
std::optional<double> Sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ') {
            return std::stod(line.substr(series.size() + 1));
        }
    }
    return std::nullopt;
}

double Value(const ServiceMetrics& m, const std::string& series) {
    const std::string text = m.Serialize();
    const auto v = Sample(text, series);
    EXPECT_TRUE(v.has_value()) << "missing series " << series << " in\n" << text;
    return v.value_or(-1);
}

std::string Stage(const char* stage, const char* suffix = "_count") {
    return std::string("facegate_stage_latency_seconds") + suffix + "{stage=\"" + stage + "\"}";
}

events::Event EventFor(const std::string& stream, events::Payload payload) {
    return events::MakeEvent(stream, std::move(payload));
}

pipeline::StreamRunStats StreamStats(const std::string& id, std::uint64_t decoded,
                                     std::uint64_t processed, std::uint64_t gated,
                                     std::uint64_t dropped, stream::SourceState state) {
    pipeline::StreamRunStats s;
    s.id = id;
    s.frames = processed;
    s.gated = gated;
    s.source.id = id;
    s.source.frames_decoded = decoded;
    s.source.frames_dropped = dropped;
    s.source.frames_delivered = processed;
    s.source.state = state;
    s.source.fps = 15;
    return s;
}

TEST(ServiceMetrics, EveryFamilyIsDeclaredFromTheStart) {
    ServiceMetrics m;
    const std::string text = m.Serialize();
    for (const char* family :
         {"facegate_stage_latency_seconds histogram", "facegate_recognitions_total counter",
          "facegate_recognition_top1_score histogram", "facegate_gallery_subjects gauge",
          "facegate_gallery_templates gauge", "facegate_queue_depth gauge",
          "facegate_inference_busy_seconds_total counter", "facegate_inference_threads gauge"}) {
        EXPECT_NE(text.find(std::string("# TYPE ") + family), std::string::npos) << family;
    }
    for (const char* stage :
         {"queue", "gate", "detect", "track", "select", "embed", "search", "end_to_end"}) {
        EXPECT_EQ(Value(m, Stage(stage)), 0) << stage;
    }
    EXPECT_EQ(Value(m, "facegate_recognitions_total{outcome=\"spoof\"}"), 0);
    EXPECT_EQ(Value(m, "facegate_queue_depth{queue=\"compute\"}"), 0);
}

TEST(ServiceMetrics, FrameFeedsOnlyTheStagesThatRan) {
    auto m = std::make_shared<ServiceMetrics>();
    MetricsObserver observer(m);
    const pipeline::StageTimes gated{.queue_ms = 2, .gate_ms = 1, .total_ms = 4, .gated = true};
    const pipeline::StageTimes full{.queue_ms = 3, .gate_ms = 1, .detect_ms = 40, .track_ms = 1,
                                    .select_ms = 5, .embed_ms = 20, .search_ms = 1,
                                    .total_ms = 75, .detected = true};
    observer.OnFrame({.times = &gated});
    observer.OnFrame({.times = &full});
    observer.OnFrame({});  // no times: ignored
    EXPECT_EQ(Value(*m, Stage("queue")), 2);
    EXPECT_EQ(Value(*m, Stage("gate")), 2);
    EXPECT_EQ(Value(*m, Stage("end_to_end")), 2);
    for (const char* stage : {"detect", "track", "select", "embed", "search"}) {
        EXPECT_EQ(Value(*m, Stage(stage)), 1) << stage;
    }
    EXPECT_DOUBLE_EQ(Value(*m, Stage("detect", "_sum")), 0.040);
    EXPECT_DOUBLE_EQ(Value(*m, Stage("end_to_end", "_sum")), 0.079);
    // 40 ms lands in the 0.05 s bucket, not the 0.025 s one.
    EXPECT_EQ(Value(*m, "facegate_stage_latency_seconds_bucket{stage=\"detect\",le=\"0.025\"}"), 0);
    EXPECT_EQ(Value(*m, "facegate_stage_latency_seconds_bucket{stage=\"detect\",le=\"0.05\"}"), 1);
    // The processing thread was busy total - queue: 2 + 72 ms.
    EXPECT_NEAR(Value(*m, "facegate_inference_busy_seconds_total{pool=\"pipeline\"}"), 0.074, 1e-9);
}

TEST(ServiceMetrics, EventsCountOutcomesAndScores) {
    auto m = std::make_shared<ServiceMetrics>();
    MetricsObserver observer(m);
    observer.OnEvent(EventFor("cam1", events::Recognized{.subject_id = "alice-42",
                                                         .display_name = "Alice Example",
                                                         .score = 0.83f}));
    observer.OnEvent(EventFor("cam1", events::UnknownFace{.best_score = 0.31f}));
    observer.OnEvent(EventFor("cam1", events::SpoofDetected{.liveness_score = 0.1f}));
    observer.OnEvent(EventFor("cam1", events::TrackStarted{.detection_score = 0.9f}));
    observer.OnEvent(EventFor("cam1", events::TrackEnded{.subject_id = "alice-42"}));
    EXPECT_EQ(Value(*m, "facegate_recognitions_total{outcome=\"known\"}"), 1);
    EXPECT_EQ(Value(*m, "facegate_recognitions_total{outcome=\"unknown\"}"), 1);
    EXPECT_EQ(Value(*m, "facegate_recognitions_total{outcome=\"spoof\"}"), 1);
    EXPECT_EQ(Value(*m, "facegate_recognition_top1_score_count"), 2);  // spoof has no score
    EXPECT_EQ(Value(*m, "facegate_recognition_top1_score_bucket{le=\"0.8\"}"), 1);
    EXPECT_EQ(Value(*m, "facegate_recognition_top1_score_bucket{le=\"0.85\"}"), 2);
    EXPECT_EQ(Value(*m, "facegate_recognition_top1_score_bucket{le=\"0.3\"}"), 0);
    // Personal data never reaches a label.
    const std::string text = m->Serialize();
    EXPECT_EQ(text.find("alice"), std::string::npos);
    EXPECT_EQ(text.find("Alice"), std::string::npos);
}

TEST(ServiceMetrics, StreamStateEventsSetOneStateGauge) {
    auto m = std::make_shared<ServiceMetrics>();
    MetricsObserver observer(m);
    observer.OnEvent(EventFor("door", events::StreamState{.state = "connecting"}));
    observer.OnEvent(EventFor("door", events::StreamState{.state = "live"}));
    EXPECT_EQ(Value(*m, "facegate_stream_state{state=\"live\",stream=\"door\"}"), 1);
    EXPECT_EQ(Value(*m, "facegate_stream_state{state=\"connecting\",stream=\"door\"}"), 0);
    EXPECT_EQ(Value(*m, "facegate_stream_state{state=\"stalled\",stream=\"door\"}"), 0);
    // An unknown state keeps the last known one rather than inventing a series.
    observer.OnEvent(EventFor("door", events::StreamState{.state = "teleporting"}));
    EXPECT_EQ(Value(*m, "facegate_stream_state{state=\"live\",stream=\"door\"}"), 1);
    EXPECT_EQ(m->Serialize().find("teleporting"), std::string::npos);
}

TEST(ServiceMetrics, CollectAdvancesCountersByTheDifference) {
    ServiceMetrics m;
    pipeline::PipelineStats stats;
    stats.streams.push_back(StreamStats("cam1", 100, 90, 40, 5, stream::SourceState::kLive));
    stats.streams.back().source.reconnects = 1;
    stats.streams.push_back(StreamStats("cam2", 10, 10, 0, 0, stream::SourceState::kStalled));
    m.Collect(stats);
    m.Collect(stats);  // a second scrape of the same stats changes nothing
    EXPECT_EQ(Value(m, "facegate_stream_frames_received_total{stream=\"cam1\"}"), 100);
    EXPECT_EQ(Value(m, "facegate_stream_frames_processed_total{stream=\"cam1\"}"), 90);
    EXPECT_EQ(Value(m, "facegate_stream_frames_gated_total{stream=\"cam1\"}"), 40);
    EXPECT_EQ(Value(m, "facegate_stream_frames_dropped_total{stream=\"cam1\"}"), 5);
    EXPECT_EQ(Value(m, "facegate_stream_reconnects_total{stream=\"cam1\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_stream_queue_depth{stream=\"cam1\"}"), 5);
    EXPECT_EQ(Value(m, "facegate_stream_fps{stream=\"cam1\"}"), 15);
    EXPECT_EQ(Value(m, "facegate_stream_state{state=\"live\",stream=\"cam1\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_stream_state{state=\"stalled\",stream=\"cam2\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_stream_state{state=\"live\",stream=\"cam2\"}"), 0);
    // One processing thread per stream.
    EXPECT_EQ(Value(m, "facegate_inference_threads{pool=\"pipeline\"}"), 2);

    stats.streams[0] = StreamStats("cam1", 130, 110, 50, 8, stream::SourceState::kLive);
    m.Collect(stats);
    EXPECT_EQ(Value(m, "facegate_stream_frames_received_total{stream=\"cam1\"}"), 130);
    EXPECT_EQ(Value(m, "facegate_stream_frames_dropped_total{stream=\"cam1\"}"), 8);

    // cam1 restarted (its stats begin again): its 7 new frames are counted, never subtracted.
    stats.streams[0] = StreamStats("cam1", 7, 7, 0, 0, stream::SourceState::kLive);
    m.Collect(stats);
    EXPECT_EQ(Value(m, "facegate_stream_frames_received_total{stream=\"cam1\"}"), 137);

    // cam2 removed: its series go (bounded cardinality as streams come and go).
    stats.streams.pop_back();
    m.Collect(stats);
    const std::string text = m.Serialize();
    EXPECT_EQ(text.find("cam2"), std::string::npos);
    EXPECT_NE(text.find("cam1"), std::string::npos);
    EXPECT_EQ(Value(m, "facegate_inference_threads{pool=\"pipeline\"}"), 1);
}

TEST(ServiceMetrics, HttpRequestsByRouteAndStatusWithBoundedRoutes) {
    ServiceMetrics m({.max_routes = 2});
    std::function<void(const std::string&, int, double)> observer = m.HttpObserver();
    observer("/v1/identify", 200, 0.004);
    observer("/v1/identify", 200, 0.002);
    observer("/v1/identify", 503, 0.0001);
    observer("/v1/subjects/{id}", 404, 0.001);
    observer("/wp-admin/../../etc/passwd", 404, 0.001);  // past the cap: "other"
    m.ObserveHttpRequest("/v1/detect", 999, 0.5);         // also past the cap; odd status
    EXPECT_EQ(Value(m, "facegate_http_requests_total{route=\"/v1/identify\",status=\"200\"}"), 2);
    EXPECT_EQ(Value(m, "facegate_http_requests_total{route=\"/v1/identify\",status=\"503\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_http_requests_total{route=\"other\",status=\"404\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_http_requests_total{route=\"other\",status=\"other\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_http_request_duration_seconds_count{route=\"/v1/identify\"}"), 3);
    EXPECT_DOUBLE_EQ(
        Value(m, "facegate_http_request_duration_seconds_sum{route=\"/v1/identify\"}"), 0.0061);
    EXPECT_EQ(m.Serialize().find("passwd"), std::string::npos);
}

TEST(ServiceMetrics, GalleryQueuesPoolsAndAudit) {
    ServiceMetrics m;
    m.SetGallerySize(4, 12);
    m.SetComputeQueueDepth(3);
    m.SetQueueDepth("embed", 2);
    m.SetInferenceThreads("compute", 2);
    m.AddInferenceBusySeconds("compute", 1.5);
    m.AddInferenceBusySeconds("compute", -1);  // ignored
    m.RecordAudit("identify");
    m.RecordAudit("identify");
    m.RecordAudit("key_create");
    EXPECT_EQ(Value(m, "facegate_gallery_subjects"), 4);
    EXPECT_EQ(Value(m, "facegate_gallery_templates"), 12);
    EXPECT_EQ(Value(m, "facegate_queue_depth{queue=\"compute\"}"), 3);
    EXPECT_EQ(Value(m, "facegate_queue_depth{queue=\"embed\"}"), 2);
    EXPECT_EQ(Value(m, "facegate_inference_threads{pool=\"compute\"}"), 2);
    EXPECT_EQ(Value(m, "facegate_inference_busy_seconds_total{pool=\"compute\"}"), 1.5);
    EXPECT_EQ(Value(m, "facegate_audit_records_total{action=\"identify\"}"), 2);
    EXPECT_EQ(Value(m, "facegate_audit_records_total{action=\"key_create\"}"), 1);
}

TEST(ServiceMetrics, ConcurrentUpdatesAreAllCounted) {
    auto m = std::make_shared<ServiceMetrics>();
    constexpr int kThreads = 4;
    constexpr int kEach = 2000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            MetricsObserver observer(m);
            const pipeline::StageTimes times{.queue_ms = 1, .total_ms = 2};
            pipeline::PipelineStats stats;
            stats.streams.push_back(
                StreamStats("cam" + std::to_string(t), 0, 0, 0, 0, stream::SourceState::kLive));
            for (int i = 1; i <= kEach; ++i) {
                observer.OnFrame({.times = &times});
                m->ObserveHttpRequest("/v1/identify", 200, 0.001);
                m->RecordAudit("identify");
                if (i % 100 == 0) {
                    (void)m->Serialize();
                    m->Collect(stats);  // each thread sees only its stream: the others go
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(Value(*m, Stage("end_to_end")), kThreads * kEach);
    EXPECT_EQ(Value(*m, "facegate_http_requests_total{route=\"/v1/identify\",status=\"200\"}"),
              kThreads * kEach);
    EXPECT_EQ(Value(*m, "facegate_audit_records_total{action=\"identify\"}"), kThreads * kEach);
}

TEST(ServiceMetrics, ClusterStatusGaugesFollowTheNodesThatAnswer) {
    ServiceMetrics m;
    EXPECT_EQ(m.Serialize().find("facegate_cluster_nodes"), std::string::npos);  // no poller, no family
    ClusterStatusSample s;
    s.nodes = {{.node = "w1", .role = "worker", .region = "hq", .applied_change = 12, .redelivered = 3, .republished = 1},
               {.node = "w2", .role = "worker", .region = "hq", .applied_change = 11},
               {.node = "e1", .role = "edge", .region = "hq", .buffer_depth = 40},
               {.node = "x", .role = "probe", .region = "hq"}};
    s.galleries = {{.name = "main", .replicas = {2, 1}}};
    s.backlogs = {{"hq", 250}};
    m.SetClusterStatus(s);
    m.SetClusterStatusAge(1.5);
    EXPECT_EQ(Value(m, "facegate_cluster_nodes{role=\"worker\"}"), 2);
    EXPECT_EQ(Value(m, "facegate_cluster_nodes{role=\"edge\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_cluster_nodes{role=\"other\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"0\"}"), 2);
    EXPECT_EQ(Value(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"1\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_cluster_backlog_items{region=\"hq\"}"), 250);
    EXPECT_EQ(Value(m, "facegate_cluster_node_redeliveries{node=\"w1\",region=\"hq\"}"), 3);
    EXPECT_EQ(Value(m, "facegate_cluster_node_dedupe_hits{node=\"w1\",region=\"hq\"}"), 1);
    EXPECT_EQ(Value(m, "facegate_cluster_node_applied_change{node=\"w2\"}"), 11);
    EXPECT_EQ(Value(m, "facegate_cluster_edge_buffered_items{node=\"e1\",region=\"hq\"}"), 40);
    EXPECT_EQ(Value(m, "facegate_cluster_status_age_seconds"), 1.5);
    // w2 did not report the counters: no series rather than a made-up 0.
    EXPECT_FALSE(Sample(m.Serialize(), "facegate_cluster_node_redeliveries{node=\"w2\",region=\"hq\"}"));

    // w1 and the edge stop answering: their series go, shard 0 drops to one replica; then the
    // gallery disappears altogether: its shards read 0.
    s.nodes = {{.node = "w2", .role = "worker", .region = "hq", .applied_change = 13}};
    s.galleries = {{.name = "main", .replicas = {1, 1}}};
    m.SetClusterStatus(s);
    const std::string text = m.Serialize();
    EXPECT_FALSE(Sample(text, "facegate_cluster_node_redeliveries{node=\"w1\",region=\"hq\"}")) << text;
    EXPECT_FALSE(Sample(text, "facegate_cluster_node_applied_change{node=\"w1\"}")) << text;
    EXPECT_FALSE(Sample(text, "facegate_cluster_edge_buffered_items{node=\"e1\",region=\"hq\"}")) << text;
    EXPECT_EQ(Value(m, "facegate_cluster_node_applied_change{node=\"w2\"}"), 13);
    EXPECT_EQ(Value(m, "facegate_cluster_nodes{role=\"edge\"}"), 0);
    EXPECT_EQ(Value(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"0\"}"), 1);
    s = {};
    m.SetClusterStatus(s);
    EXPECT_EQ(Value(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"0\"}"), 0);
    EXPECT_EQ(Value(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"1\"}"), 0);
    EXPECT_EQ(Value(m, "facegate_cluster_nodes{role=\"worker\"}"), 0);
    EXPECT_EQ(Value(m, "facegate_cluster_backlog_items{region=\"hq\"}"), 250);  // not answered: last value
    // Resharded to S = 1: the shard that no longer exists goes.
    s.galleries = {{.name = "main", .replicas = {2}}};
    m.SetClusterStatus(s);
    EXPECT_EQ(Value(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"0\"}"), 2);
    EXPECT_FALSE(Sample(m.Serialize(), "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"1\"}"));
}

TEST(ServiceMetrics, NamesOfStagesAndOutcomes) {
    EXPECT_EQ(StageName(Stage::kEndToEnd), "end_to_end");
    EXPECT_EQ(StageName(Stage::kSelect), "select");
    EXPECT_EQ(OutcomeName(Outcome::kSpoof), "spoof");
}

}  // namespace
}  // namespace fg::metrics
