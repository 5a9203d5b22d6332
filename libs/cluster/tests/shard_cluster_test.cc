// SPDX-License-Identifier: Apache-2.0
// The sharded, replicated gallery as processes: a real nats-server, six `facegate worker`
// processes holding S = 3 shards with R = 2 replicas each of a real encrypted gallery (synthetic
// embeddings: no model needed), and this test as the querying node (ShardedIdentifier over the
// real NATS request/reply) and as the system of record's writer.
//  - scatter-gather returns exactly the single gallery's top-k and decisions;
//  - `facegate cluster status` sees every replica (exit 0), later a degraded shard (exit 3);
//  - an enrollment is answered by every replica within a bounded time, a deletion likewise;
//  - a replica killed with -9 during a query storm fails no query;
//  - the survivors stop cleanly on SIGTERM.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../gallery/tests/test_util.h"
#include "bus_test_util.h"
#include "child_process.h"
#include "fg/bus/nats.h"
#include "fg/cluster/change_stream.h"
#include "fg/cluster/shard.h"
#include "fg/cluster/shard_server.h"
#include "fg/testing/testing.h"

namespace fg::cluster {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using bus::testing::NatsServer;
using gallery::testing::kModel;
using gallery::testing::kTestKeyHex;
using gallery::testing::Probe;
using gallery::testing::Sample;
using testing::Child;
using testing::ReadAll;

constexpr int kShards = 3;
constexpr int kReplicas = 2;
constexpr int kPeople = 300;

class ShardClusterTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!bus::testing::HaveNatsServer()) {
            if (fg::InCi()) FAIL() << "nats-server not found (Debian nats-server)";
            GTEST_SKIP() << "nats-server not found (Debian nats-server)";
        }
        keys_ = gallery::testing::TestKeys();
        key_file_ = tmp_ / "gallery.key";
        {
            std::ofstream k(key_file_);
            k << kTestKeyHex << "\n";
        }
        ::chmod(key_file_.c_str(), 0600);
        db_ = (tmp_ / "people.db").string();
        auto g = gallery::Gallery::Open({.location = db_, .keys = keys_});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        full_ = std::move(*g);
        std::vector<gallery::BulkFace> faces;
        for (int i = 0; i < kPeople; ++i)
            for (int shot = 0; shot < 2; ++shot)
                faces.push_back({"p" + std::to_string(i), {.embedding = Sample(i, shot), .quality = -1, .source = "t"}});
        ASSERT_TRUE(full_->EnrollBulk(faces, {.model_id = kModel, .force = true}).ok());

        server_ = std::make_unique<NatsServer>(tmp_.path());
        ASSERT_TRUE(server_->Start()) << "nats-server did not start; log: " << (tmp_ / "nats.log");
        bus::NatsConfig c;
        c.url = server_->url();
        c.publish_timeout = 20s;
        auto b = bus::CreateNatsBus(c);
        ASSERT_TRUE(b.ok()) << b.status().ToString();
        bus_ = std::move(*b);
        ASSERT_NE(bus_->rpc(), nullptr);
    }

    std::string Name(int shard, int copy) const { return "w" + std::to_string(shard) + "." + std::to_string(copy); }

    std::unique_ptr<Child> StartReplica(int shard, int copy) {
        // --embedder stub: these processes only hold and serve shards here (no face items).
        return std::make_unique<Child>(
            std::vector<std::string>{"worker", "--bus", server_->url(), "--region", "hq", "--embedder", "stub",
                                     "--db", db_, "--key-file", key_file_.string(), "--shards",
                                     std::to_string(kShards), "--hold", std::to_string(shard), "--worker-id",
                                     Name(shard, copy), "--query-timeout-ms", "300",
                                     // Polling the change log only every minute: within the test, changes reach the
                                     // replicas through the change stream on the bus (this test's ChangeRelay).
                                     "--follow-ms", "60000"},
            tmp_ / Name(shard, copy));
    }

    /// `facegate cluster status --json`: exit code and the document.
    std::pair<int, nlohmann::json> Status() {
        Child status({"cluster", "status", "--bus", server_->url(), "--replicas", std::to_string(kReplicas),
                      "--window-ms", "500", "--json"},
                     tmp_ / "status");
        const std::optional<int> code = status.Wait(20s);
        if (!code) return {-1, {}};
        nlohmann::json j = nlohmann::json::parse(ReadAll(tmp_ / "status.out"), nullptr, false);
        return {*code, j};
    }

    /// Waits (bounded) until `cluster status` says `state` and every node reflects change `seq`;
    /// returns the time it took, or a negative value on timeout.
    double WaitForCluster(const std::string& state, std::int64_t seq, std::chrono::seconds limit) {
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start < limit) {
            auto [code, j] = Status();
            bool all = j.is_object() && j.value("state", "") == state;
            if (all)
                for (const nlohmann::json& n : j["nodes"]) all &= n["applied_change"].get<std::int64_t>() >= seq;
            if (all) return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::this_thread::sleep_for(100ms);
        }
        return -1;
    }

    fg::testing::TmpDir tmp_;
    std::shared_ptr<gallery::KeyRing> keys_;
    fs::path key_file_;
    std::string db_;
    std::unique_ptr<gallery::Gallery> full_;
    std::unique_ptr<NatsServer> server_;
    std::unique_ptr<bus::Bus> bus_;
};

