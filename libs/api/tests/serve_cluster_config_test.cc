// SPDX-License-Identifier: Apache-2.0
// The `cluster` section of the serve config (serve reading the workers' results from the bus):
// defaults, the environment overrides, and a clear error for each bad value.
#include <map>

#include <gtest/gtest.h>

#include "fg/api/serve_config.h"

namespace fg::api {
namespace {

using nlohmann::json;

const GetEnv kNoEnv = [](const char*) -> const char* { return nullptr; };

std::string Error(const json& j, const GetEnv& env = kNoEnv) {
    auto c = ParseServeConfig(j, "/cfg", env);
    return c.ok() ? "" : c.status().message();
}

TEST(ServeClusterConfigTest, AbsentMeansNoBus) {
    auto c = ParseServeConfig(json::object(), "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_FALSE(c->cluster);
    EXPECT_TRUE(ServeConfigSummary(*c)["cluster"].is_null());
    c = ParseServeConfig(json{{"cluster", nullptr}}, "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_FALSE(c->cluster);
}

TEST(ServeClusterConfigTest, ReadsTheSection) {
    auto c = ParseServeConfig(
        json::parse(R"({"cluster": {"bus": "nats://10.0.0.1:4222,nats://10.0.0.2:4222", "regions": ["hq", "lab-2"]}})"),
        "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE(c->cluster);
    EXPECT_EQ(c->cluster->bus, "nats://10.0.0.1:4222,nats://10.0.0.2:4222");
    EXPECT_EQ(c->cluster->regions, (std::vector<std::string>{"hq", "lab-2"}));
    EXPECT_EQ(c->cluster->group, "serve");  // the default: every serve reads every result
    c = ParseServeConfig(json::parse(R"({"cluster": {"bus": "kafka://k1:9092,k2:9092", "regions": ["eu"], "group": "serve_b"}})"),
                         "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->cluster->group, "serve_b");
    EXPECT_EQ(ServeConfigSummary(*c)["cluster"]["regions"], json::array({"eu"}));
}

TEST(ServeClusterConfigTest, TheSummaryHidesCredentials) {
    auto c = ParseServeConfig(json::parse(R"({"cluster": {"bus": "nats://user:s3cret@h1:4222,nats://u:p@h2:4222", "regions": ["hq"]}})"),
                              "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    const std::string bus = ServeConfigSummary(*c)["cluster"]["bus"];
    EXPECT_EQ(bus, "nats://***@h1:4222,nats://***@h2:4222");
}

TEST(ServeClusterConfigTest, EnvironmentOverrides) {
    std::map<std::string, std::string> vars = {{"FG_SERVE_CLUSTER_BUS", "nats://127.0.0.1:4333"},
                                               {"FG_SERVE_CLUSTER_REGIONS", "hq,lab"},
                                               {"FG_SERVE_CLUSTER_GROUP", "serve2"}};
    const GetEnv env = [&vars](const char* n) -> const char* {
        const auto it = vars.find(n);
        return it == vars.end() ? nullptr : it->second.c_str();
    };
    auto c = ParseServeConfig(json::parse(R"({"cluster": {"bus": "nats://other:1", "regions": ["x"]}})"), "/cfg", env);
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE(c->cluster);
    EXPECT_EQ(c->cluster->bus, "nats://127.0.0.1:4333");
    EXPECT_EQ(c->cluster->regions, (std::vector<std::string>{"hq", "lab"}));
    EXPECT_EQ(c->cluster->group, "serve2");
    // The bus alone from the environment turns the section on, and it still needs regions.
    vars = {{"FG_SERVE_CLUSTER_BUS", "nats://127.0.0.1:4333"}};
    EXPECT_EQ(Error(json::object(), env), "cluster.regions must name at least one region");
}

TEST(ServeClusterConfigTest, ClearErrors) {
    const auto cluster = [](json section) { return json{{"cluster", std::move(section)}}; };
    EXPECT_EQ(Error(cluster("nats://h:1")), "cluster must be an object");
    EXPECT_EQ(Error(cluster({{"regions", {"hq"}}})), "cluster.bus is required (nats://host:port or kafka://host:port)");
    EXPECT_EQ(Error(cluster({{"bus", "http://h:4222"}, {"regions", {"hq"}}})),
              "cluster.bus must start with nats:// or kafka://");
    EXPECT_EQ(Error(cluster({{"bus", "h:4222"}, {"regions", {"hq"}}})), "cluster.bus must start with nats:// or kafka://");
    EXPECT_EQ(Error(cluster({{"bus", "nats://"}, {"regions", {"hq"}}})), "cluster.bus: no address after nats://");
    EXPECT_EQ(Error(cluster({{"bus", "kafka://a:1,,b:2"}, {"regions", {"hq"}}})), "cluster.bus: '' is not host:port");
    EXPECT_EQ(Error(cluster({{"bus", 4222}, {"regions", {"hq"}}})), "cluster.bus must be a string");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}})), "cluster.regions must name at least one region");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", json::array()}})),
              "cluster.regions must name at least one region");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", "hq"}})), "cluster.regions must be a list of strings");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", {"hq.eu"}}})),
              "cluster.regions: 'hq.eu' is not a region (1..64 of A-Z a-z 0-9 _ -)");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", {""}}})),
              "cluster.regions: '' is not a region (1..64 of A-Z a-z 0-9 _ -)");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", {std::string(65, 'r')}}})),
              "cluster.regions: '" + std::string(65, 'r') + "' is not a region (1..64 of A-Z a-z 0-9 _ -)");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", {"hq", "hq"}}})), "cluster.regions: 'hq' is listed twice");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", {"hq"}}, {"group", "a b"}})),
              "cluster.group: 'a b' is not a group name (1..64 of A-Z a-z 0-9 _ -)");
    EXPECT_EQ(Error(cluster({{"bus", "nats://h:1"}, {"regions", {"hq"}}, {"shards", 3}})), "unknown option cluster.shards");
}

