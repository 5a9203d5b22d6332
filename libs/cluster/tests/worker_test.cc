// SPDX-License-Identifier: Apache-2.0
// RecognitionWorker and ResultConsumer against the in-memory FakeBus with a fake embedder and a
// fake gallery: the publish-then-ack order, idempotent redelivery, poison messages, bus outages.
#include "fg/cluster/worker.h"

#include <atomic>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "fake_bus.h"
#include "fg/bus/envelope.h"
#include "fg/bus/messages.h"
#include "fg/cluster/embedders.h"
#include "fg/cluster/result_consumer.h"
#include "fg/gallery/crypto.h"

namespace fg::cluster {
namespace {

using namespace std::chrono_literals;
using testing::FakeBus;

/// values[0] = the crop's mean blue / 255, so a bright crop "is" alice. Counts its calls; can
/// be told to fail.
class FakeEmbedder final : public FaceEmbedder {
  public:
    Status Embed(const std::vector<cv::Mat>& aligned, std::vector<Embedding>& out) override {
        calls.fetch_add(1);
        if (fail_transient.load() > 0) {
            fail_transient.fetch_sub(1);
            return Unavailable("fake embedder: busy");
        }
        out.clear();
        for (const cv::Mat& m : aligned) {
            if (m.rows != 112) return InvalidArgument("fake embedder: crop is not 112x112");
            out.push_back({.model_id = "fake", .values = {static_cast<float>(cv::mean(m)[0] / 255.0), 0.f}});
        }
        return Status::Ok();
    }
    std::string model_id() const override { return "fake"; }
    std::atomic<int> calls{0};
    std::atomic<int> fail_transient{0};
};

class FakeGallery final : public pipeline::Identifier {
  public:
    Result<pipeline::IdentityVerdict> Identify(const Embedding& probe) const override {
        pipeline::IdentityVerdict v;
        v.score = probe.values[0];
        if (v.score > 0.5f) {
            v.known = true;
            v.subject_id = "alice";
        }
        return v;
    }
};

pipeline::FaceItem Item(int i, int blue = 200) {
    pipeline::FaceItem item;
    item.stream_id = "cam" + std::to_string(i % 2);
    item.track_id = static_cast<std::uint64_t>(i);
    item.frame_index = i;
    item.item_id = item.stream_id + "/0/" + std::to_string(i) + "/" + std::to_string(i);
    item.aligned = cv::Mat(112, 112, CV_8UC3, cv::Scalar(blue, 100, 100));
    return item;
}

void PublishItem(FakeBus& bus, const pipeline::FaceItem& item, const gallery::KeyRing* keys = nullptr) {
    auto env = bus::FaceItemEnvelope(item, "hq", item.stream_id, 1);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    ASSERT_TRUE(bus::PublishEnvelope(bus, *env, keys).ok());
}

std::map<std::string, bus::RecognitionResult> Results(FakeBus& bus, const gallery::KeyRing* keys = nullptr) {
    std::map<std::string, bus::RecognitionResult> out;
    for (const FakeBus::Message& m : bus.Messages(bus::Topic::kResults, "hq")) {
        auto env = bus::DecodeEnvelope(m.data, keys);
        EXPECT_TRUE(env.ok()) << env.status().ToString();
        auto r = bus::ResultFromEnvelope(*env);
        EXPECT_TRUE(r.ok());
        EXPECT_FALSE(out.contains(r->item_id)) << "two results for " << r->item_id;
        out[r->item_id] = *r;
    }
    return out;
}

class ClusterWorker : public ::testing::Test {
  protected:
    WorkerConfig Config() {
        WorkerConfig c;
        c.worker_id = "w1";
        c.region = "hq";
        c.fetch_batch = 4;
        c.fetch_wait = 1ms;
        c.backoff_min = 1ms;
        c.backoff_max = 5ms;
        return c;
    }
    std::unique_ptr<bus::Consumer> Faces() {
        auto c = bus_.Subscribe({.topic = bus::Topic::kFaces, .region = "hq", .group = "workers"});
        EXPECT_TRUE(c.ok());
        return std::move(*c);
    }
    FakeBus bus_;
    std::shared_ptr<FakeEmbedder> embedder_ = std::make_shared<FakeEmbedder>();
    std::shared_ptr<FakeGallery> gallery_ = std::make_shared<FakeGallery>();
};

TEST_F(ClusterWorker, PublishesOneResultPerItemThenAcks) {
    for (int i = 0; i < 10; ++i) PublishItem(bus_, Item(i, i % 2 ? 220 : 30));
    RecognitionWorker w(Config(), bus_, embedder_, gallery_);
    auto faces = Faces();
    for (int k = 0; k < 5; ++k) ASSERT_TRUE(w.Poll(*faces).ok());
    const auto results = Results(bus_);
    ASSERT_EQ(results.size(), 10u);
    for (int i = 0; i < 10; ++i) {
        const bus::RecognitionResult& r = results.at(Item(i).item_id);
        EXPECT_EQ(r.decision, i % 2 ? "known" : "unknown") << i;
        EXPECT_EQ(r.subject_id, i % 2 ? "alice" : "");
        EXPECT_EQ(r.worker_id, "w1");
        EXPECT_EQ(r.track_id, static_cast<std::uint64_t>(i));
    }
    EXPECT_EQ(bus_.Settled(bus::Topic::kFaces, "hq", "workers"), 10);
    EXPECT_EQ(embedder_->calls.load(), 3);  // batches of 4, 4, 2: one call each
    const WorkerStats s = w.stats();
    EXPECT_EQ(s.results, 10u);
    EXPECT_EQ(s.known, 5u);
    EXPECT_EQ(s.unknown, 5u);
}

TEST_F(ClusterWorker, AFailedResultPublishLeavesTheItemUnackedAndItComesAgain) {
    PublishItem(bus_, Item(1));
    RecognitionWorker w(Config(), bus_, embedder_, gallery_);
    auto faces = Faces();
    bus_.FailPublishes(1);
    ASSERT_TRUE(w.Poll(*faces).ok());
    EXPECT_TRUE(Results(bus_).empty());
    EXPECT_EQ(bus_.Settled(bus::Topic::kFaces, "hq", "workers"), 0);  // naked, not acked
    EXPECT_EQ(w.stats().publish_failures, 1u);
    ASSERT_TRUE(w.Poll(*faces).ok());
    EXPECT_EQ(Results(bus_).size(), 1u);
    EXPECT_EQ(bus_.Settled(bus::Topic::kFaces, "hq", "workers"), 1);
}

TEST_F(ClusterWorker, ARedeliveredItemIsAnsweredAgainWithTheSameIdWithoutEmbedding) {
    PublishItem(bus_, Item(1));
    RecognitionWorker w(Config(), bus_, embedder_, gallery_);
    auto faces = Faces();
    bus_.FailAcks(1);  // the ack is lost: the bus redelivers after its ack wait
    ASSERT_TRUE(w.Poll(*faces).ok());
    EXPECT_EQ(w.stats().ack_failures, 1u);
    bus_.ExpireInflight();
    ASSERT_TRUE(w.Poll(*faces).ok());
    EXPECT_EQ(embedder_->calls.load(), 1);
    const WorkerStats s = w.stats();
    EXPECT_EQ(s.results, 1u);
    EXPECT_EQ(s.republished, 1u);
    EXPECT_EQ(s.redelivered, 1u);
    EXPECT_EQ(Results(bus_).size(), 1u);  // the repeat had the same id: deduped by the bus
    EXPECT_EQ(bus_.Settled(bus::Topic::kFaces, "hq", "workers"), 1);
}

TEST_F(ClusterWorker, PoisonIsTerminatedANewerMajorIsLeftForANewerWorker) {
    ASSERT_TRUE(bus_.Publish({.topic = bus::Topic::kFaces, .region = "hq", .camera = "c"}, "junk", "not json").ok());
    ASSERT_TRUE(bus_.Publish({.topic = bus::Topic::kFaces, .region = "hq", .camera = "c"}, "v2",
                             R"({"v":2,"type":"face_item","id":"v2","payload":{}})")
                    .ok());
    // A result where a face item belongs, and a face item without a crop.
    bus::RecognitionResult r{.item_id = "x", .decision = "unknown"};
    auto renv = bus::ResultEnvelope(r, "hq", "c", 1);
    ASSERT_TRUE(renv.ok());
    auto bytes = bus::EncodeEnvelope(*renv);
    ASSERT_TRUE(bus_.Publish({.topic = bus::Topic::kFaces, .region = "hq", .camera = "c"}, "x", *bytes).ok());
    pipeline::FaceItem no_crop = Item(5);
    no_crop.aligned = cv::Mat();
    no_crop.embed = false;  // serialises without a crop...
    auto nenv = bus::FaceItemEnvelope(no_crop, "hq", "c", 1);
    ASSERT_TRUE(nenv.ok());
    nenv->payload["embed"] = true;  // ...then claims one
    ASSERT_TRUE(bus::PublishEnvelope(bus_, *nenv).ok());

    RecognitionWorker w(Config(), bus_, embedder_, gallery_);
    auto faces = Faces();
    ASSERT_TRUE(w.Poll(*faces).ok());
    const WorkerStats s = w.stats();
    EXPECT_EQ(s.poison, 3u);
    EXPECT_EQ(s.newer_version, 1u);
    EXPECT_EQ(bus_.Termed(bus::Topic::kFaces, "hq", "workers"), 3);
    EXPECT_EQ(bus_.naks(), 1);
    EXPECT_TRUE(Results(bus_).empty());
}

TEST_F(ClusterWorker, DecidesSpoofAndWithholdsAMatchTheEdgeCouldNotCallLive) {
    pipeline::FaceItem spoof = Item(1);
    spoof.liveness = {.checked = true, .live = false, .spoof = true, .score = 0.1f, .threshold = 0.5f};
    pipeline::FaceItem pending = Item(2);
    pending.liveness = {.checked = true, .live = false, .spoof = false, .score = 0.f, .threshold = 0.5f};
    pipeline::FaceItem live = Item(3);
    live.liveness = {.checked = true, .live = true, .spoof = false, .score = 0.9f, .threshold = 0.5f};
    for (const auto& it : {spoof, pending, live}) PublishItem(bus_, it);
    RecognitionWorker w(Config(), bus_, embedder_, gallery_);
    auto faces = Faces();
    ASSERT_TRUE(w.Poll(*faces).ok());
    const auto results = Results(bus_);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results.at(spoof.item_id).decision, "spoof");
    EXPECT_EQ(results.at(pending.item_id).decision, "unknown");
    EXPECT_EQ(results.at(live.item_id).decision, "known");
    EXPECT_EQ(w.stats().spoof, 1u);
}

TEST_F(ClusterWorker, EmbeddingFailuresNakTransientErrorsAndTerminateBadCrops) {
    pipeline::FaceItem small = Item(1);
    small.aligned = cv::Mat(64, 64, CV_8UC3, cv::Scalar(200, 0, 0));
    PublishItem(bus_, small);
    PublishItem(bus_, Item(2));
    RecognitionWorker w(Config(), bus_, embedder_, gallery_);
    auto faces = Faces();
    ASSERT_TRUE(w.Poll(*faces).ok());  // the batch fails; one by one: the small crop is poison
    EXPECT_EQ(w.stats().poison, 1u);
    EXPECT_EQ(Results(bus_).size(), 1u);
    PublishItem(bus_, Item(3));
    embedder_->fail_transient = 2;  // the batch call and the single retry
    ASSERT_TRUE(w.Poll(*faces).ok());
    EXPECT_EQ(w.stats().embed_failures, 1u);
    EXPECT_EQ(Results(bus_).size(), 1u);
    ASSERT_TRUE(w.Poll(*faces).ok());  // redelivered, embedded now
    EXPECT_EQ(Results(bus_).size(), 2u);
}

TEST_F(ClusterWorker, RidesOutABusOutageOnItsThreads) {
    bus_.SetDown(true);
    WorkerConfig c = Config();
    c.threads = 2;
    RecognitionWorker w(c, bus_, embedder_, gallery_);
    ASSERT_TRUE(w.Start().ok());
    for (int i = 0; i < 20; ++i) PublishItem(bus_, Item(i));  // publishes still work: fetches fail
    std::this_thread::sleep_for(30ms);
    bus_.SetDown(false);
    for (int k = 0; k < 500 && Results(bus_).size() < 20; ++k) std::this_thread::sleep_for(10ms);
    w.Stop();
    EXPECT_EQ(Results(bus_).size(), 20u);
    EXPECT_EQ(bus_.Settled(bus::Topic::kFaces, "hq", "workers"), 20);
}

TEST_F(ClusterWorker, SealedItemsGiveSealedResults) {
    auto key = gallery::ParseKey(std::string(64, 'a'));
    ASSERT_TRUE(key.ok());
    auto keys = std::make_shared<gallery::KeyRing>(*key);
    PublishItem(bus_, Item(1), keys.get());
    WorkerConfig c = Config();
    c.keys = keys;
    c.seal_results = true;
    RecognitionWorker w(c, bus_, embedder_, gallery_);
    auto faces = Faces();
    ASSERT_TRUE(w.Poll(*faces).ok());
    EXPECT_EQ(Results(bus_, keys.get()).size(), 1u);
    EXPECT_FALSE(bus::DecodeEnvelope(bus_.Messages(bus::Topic::kResults, "hq").at(0).data).ok());
}

TEST_F(ClusterWorker, BadConfigIsRefused) {
    WorkerConfig c = Config();
    c.region = "a.b";
    RecognitionWorker w(c, bus_, embedder_, gallery_);
    EXPECT_EQ(w.Start().code(), StatusCode::kInvalidArgument);
}

TEST(ClusterStubEmbedder, IsDeterministicAndUnitLength) {
    auto e = MakeStubEmbedder(64);
    std::vector<Embedding> out;
    cv::Mat crop(112, 112, CV_8UC3);
    cv::randu(crop, 0, 255);
    ASSERT_TRUE(e->Embed({crop, crop}, out).ok());
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].values, out[1].values);
    EXPECT_NEAR(Dot(out[0].values, out[0].values), 1.f, 1e-4);
    EXPECT_EQ(e->Embed({cv::Mat()}, out).code(), StatusCode::kInvalidArgument);
}

