// SPDX-License-Identifier: Apache-2.0
// The sharded gallery without a bus: the partitioning, the query wire format, partial gallery
// replicas following the system of record, and scatter-gather over S = 3 shards with R = 2
// replicas each (an in-memory request/reply with queue groups) returning exactly the single
// gallery's top-k and decision, also while a replica dies mid-storm.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../../gallery/tests/test_util.h"
#include "fake_bus.h"
#include "fg/cluster/change_stream.h"
#include "fg/cluster/cluster_status.h"
#include "fg/cluster/shard.h"
#include "fg/cluster/shard_server.h"
#include "fg/testing/testing.h"

namespace fg::cluster {
namespace {

using gallery::testing::kModel;
using gallery::testing::Probe;
using gallery::testing::Sample;
using gallery::testing::TestKeys;

/// Request/reply in memory with NATS's queue-group semantics: a request goes to one live
/// member (round robin); a "crashed" member stays subscribed but never answers (its request
/// times out, as when a process dies before the server notices); Unavailable with "no server
/// answers" when nobody serves the subject.
class FakeRpc final : public bus::Rpc {
  public:
    struct Member {
        std::string subject;
        Handler handler;
        std::atomic<bool> crashed{false};
    };
    class Service final : public bus::RpcService {
      public:
        Service(FakeRpc* rpc, std::shared_ptr<Member> m) : rpc_(rpc), m_(std::move(m)) {}
        ~Service() override { rpc_->Remove(m_); }
        Member& member() { return *m_; }

      private:
        FakeRpc* rpc_;
        std::shared_ptr<Member> m_;
    };

    Result<std::string> Request(const std::string& subject, std::string_view data,
                                std::chrono::milliseconds) override {
        std::shared_ptr<Member> m;
        {
            std::lock_guard lock(mu_);
            std::vector<std::shared_ptr<Member>>& list = subjects_[subject];
            if (list.empty()) return Unavailable("rpc " + subject + ": no server answers it");
            m = list[next_++ % list.size()];
        }
        if (m->crashed) return Unavailable("rpc " + subject + ": timeout");
        return m->handler(data);
    }
    Result<std::vector<std::string>> Gather(const std::string& subject, std::string_view data,
                                            std::chrono::milliseconds) override {
        std::vector<std::shared_ptr<Member>> list;
        {
            std::lock_guard lock(mu_);
            list = subjects_[subject];
        }
        std::vector<std::string> out;
        for (auto& m : list)
            if (!m->crashed) out.push_back(m->handler(data));
        return out;
    }
    Result<std::unique_ptr<bus::RpcService>> Serve(const std::string& subject, const std::string&,
                                                   Handler handler) override {
        auto m = std::make_shared<Member>();
        m->subject = subject;
        m->handler = std::move(handler);
        std::lock_guard lock(mu_);
        subjects_[subject].push_back(m);
        return std::unique_ptr<bus::RpcService>(std::make_unique<Service>(this, m));
    }
    void Remove(const std::shared_ptr<Member>& m) {
        std::lock_guard lock(mu_);
        std::erase(subjects_[m->subject], m);
    }
    /// Marks every member serving `subject` whose handler belongs to the k-th subscription.
    void CrashMember(const std::string& subject, std::size_t k) {
        std::lock_guard lock(mu_);
        subjects_[subject].at(k)->crashed = true;
    }

