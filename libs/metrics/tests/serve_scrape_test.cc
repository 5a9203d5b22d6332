// SPDX-License-Identifier: Apache-2.0
// A real Prometheus scrapes the real `facegate serve` (one looping clip as a live stream, a
// one-person gallery, an audit log) with an API key in its scrape config, then answers a query
// for every metric family and every PromQL expression of the Grafana dashboard (but the Cluster
// row's: this serve has no cluster); `promtool check
// metrics` lints a real scrape. Skips locally (fails under CI=true) without the programs, the
// models or the shared clip. Bounded waits throughout; serve and Prometheus are stopped by RAII.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "fg/base/paths.h"
#include "fg/testing/process.h"
#include "fg/testing/testing.h"
#include "prometheus_util.h"

namespace fg::metrics {
namespace {

using namespace testing_util;  // NOLINT: the shared helpers
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::filesystem::path kDeploy = FG_DEPLOY_DIR;

using fg::testing::Process;
using fg::testing::ReadFile;

TEST(ServeScrape, PrometheusScrapesTheRealServeWithAKey) {
    const auto prometheus = FindProgram("prometheus");
    const auto promtool = FindProgram("promtool");
    FG_REQUIRE_PATH(prometheus);
    FG_REQUIRE_PATH(promtool);
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    const auto video = SharedDir() / "data/videos/intel_head-pose-face-detection-male.mp4";
    const auto photo = SharedDir() / "data/antispoof/real_T1.jpg";
    FG_REQUIRE_PATH(video);
    FG_REQUIRE_PATH(photo);

    testing::TmpDir dir;
    const auto key_file = dir / "gallery.key";
    std::ofstream(key_file) << std::string(64, 'a') << "\n";
    std::filesystem::permissions(key_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    // A one-person gallery, so unknown faces of the clip still get a top-1 score.
    const std::string enroll = std::string(FG_FACEGATE_BIN) + " gallery enroll --db '" + (dir / "g.db").string() +
                               "' --key-file '" + key_file.string() + "' --subject s1 --force --image '" +
                               photo.string() + "' > /dev/null 2>&1";
    ASSERT_EQ(std::system(enroll.c_str()), 0) << enroll;
    std::ofstream(dir / "serve.json") << nlohmann::json{
        {"listen", {{"address", "127.0.0.1"}, {"port", 0}}},
        {"auth", {{"keys_file", "keys.db"}}},
        {"audit", {{"file", "audit.db"}}},
        {"gallery", {{"db", "g.db"}, {"key_file", "gallery.key"}}},
        {"streams", {{{"id", "cam1"}, {"uri", video.string()}, {"loop", true}, {"pace", true}}}}};
    Process serve({FG_FACEGATE_BIN, "serve", "--config", (dir / "serve.json").string(), "--create-admin-key", "--json"},
                  dir / "serve.out", dir / "serve.err");
    const auto [port, key] = fg::testing::WaitForServe(dir / "serve.out", 60s, [&] { return serve.running(); });
    ASSERT_GT(port, 0) << "serve did not start:\n" << ReadFile(dir / "serve.err");
    ASSERT_FALSE(key.empty());

    httplib::Client api("127.0.0.1", port);
    api.set_read_timeout(30, 0);
    const httplib::Headers auth = {{"Authorization", "Bearer " + key}};
    auto res = api.Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);  // not public
    // An audited identify (facegate_audit_records_total) through the compute pool (its utilisation).
    res = api.Post("/v1/identify", auth, ReadFile(photo), "image/jpeg");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;

    // Prometheus with the key in its scrape config, every second.
    const int prom_port = testing::FreeLoopbackPort();
    ASSERT_GT(prom_port, 0);
    std::filesystem::create_directories(dir / "prom");
    std::ofstream(dir / "prom/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "rule_files:\n  - " << (kDeploy / "prometheus/alerts.yml").string() << "\n"
        << "scrape_configs:\n  - job_name: facegate\n    authorization:\n      credentials: " << key << "\n"
        << "    static_configs:\n      - targets: ['127.0.0.1:" << port << "']\n";
    PrometheusProcess process(prometheus, dir / "prom", prom_port);
    ASSERT_TRUE(process.started());
    httplib::Client client("127.0.0.1", prom_port);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);

    // Bounded wait: 10 good scrapes, and the stream has produced decisions and stage timings.
    bool ready = false;
    for (const auto deadline = Clock::now() + 120s; Clock::now() < deadline && process.running() && !ready;) {
        ready = HasData(Query(client, "count_over_time(up{job=\"facegate\"}[1m]) >= 10 and up{job=\"facegate\"} == 1")) &&
                HasData(Query(client, "facegate_recognitions_total > 0")) &&
                HasData(Query(client, "facegate_recognition_top1_score_count > 0"));
        if (!ready) std::this_thread::sleep_for(1s);
    }
    ASSERT_TRUE(ready) << "no scrapes with recognitions within 120 s; Prometheus log:\n"
                       << ReadFile(dir / "prom/prometheus.log") << "\nserve log:\n" << ReadFile(dir / "serve.err");

    // promtool lints a real scrape.
    res = api.Get("/metrics", auth);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    std::ofstream(dir / "scrape.txt") << res->body;
    const Output lint = RunTool({promtool.string(), "check", "metrics"}, (dir / "scrape.txt").string());
    EXPECT_EQ(lint.exit_code, 0) << lint.text;
    EXPECT_EQ(lint.text, "") << "lint findings:\n" << lint.text;

    // Every family, queried from Prometheus.
    const auto scraped = Families(res->body);
    for (const auto& [name, type] : kFamilies) {
        EXPECT_EQ(scraped.count(name) ? scraped.at(name) : "missing", type) << name;
        const std::string q = type == "histogram" ? name + "_bucket" : name;
        EXPECT_TRUE(HasData(Query(client, q))) << q;
    }
    // Every dashboard expression returns data.
    const auto dashboard = nlohmann::json::parse(ReadFile(kDeploy / "grafana/facegate-dashboard.json"), nullptr, false);
    ASSERT_FALSE(dashboard.is_discarded());
    std::vector<std::pair<std::string, std::string>> exprs;
    CollectExprs(dashboard["panels"], exprs);
    ASSERT_GE(exprs.size(), 8u);
    for (const auto& [title, expr] : exprs) {
        // The Cluster row needs serve's `cluster` section and nodes on a bus: prometheus_test.cc
        // (synthetic) and libs/api/tests/serve_cluster_e2e_test.cc (real) cover it.
        if (expr.find("facegate_cluster_") != std::string::npos) continue;
        const auto answer = Query(client, expr);
        EXPECT_TRUE(HasData(answer)) << title << ": " << expr << " -> " << answer.dump();
    }
    EXPECT_EQ(serve.Stop(), 0) << ReadFile(dir / "serve.err");
}

}  // namespace
}  // namespace fg::metrics