// --- ResultConsumer ---

void PublishResult(FakeBus& bus, const std::string& id, const std::string& decision = "unknown") {
    bus::RecognitionResult r{.item_id = id, .stream_id = "cam0", .decision = decision};
    auto env = bus::ResultEnvelope(r, "hq", "cam0", 1);
    ASSERT_TRUE(env.ok());
    ASSERT_TRUE(bus::PublishEnvelope(bus, *env).ok());
}

TEST(ClusterResultConsumer, HandsEachResultOverExactlyOnce) {
    FakeBus bus;
    bus.SetDedupe(false);  // repeats after the bus's dedupe window: the consumer must drop them
    for (int i = 0; i < 5; ++i) PublishResult(bus, "item" + std::to_string(i));
    for (int i = 0; i < 5; ++i) PublishResult(bus, "item" + std::to_string(i));
    ASSERT_TRUE(bus.Publish({.topic = bus::Topic::kResults, .region = "hq", .camera = "c"}, "junk", "{").ok());
    std::map<std::string, int> seen;
    ResultConsumer rc({.region = "hq", .fetch_wait = 1ms}, bus,
                      [&](const bus::RecognitionResult& r, const bus::Envelope&) { ++seen[r.item_id]; });
    auto c = bus.Subscribe({.topic = bus::Topic::kResults, .region = "hq", .group = "results"});
    ASSERT_TRUE(c.ok());
    bus.FailAcks(1);  // a lost ack: the first result comes again and is dropped
    ASSERT_TRUE(rc.Poll(**c).ok());
    bus.ExpireInflight();
    ASSERT_TRUE(rc.Poll(**c).ok());
    ASSERT_EQ(seen.size(), 5u);
    for (auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
    const ResultConsumerStats s = rc.stats();
    EXPECT_EQ(s.delivered, 5u);
    EXPECT_EQ(s.duplicates, 6u);
    EXPECT_EQ(s.invalid, 1u);
}

TEST(ClusterResultConsumer, RunsOnItsThreadThroughAnOutage) {
    FakeBus bus;
    bus.SetDown(true);
    std::atomic<int> n{0};
    ResultConsumer rc({.region = "hq", .fetch_wait = 1ms, .backoff_min = 1ms, .backoff_max = 5ms}, bus,
                      [&](const bus::RecognitionResult&, const bus::Envelope&) { n.fetch_add(1); });
    ASSERT_TRUE(rc.Start().ok());
    for (int i = 0; i < 10; ++i) PublishResult(bus, "i" + std::to_string(i));
    std::this_thread::sleep_for(20ms);
    bus.SetDown(false);
    for (int k = 0; k < 500 && n.load() < 10; ++k) std::this_thread::sleep_for(10ms);
    rc.Stop();
    EXPECT_EQ(n.load(), 10);
}

}  // namespace
}  // namespace fg::cluster
