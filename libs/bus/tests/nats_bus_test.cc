// SPDX-License-Identifier: Apache-2.0
// The NATS JetStream bus against a real nats-server started here (loopback, free port, temp
// storage): exactly one result per face item with several workers, through a server restart,
// server-side dedupe of a repeated Nats-Msg-Id, and a newer-major envelope left for a newer reader.
#include "fg/bus/nats.h"

#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "bus_test_util.h"
#include "fg/base/paths.h"

namespace fg::bus {
namespace {

using namespace fg::bus::testing;

class NatsBusTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!HaveNatsServer()) {
            if (fg::InCi()) FAIL() << "nats-server not found (Debian nats-server)";
            GTEST_SKIP() << "nats-server not found (Debian nats-server)";
        }
        server_ = std::make_unique<NatsServer>(dir_.path());
        ASSERT_TRUE(server_->Start()) << "nats-server did not start; log: " << (dir_ / "nats.log");
    }

    NatsConfig Config() const {
        NatsConfig c;
        c.url = server_->url();
        c.ack_timeout = 1000ms;
        c.publish_timeout = 20s;
        c.ack_wait = 2s;  // short, so deliveries lost in a restart come back quickly
        c.max_deliver = 20;
        c.reconnect_wait = 100ms;
        return c;
    }

    /// Publishes `n` face items from one edge thread, K workers process them, one result
    /// consumer dedupes; `midway` runs (on this thread) once a third was published.
    void RunDelivery(Bus& bus, int n, int workers, const std::function<void()>& midway, Outcome& out) {
        std::vector<std::unique_ptr<Consumer>> consumers;
        for (int w = 0; w < workers; ++w) {
            auto c = bus.Subscribe({.topic = Topic::kFaces, .region = "eu", .group = "workers"});
            ASSERT_TRUE(c.ok()) << c.status().ToString();
            consumers.push_back(std::move(*c));
        }
        auto results = bus.Subscribe({.topic = Topic::kResults, .region = "eu", .group = "serve"});
        ASSERT_TRUE(results.ok()) << results.status().ToString();

        std::atomic<bool> stop{false};
        std::atomic<int> published{0};
        std::atomic<int> publish_errors{0};
        DedupeWindow window(100000);
        std::vector<std::thread> threads;
        for (int w = 0; w < workers; ++w) {
            threads.emplace_back([&, w] { WorkerLoop(bus, *consumers[w], "w" + std::to_string(w), stop, out); });
        }
        threads.emplace_back([&] { ResultLoop(**results, window, stop, out); });
        std::thread edge([&] {
            for (int i = 0; i < n; ++i) {
                pipeline::FaceItem item = MakeItem(i, 4);
                auto env = FaceItemEnvelope(item, "eu", item.stream_id, 0);
                if (!env.ok() || !PublishEnvelope(bus, *env).ok()) publish_errors.fetch_add(1);
                published.fetch_add(1);
            }
        });
        if (midway) {
            EXPECT_TRUE(WaitFor([&] { return published.load() >= n / 3; }, 30s));
            midway();
        }
        edge.join();
        EXPECT_EQ(publish_errors.load(), 0) << "the edge's publishes must ride out the outage";
        EXPECT_TRUE(WaitFor([&] { return out.unique.load() >= n; }, 40s))
            << "results: " << out.unique.load() << " of " << n;
        stop.store(true);
        for (auto& t : threads) t.join();

        std::lock_guard lock(out.mu);
        EXPECT_EQ(static_cast<int>(out.results.size()), n);
        for (int i = 0; i < n; ++i) {
            const std::string id = MakeItem(i, 4).item_id;
            auto it = out.results.find(id);
            ASSERT_NE(it, out.results.end()) << "no result for " << id;
            EXPECT_EQ(it->second, 1) << id;
        }
        EXPECT_GE(out.face_deliveries.load(), n);
    }

    fg::testing::TmpDir dir_;
    std::unique_ptr<NatsServer> server_;
};

TEST_F(NatsBusTest, EveryItemYieldsExactlyOneResultWithThreeWorkers) {
    auto bus = CreateNatsBus(Config());
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    Outcome out;
    RunDelivery(**bus, 300, 3, nullptr, out);
    EXPECT_EQ((*bus)->stats().publish_failures, 0u);
}

TEST_F(NatsBusTest, ServerRestartMidStreamLosesNothingAndDoublesNothing) {
    auto bus = CreateNatsBus(Config());
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    Outcome out;
    RunDelivery(**bus, 300, 3, [&] {
        server_->Stop();  // clean shutdown: JetStream's file store survives it
        ASSERT_TRUE(server_->Start());
    }, out);
    const BusStats s = (*bus)->stats();
    EXPECT_GE(s.disconnects, 1u);
    EXPECT_GE(s.reconnects, 1u);
    EXPECT_EQ(s.publish_failures, 0u);
}

