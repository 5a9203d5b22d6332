// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/edge_publisher.h"

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "fg/bus/messages.h"
#include "fg/gallery/crypto.h"
#include "fg/testing/testing.h"

namespace fg::bus {
namespace {

using namespace std::chrono_literals;

/// A bus that can be taken down: Publish is Unavailable while down; stores by id (deduping
/// like NATS's Msg-Id window) and remembers the order ids were first stored in.
class FakeBus final : public Bus {
  public:
    std::atomic<bool> up{true};
    Result<PublishAck> Publish(const Route& route, const std::string& id, std::string_view data) override {
        if (!up.load()) return Unavailable("fake bus: down");
        std::lock_guard lock(mu);
        calls += 1;
        PublishAck ack;
        if (stored.count(id)) {
            ack.duplicate = true;
            return ack;
        }
        stored[id] = std::string(data);
        routes[id] = route;
        order.push_back(id);
        ack.sequence = order.size();
        return ack;
    }
    Result<std::unique_ptr<Consumer>> Subscribe(const Subscription&) override {
        return Unimplemented("fake bus: no consumers");
    }
    BusStats stats() const override { return {}; }

    std::mutex mu;
    int calls = 0;
    std::map<std::string, std::string> stored;
    std::map<std::string, Route> routes;
    std::vector<std::string> order;
};

pipeline::FaceItem Item(const std::string& stream, int track, int frame) {
    pipeline::FaceItem item;
    item.stream_id = stream;
    item.track_id = static_cast<std::uint64_t>(track);
    item.frame_index = frame;
    item.item_id = stream + "/0/" + std::to_string(track) + "/" + std::to_string(frame);
    item.quality = 0.8f;
    item.aligned = cv::Mat(112, 112, CV_8UC3, cv::Scalar(90, 120, 150));
    return item;
}

struct Edge {
    std::shared_ptr<FakeBus> bus = std::make_shared<FakeBus>();
    std::unique_ptr<EdgePublisher> pub;