TEST(ServeClusterConfigTest, StatusInterval) {
    const auto cluster = [](json extra) {
        json c = {{"bus", "nats://h:1"}, {"regions", {"hq"}}};
        c.update(extra);
        return json{{"cluster", std::move(c)}};
    };
    auto c = ParseServeConfig(cluster(json::object()), "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->cluster->status_interval_s, 15);  // the defaults
    EXPECT_EQ(c->cluster->workers_group, "workers");
    EXPECT_EQ(c->cluster->replicas, 2);
    c = ParseServeConfig(cluster({{"status_interval_s", 0}, {"workers_group", "w2"}, {"replicas", 3}}), "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->cluster->status_interval_s, 0);  // off
    EXPECT_EQ(c->cluster->workers_group, "w2");
    EXPECT_EQ(c->cluster->replicas, 3);
    EXPECT_EQ(ServeConfigSummary(*c)["cluster"]["status_interval_s"], 0);
    EXPECT_EQ(Error(cluster({{"status_interval_s", -1}})), "cluster.status_interval_s must be in [0, 86400], got -1");
    EXPECT_EQ(Error(cluster({{"status_interval_s", 1.5}})), "cluster.status_interval_s must be an integer");
    EXPECT_EQ(Error(cluster({{"workers_group", "a.b"}})),
              "cluster.workers_group: 'a.b' is not a group name (1..64 of A-Z a-z 0-9 _ -)");
    EXPECT_EQ(Error(cluster({{"replicas", 0}})), "cluster.replicas must be in [1, 64], got 0");
    const std::map<std::string, std::string> vars = {{"FG_SERVE_CLUSTER_STATUS_INTERVAL_S", "5"},
                                                     {"FG_SERVE_CLUSTER_WORKERS_GROUP", "wq"},
                                                     {"FG_SERVE_CLUSTER_REPLICAS", "1"}};
    const GetEnv env = [&vars](const char* n) -> const char* {
        const auto it = vars.find(n);
        return it == vars.end() ? nullptr : it->second.c_str();
    };
    c = ParseServeConfig(cluster(json::object()), "/cfg", env);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->cluster->status_interval_s, 5);
    EXPECT_EQ(c->cluster->workers_group, "wq");
    EXPECT_EQ(c->cluster->replicas, 1);
}

}  // namespace
}  // namespace fg::api
