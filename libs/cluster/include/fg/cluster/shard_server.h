// SPDX-License-Identifier: Apache-2.0
// The two sides of the sharded gallery's query plane (docs/scale.md, "Sharded gallery"):
// ShardServer answers queries for the shards a worker holds; ShardedIdentifier sends a probe to
// one replica of every shard, retries another replica when one dies, and merges the top-k
// exactly (subjects are partitioned, so the global top-k is within the union of the shards').
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/bus/bus.h"
#include "fg/cluster/shard.h"
#include "fg/gallery/gallery.h"
#include "fg/pipeline/models.h"

namespace fg::cluster {

struct ShardServerConfig {
    std::string gallery = "main";  ///< names the gallery in the subjects (a routing token)
    int shards = 1;                ///< S
    std::string replica_id;        ///< this worker, named in replies
    std::shared_ptr<const gallery::KeyRing> keys;  ///< opens sealed probes
};

struct ShardServerStats {
    std::uint64_t queries = 0;  ///< answered
    std::uint64_t errors = 0;   ///< answered with an error (bad probe, other model, undecodable)
};

/// Thread-safety: Hold before Start, from one thread; Answer and stats from any thread (the
/// bus calls Answer on its delivery threads). The replicas must outlive the server.
class ShardServer {
  public:
    ShardServer(ShardServerConfig config, bus::Rpc* rpc);
    ~ShardServer();
    ShardServer(const ShardServer&) = delete;
    ShardServer& operator=(const ShardServer&) = delete;

    /// Serves `shard` from `replica` (a partial gallery holding exactly that shard's subjects).
    Status Hold(int shard, std::shared_ptr<const gallery::Gallery> replica);
    /// Subscribes each held shard's subject in the queue group "replicas". FailedPrecondition
    /// without a bus that has request/reply (Kafka).
    Status Start();
    /// Stops answering (the bus then routes the shard's queries to the other replicas).
    void Stop();
    /// One request's reply (never empty; errors are replies with error_code set).
    std::string Answer(int shard, std::string_view request);

    std::vector<int> held() const;
    /// The replica of `shard`, or null.
    std::shared_ptr<const gallery::Gallery> replica(int shard) const;
    ShardServerStats stats() const;
    const ShardServerConfig& config() const { return config_; }

  private:
    const ShardServerConfig config_;
    bus::Rpc* rpc_;
    std::map<int, std::shared_ptr<const gallery::Gallery>> replicas_;  // set before Start
    std::vector<std::unique_ptr<bus::RpcService>> services_;
    std::atomic<std::uint64_t> queries_{0}, errors_{0};
};

struct ShardedIdentifierConfig {
    std::string gallery = "main";
    int shards = 1;
    /// One attempt's wait for a replica's reply; a replica killed mid-query costs this much.
    std::chrono::milliseconds attempt_timeout{500};
    /// Attempts per shard (each may reach another replica) before the query fails Unavailable.
    int attempts = 4;
    /// Pause before retrying a shard nobody serves right now (a replica restarting).
    std::chrono::milliseconds no_responder_pause{100};
    std::shared_ptr<const gallery::KeyRing> keys;  ///< seals the probe (null: plain, tests only)
};

struct ShardedIdentifierStats {
    std::uint64_t queries = 0;       ///< Search calls
    std::uint64_t local = 0;         ///< shard answers from this node's own replica
    std::uint64_t remote = 0;        ///< shard answers over the bus
    std::uint64_t retries = 0;       ///< shard requests repeated (timeout, no responder)
    std::uint64_t failures = 0;      ///< Search calls that failed (a shard unreachable)
};

/// The gallery of the whole cluster as one pipeline::Identifier. A shard held by `local` is
/// searched in process; the others over the bus, in parallel. If any shard cannot be reached
/// within its attempts the query fails Unavailable (never a partial answer: a missing shard
/// would turn a known person into a false "unknown"); the worker then naks the item.
/// Thread-safety: Search / Identify / stats from any number of threads.
class ShardedIdentifier final : public pipeline::Identifier {
  public:
    /// `rpc` may be null only when `local` holds every shard.
    ShardedIdentifier(ShardedIdentifierConfig config, bus::Rpc* rpc, const ShardServer* local = nullptr);

    /// Merged top-k (0 = the gallery's top_k setting) and the open-set decision with the
    /// settings of the newest answering replica (largest applied change).
    Result<gallery::Identification> Search(const Embedding& probe, int top_k = 0) const;
    Result<pipeline::IdentityVerdict> Identify(const Embedding& probe) const override;

    ShardedIdentifierStats stats() const;

  private:
    Result<ShardReply> AskShard(int shard, const Embedding& probe, int k) const;

    const ShardedIdentifierConfig config_;
    bus::Rpc* rpc_;
    const ShardServer* local_;
    mutable std::atomic<std::uint64_t> queries_{0}, local_answers_{0}, remote_{0}, retries_{0}, failures_{0};
};

}  // namespace fg::cluster
