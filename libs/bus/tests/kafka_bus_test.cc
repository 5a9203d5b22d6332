// SPDX-License-Identifier: Apache-2.0
// The Kafka bus against librdkafka's mock cluster (no Kafka broker is packaged for Debian): three
// brokers in this process on loopback, two workers in one consumer group, a result consumer, and
// a broker taken down mid-run after its partition leaderships moved away.
#include "fg/bus/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "bus_test_util.h"
#include "kafka_mock.h"

namespace fg::bus {
namespace {

using namespace fg::bus::testing;

constexpr int kPartitions = 4;

using fg::bus::testing::MockCluster;

TEST(KafkaBus, EveryItemYieldsExactlyOneResultThroughABrokerOutage) {
    MockCluster cluster;
    ASSERT_TRUE(cluster.ok());
    const std::vector<std::string> topics = {"fg.faces.eu", "fg.results.eu"};
    for (const std::string& t : topics) ASSERT_TRUE(cluster.CreateTopic(t, kPartitions)) << t;
    // Group coordinators on broker 3, which stays up (broker 1 is the one taken down).
    rd_kafka_mock_coordinator_set(cluster.get(), "group", "fg.workers.fg.faces.eu", 3);
    rd_kafka_mock_coordinator_set(cluster.get(), "group", "fg.serve.fg.results.eu", 3);

    KafkaConfig config;
    config.bootstrap_servers = cluster.bootstraps();
    config.publish_timeout = 20s;
    config.session_timeout = 6s;
    auto bus = CreateKafkaBus(config);
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();

    constexpr int kItems = 200;
    constexpr int kWorkers = 2;
    Outcome out;
    std::vector<std::unique_ptr<Consumer>> consumers;
    for (int w = 0; w < kWorkers; ++w) {
        auto c = (*bus)->Subscribe({.topic = Topic::kFaces, .region = "eu", .group = "workers"});
        ASSERT_TRUE(c.ok()) << c.status().ToString();
        consumers.push_back(std::move(*c));
    }
    auto results = (*bus)->Subscribe({.topic = Topic::kResults, .region = "eu", .group = "serve"});
    ASSERT_TRUE(results.ok()) << results.status().ToString();

    std::atomic<bool> stop{false};
    std::atomic<int> published{0}, publish_errors{0};
    DedupeWindow window(100000);
    std::vector<std::thread> threads;
    for (int w = 0; w < kWorkers; ++w) {
        threads.emplace_back([&, w] { WorkerLoop(**bus, *consumers[w], "w" + std::to_string(w), stop, out); });
    }
    threads.emplace_back([&] { ResultLoop(**results, window, stop, out); });
    std::thread edge([&] {
        for (int i = 0; i < kItems; ++i) {
            pipeline::FaceItem item = MakeItem(i, 4);
            auto env = FaceItemEnvelope(item, "eu", item.stream_id, 0);
            if (!env.ok() || !PublishEnvelope(**bus, *env).ok()) publish_errors.fetch_add(1);
            published.fetch_add(1);
        }
    });

    // Mid-run: broker 1's partitions move to broker 2, then broker 1 goes down; it comes back
    // once most items are out.
    ASSERT_TRUE(WaitFor([&] { return published.load() >= kItems / 3; }, 30s));
    for (const std::string& t : topics) {
        for (int p = 0; p < kPartitions; ++p) {
            if (1 + p % 3 == 1) rd_kafka_mock_partition_set_leader(cluster.get(), t.c_str(), p, 2);
        }
    }
    ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster.get(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_TRUE(WaitFor([&] { return published.load() >= 2 * kItems / 3; }, 30s));
    ASSERT_EQ(rd_kafka_mock_broker_set_up(cluster.get(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);

    edge.join();
    EXPECT_EQ(publish_errors.load(), 0);
    EXPECT_TRUE(WaitFor([&] { return out.unique.load() >= kItems; }, 40s))
        << "results: " << out.unique.load() << " of " << kItems;
    stop.store(true);
    for (auto& t : threads) t.join();
    consumers.clear();
    results->reset();

    std::lock_guard lock(out.mu);
    EXPECT_EQ(static_cast<int>(out.results.size()), kItems);
    for (int i = 0; i < kItems; ++i) {
        const std::string id = MakeItem(i, 4).item_id;
        auto it = out.results.find(id);
        ASSERT_NE(it, out.results.end()) << "no result for " << id;
        EXPECT_EQ(it->second, 1) << id;
    }
    EXPECT_GE((*bus)->stats().published, static_cast<std::uint64_t>(2 * kItems));  // items + results
}

TEST(KafkaBus, NakRewindsToTheMessage) {
    MockCluster cluster;
    ASSERT_TRUE(cluster.ok());
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster.get(), "fg.faces.nak", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    KafkaConfig config;
    config.bootstrap_servers = cluster.bootstraps();
    config.publish_timeout = 10s;
    auto bus = CreateKafkaBus(config);
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    const Route route{.topic = Topic::kFaces, .region = "nak", .camera = "c1"};
    ASSERT_TRUE((*bus)->Publish(route, "m1", "one").ok());
    ASSERT_TRUE((*bus)->Publish(route, "m2", "two").ok());
    auto consumer = (*bus)->Subscribe({.topic = Topic::kFaces, .region = "nak", .group = "workers"});
    ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();

    std::vector<std::string> seen;
    bool naked = false;
    ASSERT_TRUE(WaitFor([&] {
        auto batch = (*consumer)->Fetch(1, 200ms);
        if (batch.ok()) {
            for (auto& d : *batch) {
                seen.push_back(d->id());
                if (d->id() == "m1" && !naked) {
                    naked = true;
                    EXPECT_TRUE(d->Nak(0ms).ok());
                } else {
                    EXPECT_TRUE(d->Ack().ok());
                }
            }
        }
        return seen.size() >= 3 && seen.back() == "m2";
    }, 20s)) << seen.size();
    EXPECT_EQ(seen.front(), "m1");
    EXPECT_EQ(seen[1], "m1");  // m1 came again after the nak
}

TEST(KafkaBus, BadConfigIsRefused) {
    KafkaConfig config;
    config.bootstrap_servers = "";
    EXPECT_EQ(CreateKafkaBus(config).status().code(), StatusCode::kInvalidArgument);
    config.bootstrap_servers = "127.0.0.1:" + std::to_string(fg::testing::FreeLoopbackPort());  // nobody
    auto bus = CreateKafkaBus(config);
    ASSERT_TRUE(bus.ok());
    EXPECT_EQ((*bus)->Publish({.topic = Topic::kFaces, .region = "a.b", .camera = "c"}, "x", "{}").status().code(),
              StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fg::bus
