// SPDX-License-Identifier: Apache-2.0
// facegate cluster status: who is in the cluster (workers, edges), which shards of the sharded
// gallery each worker holds, each shard's replica health, and the face-item backlog per region
// (docs/scale.md, "Operations"). Nodes answer a broadcast on the bus (NATS request/reply).
#include <iostream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "fg/cluster/bus_url.h"
#include "fg/cluster/cluster_status.h"

namespace fg::cli {
namespace {

struct StatusArgs {
    std::string bus;
    int window_ms = 1000;
    int replicas = 2;
    std::string group = "workers";
    bool json = false;
};

constexpr int kExitDegraded = 3;

int RunStatus(const StatusArgs& a) {
    if (a.bus.empty()) {
        std::cerr << "error: facegate cluster status needs --bus\n";
        return kExitUsage;
    }
    Result<std::unique_ptr<bus::Bus>> b =
        cluster::ConnectBus(a.bus, {.client_name = "facegate-cluster-status", .publish_timeout = std::chrono::seconds(3)});
    if (!b.ok()) return Fail(b.status());
    if ((*b)->rpc() == nullptr) {
        std::cerr << "error: cluster status needs request/reply on the bus (NATS); Kafka has none\n";
        return kExitUsage;
    }
    int skipped = 0;
    Result<std::vector<cluster::NodeStatus>> nodes =
        cluster::GatherStatus(*(*b)->rpc(), std::chrono::milliseconds(a.window_ms), &skipped);
    if (!nodes.ok()) return Fail(nodes.status());

    std::vector<cluster::RegionBacklog> backlogs;
    for (const std::string& r : cluster::WorkerRegions(*nodes)) {
        Result<std::uint64_t> backlog = (*b)->Backlog(r, a.group);
        backlogs.push_back({r, backlog.ok() ? std::optional(*backlog) : std::nullopt,
                            backlog.ok() ? "" : backlog.status().message()});
    }
    const nlohmann::json out = cluster::ClusterStatusJson(*nodes, backlogs, a.replicas, skipped);
    const bool down = out["state"] == "down", degraded = out["state"] == "degraded";

    if (a.json) {
        std::cout << out.dump(2) << "\n";
    } else {
        std::cout << "cluster: " << out["state"].get<std::string>() << " (" << nodes->size() << " nodes answered in "
                  << a.window_ms << " ms)\n";
        for (const nlohmann::json& n : out["nodes"]) {
            std::cout << "  " << n["role"].get<std::string>() << " " << n["node"].get<std::string>() << "  region "
                      << n["region"].get<std::string>();
            if (n["shards"].get<int>() > 1)
                std::cout << "  gallery " << n["gallery"].get<std::string>() << " shards " << n["held"].dump() << "/"
                          << n["shards"] << "  change " << n["applied_change"];
            std::cout << "\n";
        }
        for (const nlohmann::json& g : out["galleries"]) {
            std::cout << "gallery " << g["gallery"].get<std::string>() << " (" << g["shards"] << " shards, "
                      << a.replicas << " replicas wanted)\n";
            for (const nlohmann::json& h : g["shard_health"])
                std::cout << "  shard " << h["shard"] << ": " << h["state"].get<std::string>() << " "
                          << h["replicas"].dump() << "\n";
        }
        for (const nlohmann::json& r : out["regions"])
            std::cout << "region " << r["region"].get<std::string>() << ": backlog "
                      << (r.contains("backlog") ? r["backlog"].dump() : r["backlog_error"].get<std::string>()) << "\n";
    }
    return down ? int(kExitError) : degraded ? kExitDegraded : int(kExitOk);
}

}  // namespace

void RegisterClusterCommands(CLI::App& app, Action& action) {
    CLI::App* group = SubcommandOf(app, "cluster", "The scale-out cluster (docs/scale.md)");
    auto a = std::make_shared<StatusArgs>();
    auto* cmd = group->add_subcommand(
        "status", "Nodes, shard replica health and backlog; exit 0 ok, 3 degraded, 1 a shard down or no node");
    cmd->add_option("--bus", a->bus, "nats://HOST:PORT");
    cmd->add_option("--window-ms", a->window_ms, "How long to wait for answers")->check(CLI::Range(50, 60000));
    cmd->add_option("--replicas", a->replicas, "Replicas each shard should have (R)")->check(CLI::Range(1, 64));
    cmd->add_option("--group", a->group, "Workers' group, for the backlog");
    cmd->add_flag("--json", a->json, "JSON output");
    cmd->callback([&action, a] { action = [a] { return RunStatus(*a); }; });
}

}  // namespace fg::cli