  private:
    std::mutex mu_;
    std::map<std::string, std::vector<std::shared_ptr<Member>>> subjects_;
    std::size_t next_ = 0;
};

TEST(Shard, PartitionIsStableAndEven) {
    // Golden values: the hash decides which replica holds a subject, so it must never change.
    EXPECT_EQ(ShardOf("alice", 3), ShardOf("alice", 3));
    EXPECT_EQ(ShardOf("", 1), 0);
    EXPECT_EQ(ShardOf("anything", 1), 0);
    std::map<int, int> counts;
    for (int i = 0; i < 3000; ++i) ++counts[ShardOf("subject-" + std::to_string(i), 3)];
    ASSERT_EQ(counts.size(), 3u);
    for (const auto& [s, n] : counts) EXPECT_NEAR(n, 1000, 150) << "shard " << s;
    // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
    EXPECT_EQ(ShardOf("a", 1000), int(0xaf63dc4c8601ec8cull % 1000));
}

TEST(Shard, ParsesShardLists) {
    EXPECT_EQ(*ParseShardList("all", 3, "--hold"), (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(*ParseShardList("2,0", 3, "--hold"), (std::vector<int>{0, 2}));
    EXPECT_EQ(*ParseShardList("1-3,0", 4, "--hold"), (std::vector<int>{0, 1, 2, 3}));
    for (const char* bad : {"", "3", "-1", "a", "1,", "2-1", "0-9", "1,,2"}) {
        Result<std::vector<int>> r = ParseShardList(bad, 3, "--hold");
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_NE(r.status().message().find("--hold"), std::string::npos);
        }
    }
    EXPECT_FALSE(ParseShardList("0", 0, "--hold").ok());
}

TEST(ShardProtocol, QueryRoundTripsSealedAndPlain) {
    auto keys = TestKeys();
    ShardQuery q{.shards = 3, .shard = 1, .k = 6, .probe = Probe(Sample(7, 1))};
    for (const gallery::KeyRing* k : {static_cast<const gallery::KeyRing*>(keys.get()),
                                      static_cast<const gallery::KeyRing*>(nullptr)}) {
        Result<std::string> bytes = EncodeShardQuery(q, k);
        ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
        Result<ShardQuery> back = DecodeShardQuery(*bytes, k);
        ASSERT_TRUE(back.ok()) << back.status().ToString();
        EXPECT_EQ(back->probe.values, q.probe.values);
        EXPECT_EQ(back->probe.model_id, kModel);
        EXPECT_EQ(back->shard, 1);
        EXPECT_EQ(back->k, 6);
    }
    // Sealed: the probe is not readable on the wire, not without the key, and bound to its shard.
    std::string sealed = *EncodeShardQuery(q, keys.get());
    EXPECT_EQ(sealed.find("plain"), std::string::npos);
    EXPECT_EQ(DecodeShardQuery(sealed, nullptr).status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(DecodeShardQuery(sealed, TestKeys("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").get())
                  .status()
                  .code(),
              StatusCode::kFailedPrecondition);  // another key id
    std::string moved = sealed;
    moved.replace(moved.find("\"shard\":1"), 9, "\"shard\":2");
    EXPECT_EQ(DecodeShardQuery(moved, keys.get()).status().code(), StatusCode::kDataLoss);
    // A newer major is refused, never misread; malformed input is InvalidArgument.
    std::string newer = sealed;
    newer.replace(newer.find("\"v\":1"), 5, "\"v\":2");
    EXPECT_EQ(DecodeShardQuery(newer, keys.get()).status().code(), StatusCode::kFailedPrecondition);
    for (const char* bad : {"", "[]", "{\"v\":1}", "{\"v\":1,\"type\":\"shard_reply\"}", "not json"})
        EXPECT_EQ(DecodeShardQuery(bad, keys.get()).status().code(), StatusCode::kInvalidArgument) << bad;
}

TEST(ShardProtocol, ReplyRoundTripsAndRejectsDisorder) {
    ShardReply r{.shard = 2, .replica = "w1", .applied_change = 42, .templates = 7, .threshold = 0.4f,
                 .margin = 0.05f, .top_k = 5};
    r.candidates = {{"a", "", 0.9f, 3}, {"b", "", 0.5f, 4}};
    Result<ShardReply> back = DecodeShardReply(EncodeShardReply(r));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->candidates.size(), 2u);
    EXPECT_EQ(back->candidates[1].subject_id, "b");
    EXPECT_EQ(back->applied_change, 42);
    EXPECT_FLOAT_EQ(back->threshold, 0.4f);
    std::swap(r.candidates[0], r.candidates[1]);
    EXPECT_EQ(DecodeShardReply(EncodeShardReply(r)).status().code(), StatusCode::kInvalidArgument);
}

TEST(ClusterStatus, RoundTripsAndJudgesShards) {
    NodeStatus s{.node = "w1", .role = "worker", .region = "hq", .gallery = "main", .shards = 3, .held = {0, 2}};
    s.templates = {{0, 10}, {2, 12}};
    s.counters = {{"results", 5}};
    Result<NodeStatus> back = DecodeNodeStatus(EncodeNodeStatus(s));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->held, (std::vector<int>{0, 2}));
    EXPECT_EQ(back->templates.at(2), 12);
    NodeStatus t = s;
    t.node = "w2";
    t.held = {0};
    std::vector<ShardHealth> h = ShardHealthOf({s, t}, "main", 3, 2);
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0].state, "ok");
    EXPECT_EQ(h[1].state, "down");
    EXPECT_EQ(h[2].state, "degraded");
    EXPECT_FALSE(DecodeNodeStatus("{\"v\":1,\"type\":\"node_status\"}").ok());
    EXPECT_EQ(DecodeNodeStatus("{\"v\":9,\"type\":\"node_status\"}").status().code(), StatusCode::kFailedPrecondition);
}