TEST_F(NatsBusTest, RepeatedMsgIdIsStoredOnce) {
    auto bus = CreateNatsBus(Config());
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    const Route route{.topic = Topic::kFaces, .region = "dup", .camera = "c1"};
    auto first = (*bus)->Publish(route, "item-1", "{}");
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_FALSE(first->duplicate);
    auto again = (*bus)->Publish(route, "item-1", "{}");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(again->duplicate);
    EXPECT_EQ(again->sequence, first->sequence);
    ASSERT_TRUE((*bus)->Publish(route, "item-2", "{}").ok());
    EXPECT_EQ((*bus)->stats().duplicates, 1u);

    auto consumer = (*bus)->Subscribe({.topic = Topic::kFaces, .region = "dup", .group = "workers"});
    ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
    std::vector<std::string> ids;
    ASSERT_TRUE(WaitFor([&] {
        auto batch = (*consumer)->Fetch(10, 200ms);
        if (batch.ok()) {
            for (auto& d : *batch) {
                ids.push_back(d->id());
                EXPECT_TRUE(d->Ack().ok());
            }
        }
        return ids.size() >= 2;
    }, 10s));
    EXPECT_EQ(ids, (std::vector<std::string>{"item-1", "item-2"}));
    auto rest = (*consumer)->Fetch(10, 300ms);
    ASSERT_TRUE(rest.ok());
    EXPECT_TRUE(rest->empty()) << "acked work-queue items must not come back";
}

TEST_F(NatsBusTest, NewerMajorEnvelopeIsRefusedAndLeftForANewerReader) {
    auto bus = CreateNatsBus(Config());
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    const Route route{.topic = Topic::kFaces, .region = "future", .camera = "c1"};
    ASSERT_TRUE((*bus)->Publish(route, "v2-item", R"({"v":2,"type":"face_item","id":"v2-item","payload":{}})").ok());
    auto consumer = (*bus)->Subscribe({.topic = Topic::kFaces, .region = "future", .group = "workers"});
    ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();

    std::unique_ptr<Delivery> first;
    ASSERT_TRUE(WaitFor([&] {
        auto batch = (*consumer)->Fetch(1, 200ms);
        if (batch.ok() && !batch->empty()) first = std::move(batch->front());
        return first != nullptr;
    }, 10s));
    auto env = DecodeEnvelope(first->data());
    ASSERT_FALSE(env.ok());
    EXPECT_EQ(env.status().code(), StatusCode::kFailedPrecondition) << env.status().ToString();
    EXPECT_EQ(first->delivery_count(), 1u);
    // Not ours to read: nak it with a delay so that it is redelivered (to a newer worker).
    ASSERT_TRUE(first->Nak(100ms).ok());
    std::unique_ptr<Delivery> second;
    ASSERT_TRUE(WaitFor([&] {
        auto batch = (*consumer)->Fetch(1, 200ms);
        if (batch.ok() && !batch->empty()) second = std::move(batch->front());
        return second != nullptr;
    }, 10s));
    EXPECT_EQ(second->id(), "v2-item");
    EXPECT_EQ(second->delivery_count(), 2u);
    EXPECT_GE((*bus)->stats().redeliveries, 1u);
    EXPECT_TRUE(second->Term().ok());
}

TEST_F(NatsBusTest, UnackedDeliveryComesBackAfterAckWait) {
    NatsConfig c = Config();
    c.ack_wait = 500ms;
    auto bus = CreateNatsBus(c);
    ASSERT_TRUE(bus.ok()) << bus.status().ToString();
    const Route route{.topic = Topic::kFaces, .region = "lost", .camera = "c1"};
    ASSERT_TRUE((*bus)->Publish(route, "lost-ack", "{}").ok());
    auto consumer = (*bus)->Subscribe({.topic = Topic::kFaces, .region = "lost", .group = "workers"});
    ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
    std::vector<std::uint64_t> counts;
    ASSERT_TRUE(WaitFor([&] {
        auto batch = (*consumer)->Fetch(1, 200ms);
        if (batch.ok()) {
            for (auto& d : *batch) {
                counts.push_back(d->delivery_count());
                if (counts.size() == 2) {
                    EXPECT_TRUE(d->Ack().ok());  // the first is "lost" (a crash)
                }
            }
        }
        return counts.size() >= 2;
    }, 10s));
    EXPECT_EQ(counts, (std::vector<std::uint64_t>{1, 2}));
}

TEST(NatsBusConfig, BadConfigIsRefused) {
    NatsConfig c;
    c.max_deliver = 2;
    c.backoff = {1s, 2s};
    EXPECT_EQ(CreateNatsBus(c).status().code(), StatusCode::kInvalidArgument);
    c = NatsConfig{};
    c.url = "";
    EXPECT_EQ(CreateNatsBus(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(NatsBusConfig, NoServerIsUnavailableWithinTheTimeout) {
    NatsConfig c;
    c.url = "nats://127.0.0.1:" + std::to_string(fg::testing::FreeLoopbackPort());
    c.publish_timeout = 500ms;
    auto bus = CreateNatsBus(c);
    ASSERT_FALSE(bus.ok());
    EXPECT_EQ(bus.status().code(), StatusCode::kUnavailable) << bus.status().ToString();
}

}  // namespace
}  // namespace fg::bus
