// SPDX-License-Identifier: Apache-2.0
// fg_shard_bench: what sharding the gallery costs per query. One synthetic encrypted gallery of
// --size templates (one per subject), held (a) whole in process and (b) as S partial replicas,
// each served by a ShardServer on its own NATS connection (as S worker processes would) through
// a real nats-server on a free loopback port; the same probes are identified both ways, one
// after the other, and both latencies' percentiles are printed as one JSON object.
//   fg_shard_bench --size 100000 --shards 3 --queries 2000
// Everything shares this box's cores: nats-server, the replicas and the asking thread.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus_test_util.h"
#include "fg/bus/nats.h"
#include "fg/cluster/shard.h"
#include "fg/cluster/shard_server.h"
#include "fg/gallery/crypto.h"
#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

std::vector<float> Unit(std::mt19937& rng, int dim) {
    std::normal_distribution<float> g;
    std::vector<float> v(static_cast<std::size_t>(dim));
    for (float& x : v) x = g(rng);
    fg::L2Normalize(v);
    return v;
}

int Fail(const fg::Status& s) {
    std::cerr << "error: " << s.ToString() << "\n";
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    int size = 100000, dim = 512, shards = 3, queries = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (a == "--size") size = v;
        else if (a == "--dim") dim = v;
        else if (a == "--shards") shards = v;
        else if (a == "--queries") queries = v;
        else {
            std::cerr << "usage: fg_shard_bench [--size N] [--dim D] [--shards S] [--queries Q]\n";
            return 2;
        }
    }
    fg::testing::TmpDir tmp;
    auto keys = std::make_shared<fg::gallery::KeyRing>(*fg::gallery::ParseKey(std::string(64, 'a')));
    const std::string db = (tmp.path() / "g.db").string();
    const std::string model = "bench@1";
    std::mt19937 rng(7);
    std::vector<std::vector<float>> people;
    {
        auto full = fg::gallery::Gallery::Open({.location = db, .keys = keys});
        if (!full.ok()) return Fail(full.status());
        std::vector<fg::gallery::BulkFace> batch;
        for (int i = 0; i < size; ++i) {
            std::vector<float> v = Unit(rng, dim);
            if (i < 1000) people.push_back(v);
            batch.push_back({"s" + std::to_string(i), {.embedding = std::move(v), .quality = -1, .source = "b"}});
            if (batch.size() == 5000 || i + 1 == size) {
                auto r = (*full)->EnrollBulk(batch, {.model_id = model, .force = true});
                if (!r.ok()) return Fail(r.status());
                batch.clear();
            }
        }
    }
    auto full = fg::gallery::Gallery::Open({.location = db, .keys = keys});
    if (!full.ok()) return Fail(full.status());

    fg::bus::testing::NatsServer server(tmp.path());
    if (!server.Start()) return Fail(fg::Unavailable("nats-server did not start"));
    fg::bus::NatsConfig nc;
    nc.url = server.url();
    std::vector<std::unique_ptr<fg::bus::Bus>> buses;
    std::vector<std::unique_ptr<fg::cluster::ShardServer>> servers;
    double load_s = 0;
    for (int s = 0; s < shards; ++s) {
        auto b = fg::bus::CreateNatsBus(nc);
        if (!b.ok()) return Fail(b.status());
        const auto t0 = Clock::now();
        auto g = fg::gallery::Gallery::Open(
            {.location = db, .keys = keys, .holds = [s, shards](std::string_view id) { return fg::cluster::ShardOf(id, shards) == s; }});
        if (!g.ok()) return Fail(g.status());
        load_s += std::chrono::duration<double>(Clock::now() - t0).count();
        auto srv = std::make_unique<fg::cluster::ShardServer>(
            fg::cluster::ShardServerConfig{.gallery = "main", .shards = shards, .replica_id = "r" + std::to_string(s), .keys = keys},
            (*b)->rpc());
        if (auto st = srv->Hold(s, std::shared_ptr<const fg::gallery::Gallery>(std::move(*g))); !st.ok()) return Fail(st);
        if (auto st = srv->Start(); !st.ok()) return Fail(st);
        servers.push_back(std::move(srv));
        buses.push_back(std::move(*b));
    }
    auto asker = fg::bus::CreateNatsBus(nc);
    if (!asker.ok()) return Fail(asker.status());
    fg::cluster::ShardedIdentifier sharded({.gallery = "main", .shards = shards, .keys = keys}, (*asker)->rpc());

    std::vector<fg::Embedding> probes;
    std::normal_distribution<float> noise(0.f, 0.03f);
    for (int q = 0; q < queries; ++q) {
        std::vector<float> v = people[static_cast<std::size_t>(q) % people.size()];
        for (float& x : v) x += noise(rng);
        fg::L2Normalize(v);
        probes.push_back({model, std::move(v)});
    }
    std::vector<double> local_ms, sharded_ms;
    int mismatches = 0;
    for (int q = 0; q < std::min(queries, 50); ++q) (void)sharded.Search(probes[std::size_t(q)], 2);  // warm-up
    for (const fg::Embedding& p : probes) {
        const auto t0 = Clock::now();
        auto a = (*full)->Identify(p, 2);
        const auto t1 = Clock::now();
        auto b = sharded.Search(p, 2);
        const auto t2 = Clock::now();
        if (!a.ok() || !b.ok()) return Fail(!a.ok() ? a.status() : b.status());
        local_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        sharded_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
        mismatches += a->subject_id != b->subject_id || a->candidates.front().subject_id != b->candidates.front().subject_id;
    }
    nlohmann::json out = {{"size", size},
                          {"dim", dim},
                          {"shards", shards},
                          {"queries", queries},
                          {"replica_load_s_total", load_s},
                          {"single_gallery_ms", {{"p50", Percentile(local_ms, 0.5)}, {"p99", Percentile(local_ms, 0.99)}}},
                          {"sharded_over_nats_ms", {{"p50", Percentile(sharded_ms, 0.5)}, {"p99", Percentile(sharded_ms, 0.99)}}},
                          {"mismatches", mismatches},
                          {"retries", sharded.stats().retries}};
    std::cout << out.dump() << "\n";
    return mismatches == 0 ? 0 : 1;
}
