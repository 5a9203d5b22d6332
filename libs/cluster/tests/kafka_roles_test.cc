// SPDX-License-Identifier: Apache-2.0
// The delivery guarantee through the roles over Kafka (issue 17): an EdgePublisher, two
// RecognitionWorkers (stub embedder, no gallery) and a ResultConsumer, in one process against
// librdkafka's mock cluster (three brokers on loopback; no Kafka broker is packaged for Debian).
// Mid-run a broker goes down and comes back, and one worker "crashes" mid-stream: its last results
// are published but their acks are lost, a fetched batch is never processed, and its consumer
// goes away; a new worker joins. A second test takes a leader down without moving its
// leaderships, so the edge falls back to its disk buffer. Every item must reach the consumer
// exactly once.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "kafka_mock.h"
#include "fg/bus/disk_buffer.h"
#include "fg/bus/edge_publisher.h"
#include "fg/bus/kafka.h"
#include "fg/cluster/embedders.h"
#include "fg/cluster/result_consumer.h"
#include "fg/cluster/worker.h"
#include "fg/testing/testing.h"

namespace fg::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kPartitions = 4;
constexpr int kCameras = 8;  // keys spread over every partition
constexpr std::uint64_t kEpoch = 7;

using fg::bus::testing::MockCluster;

/// A delivery whose settle never reaches the bus: the worker holding it died after publishing
/// the result and before its ack went out. Destroying it leaves the message unsettled.
class LostSettleDelivery final : public bus::Delivery {
  public:
    LostSettleDelivery(std::unique_ptr<bus::Delivery> inner, std::atomic<int>& lost)
        : inner_(std::move(inner)), lost_(lost) {}
    std::string_view data() const override { return inner_->data(); }
    const std::string& id() const override { return inner_->id(); }
    std::uint64_t delivery_count() const override { return inner_->delivery_count(); }
    std::uint64_t sequence() const override { return inner_->sequence(); }
    Status Ack() override { return Lose(); }
    Status Nak(std::chrono::milliseconds) override { return Lose(); }
    Status Term() override { return Lose(); }

  private:
    Status Lose() {
        lost_.fetch_add(1);
        return Status::Ok();  // the dying worker never learns
    }
    std::unique_ptr<bus::Delivery> inner_;
    std::atomic<int>& lost_;
};

/// The bus consumer of a worker that can die: once dying, the settles of what it hands out are
/// lost. Kill() destroys the real consumer (it leaves the group; nothing more is committed).
/// Thread-safety: one thread at a time, like any Consumer; dying is an atomic flag.
class MortalConsumer final : public bus::Consumer {
  public:
    explicit MortalConsumer(std::unique_ptr<bus::Consumer> inner) : inner_(std::move(inner)) {}
    Result<std::vector<std::unique_ptr<bus::Delivery>>> Fetch(int max, std::chrono::milliseconds wait) override {
        auto batch = inner_->Fetch(max, wait);
        if (!batch.ok() || !dying.load()) return batch;
        std::vector<std::unique_ptr<bus::Delivery>> out;
        for (auto& d : *batch) out.push_back(std::make_unique<LostSettleDelivery>(std::move(d), lost_settles));
        return out;
    }
    /// Fetches a batch and drops it unprocessed (fetched, then the process died); returns its size.
    int FetchAndDrop() {
        auto batch = inner_->Fetch(16, 200ms);
        return batch.ok() ? static_cast<int>(batch->size()) : 0;
    }
    void Kill() { inner_.reset(); }

    std::atomic<bool> dying{false};
    std::atomic<int> lost_settles{0};

  private:
    std::unique_ptr<bus::Consumer> inner_;
};

template <typename F>
bool WaitFor(F done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);  // polling a progress condition, bounded
    }
    return true;
}

pipeline::FaceItem Item(int i) {
    pipeline::FaceItem item;
    item.stream_id = "cam" + std::to_string(i % kCameras);
    item.track_id = static_cast<std::uint64_t>(i / kCameras);
    item.frame_index = i;
    item.item_id = item.stream_id + "/0/" + std::to_string(item.track_id) + "/" + std::to_string(i);
    item.quality = 0.8f;
    item.aligned = cv::Mat(112, 112, CV_8UC3);  // a synthetic crop: the stub embedder reads pixels
    cv::randu(item.aligned, cv::Scalar::all(0), cv::Scalar::all(255));
    return item;
}

std::shared_ptr<bus::Bus> Connect(const MockCluster& cluster, std::chrono::milliseconds publish_timeout = 20s) {
    bus::KafkaConfig config;
    config.bootstrap_servers = cluster.bootstraps();
    config.publish_timeout = publish_timeout;
    config.session_timeout = 6s;
    auto bus = bus::CreateKafkaBus(config);
    EXPECT_TRUE(bus.ok()) << bus.status().ToString();
    return bus.ok() ? std::shared_ptr<bus::Bus>(std::move(*bus)) : nullptr;
}