    Edge(const std::filesystem::path& dir, std::uint64_t epoch, std::shared_ptr<const gallery::KeyRing> keys = nullptr,
         std::uint64_t max_records = 1000) {
        auto buf = DiskBuffer::Open({.dir = dir, .max_records = max_records, .sync = false});
        EXPECT_TRUE(buf.ok()) << buf.status().ToString();
        pub = std::make_unique<EdgePublisher>(
            bus, std::move(*buf),
            EdgePublisherOptions{.region = "hq", .keys = std::move(keys), .epoch = epoch, .retry_interval = 20ms});
        EXPECT_TRUE(pub->Start().ok());
    }
};

TEST(BusEdgePublisher, IdsAreDeterministicAndCarryTheEpoch) {
    const pipeline::FaceItem a = Item("door-1", 7, 120);
    EXPECT_EQ(EdgeItemId(a, 3), "door-1/3.0/7/120");
    EXPECT_EQ(EdgeItemId(a, 3), EdgeItemId(a, 3));
    EXPECT_NE(EdgeItemId(a, 3), EdgeItemId(a, 4));
    fg::testing::TmpDir tmp;
    auto e1 = NextEdgeEpoch(tmp / "buf");
    auto e2 = NextEdgeEpoch(tmp / "buf");
    ASSERT_TRUE(e1.ok() && e2.ok());
    EXPECT_GT(*e1, 1'700'000'000u);  // the wall clock in seconds: a wiped directory never restarts at 1
    EXPECT_EQ(*e2, *e1 + 1);           // strictly increasing, even within one second
    { std::ofstream(tmp / "buf" / "EPOCH", std::ios::trunc) << "9999999999999\n"; }
    EXPECT_EQ(*NextEdgeEpoch(tmp / "buf"), 10'000'000'000'000u);  // never back with the clock
    { std::ofstream(tmp / "buf" / "EPOCH", std::ios::trunc) << "nonsense"; }
    EXPECT_EQ(NextEdgeEpoch(tmp / "buf").status().code(), StatusCode::kDataLoss);
}

TEST(BusEdgePublisher, PublishesFaceItemsWithoutFrames) {
    fg::testing::TmpDir tmp;
    Edge edge(tmp / "buf", 5);
    ASSERT_TRUE(edge.pub->Submit(Item("door-1", 1, 10)).ok());
    const auto s = edge.pub->stats();
    EXPECT_EQ(s.published, 1u);
    EXPECT_EQ(s.buffered, 0u);
    std::lock_guard lock(edge.bus->mu);
    ASSERT_EQ(edge.bus->order.size(), 1u);
    const std::string id = edge.bus->order[0];
    EXPECT_EQ(id, "door-1/5.0/1/10");
    EXPECT_EQ(edge.bus->routes[id].camera, "door-1");
    EXPECT_EQ(edge.bus->routes[id].region, "hq");
    auto env = DecodeEnvelope(edge.bus->stored[id]);
    ASSERT_TRUE(env.ok());
    auto item = FaceItemFromEnvelope(*env);
    ASSERT_TRUE(item.ok());
    EXPECT_EQ(item->item_id, id);
    EXPECT_EQ(item->aligned.cols, 112);  // the crop, not a frame
    EXPECT_LT(edge.bus->stored[id].size(), 20000u);
}

TEST(BusEdgePublisher, BuffersWhileDownThenDrainsInOrderExactlyOnce) {
    fg::testing::TmpDir tmp;
    auto key = gallery::ParseKey(std::string(64, 'a'));
    ASSERT_TRUE(key.ok());
    auto keys = std::make_shared<const gallery::KeyRing>(*key);
    Edge edge(tmp / "buf", 1, keys);
    std::vector<std::string> want;
    auto submit = [&](int i) {
        const auto item = Item("cam" + std::to_string(i % 2), i / 4, i);
        want.push_back(EdgeItemId(item, 1));
        ASSERT_TRUE(edge.pub->Submit(item).ok());
    };
    for (int i = 0; i < 5; ++i) submit(i);
    edge.bus->up = false;
    for (int i = 5; i < 20; ++i) submit(i);
    auto s = edge.pub->stats();
    EXPECT_FALSE(s.bus_up);
    EXPECT_EQ(s.buffered, 15u);
    EXPECT_EQ(s.depth, 15u);
    edge.bus->up = true;
    // Items submitted while the buffer drains queue behind it (order is kept).
    for (int i = 20; i < 25; ++i) submit(i);
    ASSERT_TRUE(edge.pub->WaitDrained(10s));
    s = edge.pub->stats();
    EXPECT_EQ(s.items, 25u);
    EXPECT_EQ(s.published, 25u);
    EXPECT_EQ(s.dropped, 0u);
    EXPECT_EQ(s.depth, 0u);
    EXPECT_GE(s.drained, 15u);
    std::lock_guard lock(edge.bus->mu);
    EXPECT_EQ(edge.bus->order, want);
    // Sealed: the buffer and the bus hold ciphertext; with the key the crop comes back.
    auto env = DecodeEnvelope(edge.bus->stored[want[7]], keys.get());
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    EXPECT_FALSE(DecodeEnvelope(edge.bus->stored[want[7]]).ok());
}

TEST(BusEdgePublisher, BufferSurvivesARestartAndDrainsThenWithTheSameIds) {
    fg::testing::TmpDir tmp;
    std::vector<std::string> want;
    {
        Edge edge(tmp / "buf", 1);
        edge.bus->up = false;
        for (int i = 0; i < 6; ++i) {
            const auto item = Item("door", 1, i);
            want.push_back(EdgeItemId(item, 1));
            ASSERT_TRUE(edge.pub->Submit(item).ok());
        }
        edge.pub->Stop();
        EXPECT_EQ(edge.pub->stats().depth, 6u);
    }
    Edge again(tmp / "buf", 2);  // the next run: the bus is up
    ASSERT_TRUE(again.pub->WaitDrained(10s));
    const auto next = Item("door", 1, 0);  // the pipeline restarts its numbering...
    ASSERT_TRUE(again.pub->Submit(next).ok());
    want.push_back(EdgeItemId(next, 2));  // ...the epoch keeps the id new
    std::lock_guard lock(again.bus->mu);
    EXPECT_EQ(again.bus->order, want);
    EXPECT_EQ(again.pub->stats().drained, 6u);
}

TEST(BusEdgePublisher, FullBufferDropsOldestAndCountsIt) {
    fg::testing::TmpDir tmp;
    Edge edge(tmp / "buf", 1, nullptr, /*max_records=*/4);
    edge.bus->up = false;
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(edge.pub->Submit(Item("door", 1, i)).ok());
    auto s = edge.pub->stats();
    EXPECT_EQ(s.depth, 4u);
    EXPECT_EQ(s.dropped, 6u);
    edge.bus->up = true;
    ASSERT_TRUE(edge.pub->WaitDrained(10s));
    std::lock_guard lock(edge.bus->mu);
    ASSERT_EQ(edge.bus->order.size(), 4u);
    EXPECT_EQ(edge.bus->order.front(), "door/1.0/1/6");  // the newest four
}

TEST(BusEdgePublisher, ConcurrentStreamsLoseNothing) {
    fg::testing::TmpDir tmp;
    Edge edge(tmp / "buf", 1);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 40; ++i) {
                if (t == 0 && i == 10) edge.bus->up = false;
                if (t == 0 && i == 30) edge.bus->up = true;
                EXPECT_TRUE(edge.pub->Submit(Item("cam" + std::to_string(t), 1, i)).ok());
            }
        });
    }
    for (auto& th : threads) th.join();
    edge.bus->up = true;
    ASSERT_TRUE(edge.pub->WaitDrained(10s));
    std::lock_guard lock(edge.bus->mu);
    EXPECT_EQ(edge.bus->stored.size(), 160u);
    // Per camera, the bus saw the frames in order.
    std::map<std::string, int> last;
    for (const std::string& id : edge.bus->order) {
        const std::string cam = id.substr(0, id.find('/'));
        const int frame = std::stoi(id.substr(id.rfind('/') + 1));
        EXPECT_GT(frame, last.count(cam) ? last[cam] : -1) << id;
        last[cam] = frame;
    }
}

TEST(BusEdgePublisher, BadStreamIdIsAClearError) {
    fg::testing::TmpDir tmp;
    Edge edge(tmp / "buf", 1);
    EXPECT_EQ(edge.pub->Submit(Item("bad camera!", 1, 1)).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(edge.pub->stats().dropped, 1u);
}

}  // namespace
}  // namespace fg::bus