/// A SQLite gallery of `n` synthetic people (2 faces each) and its key.
struct Fixture {
    fg::testing::TmpDir dir;
    std::shared_ptr<gallery::KeyRing> keys = TestKeys();
    std::string db = (dir.path() / "g.db").string();
    std::unique_ptr<gallery::Gallery> full;

    explicit Fixture(int n) {
        auto g = gallery::Gallery::Open({.location = db, .keys = keys});
        EXPECT_TRUE(g.ok());
        full = std::move(*g);
        std::vector<gallery::BulkFace> faces;
        for (int i = 0; i < n; ++i)
            for (int shot = 0; shot < 2; ++shot)
                faces.push_back({"p" + std::to_string(i), {.embedding = Sample(i, shot), .quality = -1, .source = "t"}});
        auto r = full->EnrollBulk(faces, {.model_id = kModel, .force = true});
        EXPECT_TRUE(r.ok()) << r.status().ToString();
    }
    std::unique_ptr<gallery::Gallery> Replica(int shard, int shards) {
        auto g = gallery::Gallery::Open({.location = db,
                                         .keys = keys,
                                         .holds = [shard, shards](std::string_view id) { return ShardOf(id, shards) == shard; }});
        EXPECT_TRUE(g.ok()) << g.status().ToString();
        return std::move(*g);
    }
};