TEST(KafkaRoles, EveryItemYieldsExactlyOneResultThroughABrokerOutageAndAWorkerCrash) {
    MockCluster cluster;
    ASSERT_TRUE(cluster.ok());
    const std::vector<std::string> topics = {"fg.faces.eu", "fg.results.eu"};
    for (const std::string& t : topics) ASSERT_TRUE(cluster.CreateTopic(t, kPartitions)) << t;
    // Group coordinators on broker 3, which stays up (broker 1 is the one taken down).
    rd_kafka_mock_coordinator_set(cluster.get(), "group", "fg.workers.fg.faces.eu", 3);
    rd_kafka_mock_coordinator_set(cluster.get(), "group", "fg.results.fg.results.eu", 3);

    // One bus (producer) per role, as separate processes would have.
    std::shared_ptr<bus::Bus> edge_bus = Connect(cluster), w1_bus = Connect(cluster),
                              w2_bus = Connect(cluster), w3_bus = Connect(cluster), rc_bus = Connect(cluster);
    ASSERT_TRUE(edge_bus && w1_bus && w2_bus && w3_bus && rc_bus);

    // The end of the path: each item id counted at the consumer.
    std::mutex mu;
    std::map<std::string, int> seen;
    int not_unknown = 0;
    ResultConsumer rc({.region = "eu"}, *rc_bus, [&](const bus::RecognitionResult& r, const bus::Envelope&) {
        std::lock_guard lock(mu);
        ++seen[r.item_id];
        if (r.decision != "unknown") ++not_unknown;
    });
    ASSERT_TRUE(rc.Start().ok());
    auto delivered = [&] { return static_cast<int>(rc.stats().delivered); };

    auto embedder = MakeStubEmbedder();
    const WorkerConfig base{.region = "eu", .threads = 1, .fetch_batch = 8, .nak_delay = 100ms};
    WorkerConfig c1 = base, c2 = base, c3 = base;
    c1.worker_id = "w1";
    c2.worker_id = "w2";
    c3.worker_id = "w3";
    RecognitionWorker w1(c1, *w1_bus, embedder, nullptr);
    ASSERT_TRUE(w1.Start().ok());

    // The edge.
    fg::testing::TmpDir tmp;
    auto buffer = bus::DiskBuffer::Open({.dir = tmp / "edge", .max_records = 10000, .sync = false});
    ASSERT_TRUE(buffer.ok()) << buffer.status().ToString();
    bus::EdgePublisher edge(edge_bus, std::move(*buffer),
                            {.region = "eu", .epoch = kEpoch, .retry_interval = 50ms});
    ASSERT_TRUE(edge.Start().ok());
    constexpr int kItems = 300;
    std::atomic<int> allowed{24}, submitted{0}, submit_errors{0};

    // w2 runs on this test's thread loop so its consumer can die: Poll is the worker's loop body.
    RecognitionWorker w2(c2, *w2_bus, embedder, nullptr);
    auto w2_sub = w2_bus->Subscribe({.topic = bus::Topic::kFaces, .region = "eu", .group = "workers"});
    ASSERT_TRUE(w2_sub.ok()) << w2_sub.status().ToString();
    MortalConsumer w2_faces(std::move(*w2_sub));
    std::atomic<bool> crash{false}, crashed{false}, stop_w2{false};
    std::atomic<int> crash_results{0}, dropped_unprocessed{0};
    std::atomic<bool> stop_edge{false};
    std::thread w2_thread, edge_thread;
    struct Finally {  // on a failed ASSERT too: no thread left running
        std::function<void()> f;
        ~Finally() { f(); }
    } finish{[&] {
        stop_edge.store(true);
        stop_w2.store(true);
        if (edge_thread.joinable()) edge_thread.join();
        if (w2_thread.joinable()) w2_thread.join();
    }};
    w2_thread = std::thread([&] {
        while (!stop_w2.load()) {
            if (crash.load() && !w2_faces.dying.load()) w2_faces.dying.store(true);
            const std::uint64_t results_before = w2.stats().results;
            Result<int> n = w2.Poll(w2_faces);
            if (!n.ok()) std::this_thread::sleep_for(50ms);  // bus unreachable: the client reconnects
            if (w2_faces.dying.load() && n.ok() && *n > 0) {
                // Died after publishing this batch's results: their acks are lost. The next
                // batch was fetched and never processed. Then the consumer is gone.
                crash_results.store(static_cast<int>(w2.stats().results - results_before));
                dropped_unprocessed.store(w2_faces.FetchAndDrop());
                w2_faces.Kill();
                crashed.store(true);
                return;
            }
        }
    });

    // The edge's thread: items paced a little, released in phases (`allowed`) so that the outage
    // and the crash happen while items are flowing to both workers.
    edge_thread = std::thread([&] {
        for (int i = 0; i < kItems && !stop_edge.load(); ++i) {
            while (i >= allowed.load() && !stop_edge.load()) std::this_thread::sleep_for(5ms);
            if (!edge.Submit(Item(i)).ok()) submit_errors.fetch_add(1);
            submitted.fetch_add(1);
            std::this_thread::sleep_for(5ms);
        }
    });

    // Phase 1: until both workers answered (both are in the group, each with its partitions).
    const bool both = WaitFor([&] {
        if (w1.stats().results > 0 && w2.stats().results > 0) return true;
        if (submitted.load() >= allowed.load()) allowed.store(std::min(allowed.load() + 4, kItems / 3));
        return false;
    }, 60s);
    ASSERT_TRUE(both) << "w1 " << w1.stats().results << ", w2 " << w2.stats().results;
    // Phase 2: broker 1 down (its partition leaderships moved to broker 2 first) and w2 crashes
    // on its next batch; w3 joins once w2 is gone.
    for (const std::string& t : topics) {
        for (int p = 0; p < kPartitions; ++p) {
            if (1 + p % 3 == 1) rd_kafka_mock_partition_set_leader(cluster.get(), t.c_str(), p, 2);
        }
    }
    ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster.get(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    crash.store(true);
    allowed.store(2 * kItems / 3);
    const bool w2_crashed = WaitFor([&] { return crashed.load(); }, 60s);
    RecognitionWorker w3(c3, *w3_bus, embedder, nullptr);
    ASSERT_TRUE(w3.Start().ok());
    // Phase 3: the rest; broker 1 comes back halfway through.
    allowed.store(kItems);
    WaitFor([&] { return submitted.load() >= 5 * kItems / 6; }, 60s);
    ASSERT_EQ(rd_kafka_mock_broker_set_up(cluster.get(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);

    edge_thread.join();
    EXPECT_TRUE(edge.WaitDrained(60s));
    EXPECT_TRUE(WaitFor([&] { return delivered() >= kItems; }, 60s)) << "results: " << delivered() << " of " << kItems;
    // A little longer: a doubled result would show up now (it must be dropped, not handed over).
    WaitFor([&] { return rc.stats().duplicates >= static_cast<std::uint64_t>(crash_results.load()); }, 10s);
    finish.f();
    w1.Stop();
    w3.Stop();
    rc.Stop();
    edge.Stop();

    EXPECT_TRUE(w2_crashed) << "w2 never got a batch to crash on";
    EXPECT_EQ(submit_errors.load(), 0);
    const bus::EdgePublisherStats es = edge.stats();
    EXPECT_EQ(es.items, static_cast<std::uint64_t>(kItems));
    EXPECT_EQ(es.published, static_cast<std::uint64_t>(kItems));
    EXPECT_EQ(es.dropped, 0u);

    std::lock_guard lock(mu);
    EXPECT_EQ(static_cast<int>(seen.size()), kItems);
    for (int i = 0; i < kItems; ++i) {
        const std::string id = bus::EdgeItemId(Item(i), kEpoch);
        auto it = seen.find(id);
        ASSERT_NE(it, seen.end()) << "no result for " << id;
        EXPECT_EQ(it->second, 1) << id;
    }
    EXPECT_EQ(not_unknown, 0);  // no gallery: every face is unknown
    EXPECT_EQ(rc.stats().delivered, static_cast<std::uint64_t>(kItems));
    // The crash was real: results published with their acks lost, so another worker answered
    // those items again and the consumer dropped the repeats.
    EXPECT_GT(w2_faces.lost_settles.load(), 0);
    EXPECT_GT(crash_results.load(), 0);
    EXPECT_GE(rc.stats().duplicates, static_cast<std::uint64_t>(crash_results.load()));
    const WorkerStats s1 = w1.stats(), s2 = w2.stats(), s3 = w3.stats();
    EXPECT_EQ(s1.poison + s2.poison + s3.poison, 0u);
    EXPECT_GE(s1.results + s2.results + s3.results,
              static_cast<std::uint64_t>(kItems + crash_results.load()));
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf("results: w1 %llu, w2 %llu (crash batch %d, %d fetched and dropped), w3 %llu; re-published "
                "from the workers' caches %llu; consumer duplicates dropped %llu; edge buffered %llu\n",
                u(s1.results), u(s2.results), crash_results.load(), dropped_unprocessed.load(), u(s3.results),
                u(s1.republished + s2.republished + s3.republished), u(rc.stats().duplicates), u(es.buffered));
}

// A leader broker down without its leaderships moved: its partitions are unavailable until it is
// back. The edge's publishes to them time out and the items go to the disk buffer (and every later
// item queues behind them), drained once the broker is back; exactly one result per item still.
TEST(KafkaRoles, ALeaderDownSendsTheEdgeToItsDiskBufferAndNothingIsLost) {
    MockCluster cluster;
    ASSERT_TRUE(cluster.ok());
    const std::vector<std::string> topics = {"fg.faces.eu", "fg.results.eu"};
    for (const std::string& t : topics) ASSERT_TRUE(cluster.CreateTopic(t, kPartitions)) << t;
    rd_kafka_mock_coordinator_set(cluster.get(), "group", "fg.workers.fg.faces.eu", 3);
    rd_kafka_mock_coordinator_set(cluster.get(), "group", "fg.results.fg.results.eu", 3);
    std::shared_ptr<bus::Bus> edge_bus = Connect(cluster, 2s), w1_bus = Connect(cluster, 2s),
                              w2_bus = Connect(cluster, 2s), rc_bus = Connect(cluster);
    ASSERT_TRUE(edge_bus && w1_bus && w2_bus && rc_bus);

    std::mutex mu;
    std::map<std::string, int> seen;
    ResultConsumer rc({.region = "eu"}, *rc_bus, [&](const bus::RecognitionResult& r, const bus::Envelope&) {
        std::lock_guard lock(mu);
        ++seen[r.item_id];
    });
    ASSERT_TRUE(rc.Start().ok());
    auto embedder = MakeStubEmbedder();
    RecognitionWorker w1({.worker_id = "w1", .region = "eu", .nak_delay = 100ms}, *w1_bus, embedder, nullptr);
    RecognitionWorker w2({.worker_id = "w2", .region = "eu", .nak_delay = 100ms}, *w2_bus, embedder, nullptr);
    ASSERT_TRUE(w1.Start().ok());
    ASSERT_TRUE(w2.Start().ok());

    fg::testing::TmpDir tmp;
    auto buffer = bus::DiskBuffer::Open({.dir = tmp / "edge", .max_records = 10000, .sync = false});
    ASSERT_TRUE(buffer.ok()) << buffer.status().ToString();
    bus::EdgePublisher edge(edge_bus, std::move(*buffer), {.region = "eu", .epoch = kEpoch, .retry_interval = 50ms});
    ASSERT_TRUE(edge.Start().ok());
    constexpr int kItems = 120;
    for (int i = 0; i < kItems / 3; ++i) EXPECT_TRUE(edge.Submit(Item(i)).ok());
    ASSERT_TRUE(WaitFor([&] { return rc.stats().delivered >= kItems / 3; }, 60s)) << rc.stats().delivered;

    // Broker 1 leads partitions 0 and 3 of both topics: down, leaderships left where they are.
    ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster.get(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = kItems / 3; i < 2 * kItems / 3; ++i) EXPECT_TRUE(edge.Submit(Item(i)).ok());
    EXPECT_GT(edge.stats().buffered, 0u);
    ASSERT_EQ(rd_kafka_mock_broker_set_up(cluster.get(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 2 * kItems / 3; i < kItems; ++i) EXPECT_TRUE(edge.Submit(Item(i)).ok());

    EXPECT_TRUE(edge.WaitDrained(60s));
    EXPECT_TRUE(WaitFor([&] { return rc.stats().delivered >= kItems; }, 60s))
        << "results: " << rc.stats().delivered << " of " << kItems;
    w1.Stop();
    w2.Stop();
    rc.Stop();
    edge.Stop();

    const bus::EdgePublisherStats es = edge.stats();
    EXPECT_EQ(es.published, static_cast<std::uint64_t>(kItems));
    EXPECT_EQ(es.drained, es.buffered);
    EXPECT_EQ(es.dropped, 0u);
    std::lock_guard lock(mu);
    EXPECT_EQ(static_cast<int>(seen.size()), kItems);
    for (int i = 0; i < kItems; ++i) {
        const std::string id = bus::EdgeItemId(Item(i), kEpoch);
        auto it = seen.find(id);
        ASSERT_NE(it, seen.end()) << "no result for " << id;
        EXPECT_EQ(it->second, 1) << id;
    }
    std::printf("edge buffered %llu, drained %llu; worker publish failures %llu; consumer duplicates %llu\n",
                static_cast<unsigned long long>(es.buffered), static_cast<unsigned long long>(es.drained),
                static_cast<unsigned long long>(w1.stats().publish_failures + w2.stats().publish_failures),
                static_cast<unsigned long long>(rc.stats().duplicates));
}

}  // namespace
}  // namespace fg::cluster
