// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/cluster_status.h"

#include <algorithm>
#include <set>

#include "fg/cluster/shard.h"

namespace fg::cluster {
namespace {

constexpr int kStatusMajor = 1;
constexpr std::size_t kMaxStatusBytes = 64 * 1024;
constexpr std::size_t kMaxText = 256;

Status Bad(const std::string& field) {
    return InvalidArgument("node status: field '" + field + "' missing or malformed");
}

Result<std::string> Text(const nlohmann::json& j, const char* f, bool may_be_empty) {
    auto it = j.find(f);
    if (it == j.end() || !it->is_string()) return Bad(f);
    const std::string& s = it->get_ref<const std::string&>();
    if ((!may_be_empty && s.empty()) || s.size() > kMaxText) return Bad(f);
    return s;
}

Result<std::int64_t> Int(const nlohmann::json& j, const char* f, std::int64_t lo, std::int64_t hi) {
    auto it = j.find(f);
    if (it == j.end() || !it->is_number_integer()) return Bad(f);
    const std::int64_t v = it->get<std::int64_t>();
    if (v < lo || v > hi) return Bad(f);
    return v;
}

}  // namespace

std::string EncodeNodeStatus(const NodeStatus& s) {
    nlohmann::json templates = nlohmann::json::object();
    for (const auto& [shard, n] : s.templates) templates[std::to_string(shard)] = n;
    return nlohmann::json{{"v", kStatusMajor},
                          {"type", "node_status"},
                          {"node", s.node},
                          {"role", s.role},
                          {"region", s.region},
                          {"gallery", s.gallery},
                          {"shards", s.shards},
                          {"held", s.held},
                          {"templates", templates},
                          {"applied_change", s.applied_change},
                          {"started_unix_ms", s.started_unix_ms},
                          {"counters", s.counters.is_object() ? s.counters : nlohmann::json::object()}}
        .dump();
}

Result<NodeStatus> DecodeNodeStatus(std::string_view bytes) {
    if (bytes.size() > kMaxStatusBytes) return InvalidArgument("node status: too large");
    nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return InvalidArgument("node status: not a JSON object");
    FG_ASSIGN_OR_RETURN(std::int64_t v, Int(j, "v", 1, INT32_MAX));
    if (v > kStatusMajor) return FailedPrecondition("node status: major version " + std::to_string(v) + " is newer");
    auto type = j.find("type");
    if (type == j.end() || *type != "node_status") return Bad("type");
    NodeStatus s;
    FG_ASSIGN_OR_RETURN(s.node, Text(j, "node", false));
    FG_ASSIGN_OR_RETURN(s.role, Text(j, "role", false));
    FG_ASSIGN_OR_RETURN(s.region, Text(j, "region", true));
    FG_ASSIGN_OR_RETURN(s.gallery, Text(j, "gallery", true));
    FG_ASSIGN_OR_RETURN(std::int64_t shards, Int(j, "shards", 0, kMaxShards));
    s.shards = int(shards);
    auto held = j.find("held");
    if (held == j.end() || !held->is_array() || held->size() > std::size_t(kMaxShards)) return Bad("held");
    for (const nlohmann::json& h : *held) {
        if (!h.is_number_integer() || h.get<std::int64_t>() < 0 || h.get<std::int64_t>() >= std::max(s.shards, 1))
            return Bad("held");
        s.held.push_back(h.get<int>());
    }
    auto templates = j.find("templates");
    if (templates == j.end() || !templates->is_object() || templates->size() > std::size_t(kMaxShards))
        return Bad("templates");
    for (auto it = templates->begin(); it != templates->end(); ++it) {
        Result<std::vector<int>> shard = ParseShardList(it.key(), std::max(s.shards, 1), "templates");
        if (!shard.ok() || shard->size() != 1 || !it->is_number_integer() || it->get<std::int64_t>() < 0)
            return Bad("templates");
        s.templates[shard->front()] = it->get<std::int64_t>();
    }
    FG_ASSIGN_OR_RETURN(s.applied_change, Int(j, "applied_change", 0, INT64_MAX));
    FG_ASSIGN_OR_RETURN(s.started_unix_ms, Int(j, "started_unix_ms", 0, INT64_MAX));
    auto counters = j.find("counters");
    if (counters == j.end() || !counters->is_object() || counters->size() > 256) return Bad("counters");
    for (auto it = counters->begin(); it != counters->end(); ++it)
        if (!it->is_number() || it.key().size() > kMaxText) return Bad("counters");
    s.counters = *counters;
    return s;
}

StatusResponder::StatusResponder(bus::Rpc* rpc, std::function<NodeStatus()> make)
    : rpc_(rpc), make_(std::move(make)) {}

Status StatusResponder::Start() {
    if (rpc_ == nullptr) return FailedPrecondition("cluster status needs request/reply on the bus (NATS)");
    FG_ASSIGN_OR_RETURN(service_, rpc_->Serve(kStatusSubject, "", [this](std::string_view) {
                            return EncodeNodeStatus(make_());
                        }));
    return Status::Ok();
}

Result<std::vector<NodeStatus>> GatherStatus(bus::Rpc& rpc, std::chrono::milliseconds window, int* skipped) {
    FG_ASSIGN_OR_RETURN(std::vector<std::string> answers, rpc.Gather(kStatusSubject, "{}", window));
    std::vector<NodeStatus> out;
    int bad = 0;
    for (const std::string& a : answers) {
        Result<NodeStatus> s = DecodeNodeStatus(a);
        if (s.ok()) out.push_back(std::move(*s));
        else ++bad;
    }
    if (skipped != nullptr) *skipped = bad;
    std::sort(out.begin(), out.end(), [](const NodeStatus& a, const NodeStatus& b) {
        return a.role != b.role ? a.role < b.role : a.node < b.node;
    });
    return out;
}

std::vector<ShardHealth> ShardHealthOf(const std::vector<NodeStatus>& nodes, const std::string& name, int shards,
                                       int replicas) {
    std::vector<ShardHealth> out(static_cast<std::size_t>(std::max(shards, 0)));
    for (int s = 0; s < shards; ++s) out[std::size_t(s)].shard = s;
    for (const NodeStatus& n : nodes) {
        if (n.gallery != name || n.shards != shards) continue;
        for (int s : n.held)
            if (s >= 0 && s < shards) out[std::size_t(s)].replicas.push_back(n.node);
    }
    for (ShardHealth& h : out) {
        const int r = int(h.replicas.size());
        h.state = r == 0 ? "down" : r < replicas ? "degraded" : "ok";
    }
    return out;
}

std::vector<std::string> WorkerRegions(const std::vector<NodeStatus>& nodes) {
    std::set<std::string> regions;
    for (const NodeStatus& n : nodes)
        if (n.role == "worker" && !n.region.empty()) regions.insert(n.region);
    return {regions.begin(), regions.end()};
}

nlohmann::json ClusterStatusJson(const std::vector<NodeStatus>& nodes, const std::vector<RegionBacklog>& backlogs,
                                 int replicas, int undecodable) {
    nlohmann::json out = {{"nodes", nlohmann::json::array()}, {"galleries", nlohmann::json::array()},
                          {"regions", nlohmann::json::array()}, {"undecodable_answers", undecodable}};
    std::set<std::pair<std::string, int>> galleries;
    for (const NodeStatus& n : nodes) {
        nlohmann::json templates = nlohmann::json::object();
        for (const auto& [s, t] : n.templates) templates[std::to_string(s)] = t;
        out["nodes"].push_back({{"node", n.node}, {"role", n.role}, {"region", n.region}, {"gallery", n.gallery},
                                {"shards", n.shards}, {"held", n.held}, {"templates", templates},
                                {"applied_change", n.applied_change}, {"started_unix_ms", n.started_unix_ms},
                                {"counters", n.counters}});
        if (n.shards > 1) galleries.insert({n.gallery, n.shards});
    }
    bool down = nodes.empty(), degraded = false;
    for (const auto& [name, shards] : galleries) {
        nlohmann::json g = {{"gallery", name}, {"shards", shards}, {"replicas_wanted", replicas},
                            {"shard_health", nlohmann::json::array()}};
        for (const ShardHealth& h : ShardHealthOf(nodes, name, shards, replicas)) {
            g["shard_health"].push_back({{"shard", h.shard}, {"state", h.state}, {"replicas", h.replicas}});
            down |= h.state == "down";
            degraded |= h.state == "degraded";
        }
        out["galleries"].push_back(std::move(g));
    }
    for (const RegionBacklog& b : backlogs) {
        nlohmann::json j = {{"region", b.region}};
        if (b.items) j["backlog"] = *b.items;
        else j["backlog_error"] = b.error;
        out["regions"].push_back(std::move(j));
    }
    out["state"] = down ? "down" : degraded ? "degraded" : "ok";
    return out;
}

}  // namespace fg::cluster