TEST(PartialGallery, HoldsItsShardFollowsTheLogAndRefusesWrites) {
    Fixture f(60);
    std::vector<std::unique_ptr<gallery::Gallery>> shards;
    std::int64_t total = 0;
    for (int s = 0; s < 3; ++s) {
        shards.push_back(f.Replica(s, 3));
        total += shards.back()->templates_in_memory();
        EXPECT_TRUE(shards.back()->partial());
        EXPECT_TRUE(shards.back()->CheckConsistency().ok());
    }
    EXPECT_EQ(total, 120);
    const int home = ShardOf("newcomer", 3);
    // Writes go to the system of record, never through a replica.
    gallery::NewFace face{.embedding = Sample(900, 0), .quality = -1, .source = "t"};
    EXPECT_EQ(shards[0]->Enroll("x", {.model_id = kModel}, {&face, 1}).status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(shards[0]->DeleteSubject("p1").code(), StatusCode::kFailedPrecondition);
    // An enrollment reaches its shard's replica only; a delete leaves it; a merge across
    // shards moves the faces between replicas.
    ASSERT_TRUE(f.full->Enroll("newcomer", {.model_id = kModel}, {&face, 1}).ok());
    for (auto& g : shards) ASSERT_TRUE(g->Refresh().ok());
    for (int s = 0; s < 3; ++s) {
        auto n = shards[std::size_t(s)]->Nearest(Probe(Sample(900, 1)), 1);
        ASSERT_TRUE(n.ok());
        EXPECT_EQ(!n->empty() && n->front().subject_id == "newcomer", s == home) << "shard " << s;
    }
    std::string other;
    for (int i = 0; i < 60 && other.empty(); ++i)
        if (ShardOf("p" + std::to_string(i), 3) != home) other = "p" + std::to_string(i);
    ASSERT_TRUE(f.full->MergeSubjects(other, "newcomer").ok());
    for (auto& g : shards) ASSERT_TRUE(g->Refresh().ok());
    for (int s = 0; s < 3; ++s) EXPECT_TRUE(shards[std::size_t(s)]->CheckConsistency().ok()) << s;
    EXPECT_EQ(shards[std::size_t(home)]->ListFaces("newcomer")->size(), 3u);
    ASSERT_TRUE(f.full->DeleteSubject("newcomer").ok());
    for (auto& g : shards) ASSERT_TRUE(g->Refresh().ok());
    total = 0;
    for (auto& g : shards) {
        total += g->templates_in_memory();
        EXPECT_TRUE(g->CheckConsistency().ok());
    }
    EXPECT_EQ(total, 118);  // 120 + newcomer's 1, all 3 of newcomer's (merged) erased
}

/// S = 3 shards, R = 2 replicas each, as six workers would hold them.
struct Cluster {
    FakeRpc rpc;
    std::vector<std::unique_ptr<ShardServer>> servers;
    std::vector<std::shared_ptr<gallery::Gallery>> replicas;

    Cluster(Fixture& f, int shards, int copies) {
        for (int r = 0; r < copies; ++r) {
            for (int s = 0; s < shards; ++s) {
                auto server = std::make_unique<ShardServer>(
                    ShardServerConfig{.gallery = "main", .shards = shards,
                                      .replica_id = "w" + std::to_string(s) + "." + std::to_string(r), .keys = f.keys},
                    &rpc);
                std::shared_ptr<gallery::Gallery> g = f.Replica(s, shards);
                replicas.push_back(g);
                EXPECT_TRUE(server->Hold(s, g).ok());
                EXPECT_TRUE(server->Start().ok());
                servers.push_back(std::move(server));
            }
        }
    }
};

void ExpectSameAnswer(const gallery::Identification& want, const gallery::Identification& got, int probe) {
    ASSERT_EQ(got.candidates.size(), want.candidates.size()) << "probe " << probe;
    for (std::size_t i = 0; i < want.candidates.size(); ++i) {
        EXPECT_EQ(got.candidates[i].subject_id, want.candidates[i].subject_id) << "probe " << probe << " rank " << i;
        EXPECT_NEAR(got.candidates[i].score, want.candidates[i].score, 1e-5) << "probe " << probe;
    }
    EXPECT_EQ(got.known, want.known) << "probe " << probe;
    EXPECT_EQ(got.subject_id, want.subject_id) << "probe " << probe;
    EXPECT_EQ(got.reason, want.reason) << "probe " << probe;
}

TEST(ShardedIdentifier, ScatterGatherEqualsTheSingleGallery) {
    Fixture f(300);
    Cluster c(f, 3, 2);
    ShardedIdentifier remote({.gallery = "main", .shards = 3, .keys = f.keys}, &c.rpc);
    // A worker that holds shard 1 itself answers it in process and asks the bus for the rest.
    ShardedIdentifier mixed({.gallery = "main", .shards = 3, .keys = f.keys}, &c.rpc, c.servers[1].get());
    int known = 0;
    for (int i = 0; i < 200; ++i) {
        // Enrolled people (fresh shots) and strangers (ids past the gallery).
        const int who = i % 2 == 0 ? i : 1000 + i;
        const Embedding probe = Probe(Sample(who, 7));
        for (int k : {1, 2, 5}) {
            auto want = f.full->Identify(probe, k);
            ASSERT_TRUE(want.ok());
            auto got = remote.Search(probe, k);
            ASSERT_TRUE(got.ok()) << got.status().ToString();
            ExpectSameAnswer(*want, *got, i);
            auto got2 = mixed.Search(probe, k);
            ASSERT_TRUE(got2.ok()) << got2.status().ToString();
            ExpectSameAnswer(*want, *got2, i);
            known += want->known;
        }
    }
    EXPECT_GT(known, 100);  // the comparison covered matches, not only strangers
    EXPECT_GT(mixed.stats().local, 0u);
    EXPECT_EQ(remote.stats().local, 0u);
}

TEST(ShardedIdentifier, ADeadReplicaFailsNoQueryAndAMissingShardFailsLoudly) {
    Fixture f(90);
    Cluster c(f, 3, 2);
    ShardedIdentifier id({.gallery = "main", .shards = 3, .attempts = 4, .keys = f.keys}, &c.rpc);
    std::atomic<int> failures{0}, done{0};
    std::vector<std::thread> storm;
    for (int t = 0; t < 4; ++t) {
        storm.emplace_back([&, t] {
            for (int i = 0; i < 150; ++i) {
                auto r = id.Search(Probe(Sample((t * 150 + i) % 90, 9)), 2);
                if (!r.ok() || !r->known) failures.fetch_add(1);
                done.fetch_add(1);
            }
        });
    }
    while (done.load() < 100) std::this_thread::yield();
    c.rpc.CrashMember(ShardSubject("main", 3, 0), 0);  // shard 0's first replica dies mid-storm
    for (auto& t : storm) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(id.stats().retries, 0u);
    // Both replicas of shard 2 gone: the query fails Unavailable, never a partial "unknown".
    c.servers[2].reset();
    c.servers[5].reset();
    auto r = id.Search(Probe(Sample(1, 9)), 2);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(r.status().message().find("shard 2"), std::string::npos);
}

TEST(ShardServer, AnswersErrorsAsReplies) {
    Fixture f(10);
    FakeRpc rpc;
    ShardServer server({.gallery = "main", .shards = 2, .replica_id = "w", .keys = f.keys}, &rpc);
    ASSERT_TRUE(server.Hold(0, f.Replica(0, 2)).ok());
    EXPECT_FALSE(server.Hold(2, f.Replica(0, 2)).ok());
    auto decode = [](const std::string& s) { return *DecodeShardReply(s); };
    EXPECT_EQ(decode(server.Answer(0, "garbage")).error_code, "invalid_argument");
    EXPECT_EQ(decode(server.Answer(1, "garbage")).error_code, "failed_precondition");
    Embedding other = Probe(Sample(1, 1), "another-model@1");
    EXPECT_EQ(decode(server.Answer(0, *EncodeShardQuery({.shards = 2, .shard = 0, .k = 2, .probe = other}, f.keys.get())))
                  .error_code,
              "failed_precondition");
    ShardReply ok = decode(server.Answer(0, *EncodeShardQuery({.shards = 2, .shard = 0, .k = 2, .probe = Probe(Sample(1, 1))},
                                                              f.keys.get())));
    EXPECT_TRUE(ok.error_code.empty()) << ok.error_message;
    EXPECT_EQ(server.stats().errors, 3u);
    ShardServer kafka({.gallery = "main", .shards = 2, .replica_id = "w"}, nullptr);
    EXPECT_EQ(kafka.Start().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fg::cluster

namespace fg::cluster {
namespace {

TEST(ChangeStream, TheRelayPublishesTheLogAndTheListenerWakesTheReplicas) {
    Fixture f(30);
    testing::FakeBus bus;
    // Replicas that do not poll: only the change stream moves them here.
    std::vector<std::shared_ptr<gallery::Gallery>> replicas = {f.Replica(0, 2), f.Replica(1, 2)};
    ChangeRelay relay({.region = "hq", .backfill = 0}, bus, std::shared_ptr<const gallery::Gallery>(f.full.get(), [](auto*) {}));
    ASSERT_EQ(*relay.PublishPending(), 0);  // starts at the log's end (backfill 0)
    gallery::NewFace face{.embedding = Sample(500, 0), .quality = -1, .source = "t"};
    ASSERT_TRUE(f.full->Enroll("late", {.model_id = kModel}, {&face, 1}).ok());
    ASSERT_TRUE(f.full->UpdateSettings([&] {
                           auto s = f.full->settings();
                           s.threshold = 0.41f;
                           return s;
                       }())
                    .ok());
    ASSERT_EQ(*relay.PublishPending(), 2);
    ASSERT_EQ(*relay.PublishPending(), 0);
    auto msgs = bus.Messages(bus::Topic::kGalleryChanges, "hq");
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].id, "gallery/" + std::to_string(*f.full->last_change() - 1));
    EXPECT_EQ(msgs[1].data.find("0.41"), std::string::npos);  // ids and kinds only

    ChangeListener listener({.group = "w1", .region = "hq", .fetch_wait = std::chrono::milliseconds(10)}, bus, replicas);
    auto consumer = bus.Subscribe({.topic = bus::Topic::kGalleryChanges, .region = "hq", .group = "w1"});
    ASSERT_TRUE(consumer.ok());
    ASSERT_EQ(*listener.Poll(**consumer), 2);
    for (const auto& r : replicas) {
        EXPECT_EQ(r->applied_change(), *f.full->last_change());
        EXPECT_FLOAT_EQ(r->settings().threshold, 0.41f);
    }
    const int home = ShardOf("late", 2);
    EXPECT_EQ(replicas[std::size_t(home)]->Nearest(Probe(Sample(500, 1)), 1)->front().subject_id, "late");
    EXPECT_EQ(listener.stats().refreshes, 2u);
    // A repeat (a relay restart's backfill) finds the replicas current: nothing to do.
    ChangeRelay again({.region = "hq", .backfill = 5}, bus, std::shared_ptr<const gallery::Gallery>(f.full.get(), [](auto*) {}));
    bus.SetDedupe(false);
    ASSERT_GE(*again.PublishPending(), 2);
    ASSERT_GE(*listener.Poll(**consumer), 2);
    EXPECT_EQ(listener.stats().refreshes, 2u);
    EXPECT_GE(listener.stats().stale, 2u);
    // Junk on the stream is terminated and counted, never blocks it.
    ASSERT_TRUE(bus.Publish({.topic = bus::Topic::kGalleryChanges, .region = "hq"}, "junk", "not an envelope").ok());
    ASSERT_EQ(*listener.Poll(**consumer), 1);
    EXPECT_EQ(listener.stats().errors, 1u);
}

}  // namespace
}  // namespace fg::cluster
