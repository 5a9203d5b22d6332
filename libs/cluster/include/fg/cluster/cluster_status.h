// SPDX-License-Identifier: Apache-2.0
// `facegate cluster status`: every node (worker, edge) answers a broadcast on the bus's
// request/reply with what it is and holds; the command gathers the answers for a moment and
// judges each shard's replica health. Nothing is stored: a node that does not answer is down.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/bus/bus.h"

namespace fg::cluster {

/// One node's answer (schema: libs/cluster/schema/shard.md, "node_status").
struct NodeStatus {
    std::string node;    ///< worker / edge id
    std::string role;    ///< "worker" or "edge"
    std::string region;
    std::string gallery;  ///< sharded gallery name ("" when the node holds the whole gallery)
    int shards = 0;       ///< S of that gallery (0: not sharded)
    std::vector<int> held;                     ///< shards held
    std::map<int, std::int64_t> templates;     ///< per held shard
    std::int64_t applied_change = 0;           ///< gallery change log position (min over held)
    std::int64_t started_unix_ms = 0;
    nlohmann::json counters = nlohmann::json::object();  ///< the role's counters (numbers only)
};

std::string EncodeNodeStatus(const NodeStatus& s);
/// InvalidArgument naming the field for anything malformed; FailedPrecondition for a newer major.
Result<NodeStatus> DecodeNodeStatus(std::string_view bytes);

/// Answers status broadcasts with `make()`. Thread-safety: Start/Stop from one thread; `make`
/// runs on the bus's delivery thread.
class StatusResponder {
  public:
    StatusResponder(bus::Rpc* rpc, std::function<NodeStatus()> make);
    /// FailedPrecondition without request/reply (Kafka: `cluster status` needs NATS).
    Status Start();
    void Stop() { service_.reset(); }

  private:
    bus::Rpc* rpc_;
    std::function<NodeStatus()> make_;
    std::unique_ptr<bus::RpcService> service_;
};

/// Every node's status that answers within `window` (undecodable answers are skipped and counted
/// in `skipped` when given).
Result<std::vector<NodeStatus>> GatherStatus(bus::Rpc& rpc, std::chrono::milliseconds window, int* skipped = nullptr);

struct ShardHealth {
    int shard = 0;
    std::vector<std::string> replicas;  ///< nodes holding it
    std::string state;                  ///< "ok" (>= R replicas), "degraded" (1..R-1), "down" (0)
};

/// Per shard of gallery `name` with S = `shards`: who holds it and whether it has `replicas`.
std::vector<ShardHealth> ShardHealthOf(const std::vector<NodeStatus>& nodes, const std::string& name, int shards,
                                       int replicas);

/// One region's face-item backlog as Bus::Backlog answered it: `items` when it did, else the error.
struct RegionBacklog {
    std::string region;
    std::optional<std::uint64_t> items;
    std::string error;  ///< the status message when `items` is unset
};

/// The regions of the workers among `nodes` (sorted, no repeats): whose backlog to ask for.
std::vector<std::string> WorkerRegions(const std::vector<NodeStatus>& nodes);

/// The cluster status document of `facegate cluster status --json` and GET /v1/cluster: every
/// node, each sharded gallery seen (S > 1) with its shards' health against `replicas`, each
/// backlog, the undecodable answers and the overall "state" ("ok", "degraded": a shard under R,
/// "down": a shard without replica or no node answered). Counters are the nodes' own numbers.
nlohmann::json ClusterStatusJson(const std::vector<NodeStatus>& nodes, const std::vector<RegionBacklog>& backlogs,
                                 int replicas, int undecodable = 0);

}  // namespace fg::cluster