TEST_F(ShardClusterTest, ReplicatedShardsAnswerExactlyThroughChangesAndAReplicaKill) {
    std::vector<std::unique_ptr<Child>> replicas;
    for (int copy = 0; copy < kReplicas; ++copy)
        for (int s = 0; s < kShards; ++s) replicas.push_back(StartReplica(s, copy));
    const std::int64_t loaded = *full_->last_change();
    ASSERT_GE(WaitForCluster("ok", loaded, 60s), 0) << "cluster not healthy; w0.0: " << ReadAll(tmp_ / "w0.0.err");
    {
        auto [code, j] = Status();
        EXPECT_EQ(code, 0) << j.dump();
        EXPECT_EQ(j["nodes"].size(), std::size_t(kShards * kReplicas));
        std::int64_t templates = 0;
        for (const nlohmann::json& n : j["nodes"])
            for (const auto& [s, t] : n["templates"].items()) templates += t.get<std::int64_t>();
        EXPECT_EQ(templates, kReplicas * kPeople * 2);  // every template held exactly R times
    }

    ShardedIdentifier id({.gallery = "main", .shards = kShards, .attempt_timeout = 300ms, .keys = keys_},
                         bus_->rpc());
    // This process is the API node: it writes the system of record and publishes its change log.
    ChangeRelay relay({}, *bus_, std::shared_ptr<const gallery::Gallery>(full_.get(), [](auto*) {}));
    ASSERT_TRUE(relay.Start().ok());
    // Exactly the single gallery's answer, over the real bus.
    for (int i = 0; i < 60; ++i) {
        const Embedding probe = Probe(Sample(i % 2 ? i : 5000 + i, 11));
        auto want = full_->Identify(probe, 3);
        auto got = id.Search(probe, 3);
        ASSERT_TRUE(want.ok());
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        ASSERT_EQ(got->candidates.size(), want->candidates.size());
        for (std::size_t r = 0; r < want->candidates.size(); ++r) {
            EXPECT_EQ(got->candidates[r].subject_id, want->candidates[r].subject_id);
            EXPECT_NEAR(got->candidates[r].score, want->candidates[r].score, 1e-5);
        }
        EXPECT_EQ(got->known, want->known);
        EXPECT_EQ(got->subject_id, want->subject_id);
    }

    // An enrollment in the system of record: every replica reflects it within the bound, and the
    // cluster names the person.
    gallery::NewFace face{.embedding = Sample(9001, 0), .quality = -1, .source = "t"};
    ASSERT_TRUE(full_->Enroll("newcomer", {.model_id = kModel}, {&face, 1}).ok());
    const double enrolled_s = WaitForCluster("ok", *full_->last_change(), 10s);
    ASSERT_GE(enrolled_s, 0);
    std::cout << "enrollment reflected by all " << kShards * kReplicas << " replicas in " << enrolled_s
              << " s (through the change stream; their poll is 60 s)\n";
    auto who = id.Search(Probe(Sample(9001, 1)), 2);
    ASSERT_TRUE(who.ok()) << who.status().ToString();
    EXPECT_EQ(who->subject_id, "newcomer");
    ASSERT_TRUE(full_->DeleteSubject("newcomer").ok());
    ASSERT_GE(WaitForCluster("ok", *full_->last_change(), 10s), 0);
    who = id.Search(Probe(Sample(9001, 1)), 2);
    ASSERT_TRUE(who.ok());
    EXPECT_FALSE(who->known);
    for (const gallery::Candidate& c : who->candidates) EXPECT_NE(c.subject_id, "newcomer");

    // A query storm; shard 0's first replica is killed with -9 in the middle: no query fails.
    std::atomic<int> failures{0}, wrong{0}, done{0};
    std::vector<std::thread> storm;
    for (int t = 0; t < 4; ++t) {
        storm.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                const int person = (t * 200 + i) % kPeople;
                auto r = id.Search(Probe(Sample(person, 13)), 2);
                if (!r.ok()) failures.fetch_add(1);
                else if (r->subject_id != "p" + std::to_string(person)) wrong.fetch_add(1);
                done.fetch_add(1);
            }
        });
    }
    while (done.load() < 200) std::this_thread::sleep_for(5ms);
    replicas[0]->Signal(SIGKILL);
    for (auto& t : storm) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(wrong.load(), 0);
    std::cout << "storm: " << done.load() << " queries, " << id.stats().retries << " retried shard requests\n";
    {
        auto [code, j] = Status();
        EXPECT_EQ(code, 3) << j.dump();  // degraded: shard 0 has one replica left
        EXPECT_EQ(j["galleries"][0]["shard_health"][0]["state"], "degraded") << j.dump();
    }
    for (std::size_t i = 1; i < replicas.size(); ++i) replicas[i]->Signal(SIGTERM);
    for (std::size_t i = 1; i < replicas.size(); ++i)
        EXPECT_EQ(replicas[i]->Wait(20s), std::optional<int>(0)) << ReadAll(tmp_ / (Name(int(i) % kShards, int(i) / kShards) + ".err"));
}

}  // namespace
}  // namespace fg::cluster
