// SPDX-License-Identifier: Apache-2.0
// The metrics, alert rules and dashboard against the real tools (Debian `prometheus`):
// `promtool check metrics` on a scrape with every family populated, `promtool check rules` and
// `promtool test rules` on deploy/prometheus, and a real Prometheus started on loopback that
// scrapes an endpoint serving Serialize() every second, then answers a query per metric family
// and every PromQL expression of deploy/grafana/facegate-dashboard.json, and evaluates the alert
// rules without error. Skips locally (fails under CI=true) when the programs are missing.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "fg/metrics/service_metrics.h"
#include "fg/testing/testing.h"
#include "prometheus_util.h"

namespace fg::metrics {
namespace {

using namespace testing_util;  // NOLINT: the shared helpers

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::filesystem::path kDeploy = FG_DEPLOY_DIR;

// Synthetic traffic through every feeding path, advancing like a live service: two streams,
// frames with stage times, decisions with scores, HTTP requests, audit records, bus results.
class Traffic {
  public:
    explicit Traffic(std::shared_ptr<ServiceMetrics> m) : m_(std::move(m)), observer_(m_) {
        stats_.streams.resize(2);
        stats_.streams[0].id = "door";
        stats_.streams[1].id = "lobby";
        for (auto& s : stats_.streams) {
            s.source.id = s.id;
            s.source.state = stream::SourceState::kLive;
        }
        m_->SetInferenceThreads("compute", 2);
    }

    void Step() {
        ++step_;
        {
            std::lock_guard lock(mu_);
            for (auto& s : stats_.streams) {
                s.source.frames_decoded += 15;
                s.source.frames_delivered += 13;
                s.source.frames_dropped += 1;
                s.frames += 13;
                s.gated += 6;
                s.source.reconnects += step_ % 10 == 0 ? 1 : 0;
                s.source.fps = 15;
            }
        }
        const pipeline::StageTimes full{.queue_ms = 3, .gate_ms = 1, .detect_ms = 38,
                                        .track_ms = 1, .select_ms = 6, .embed_ms = 21,
                                        .search_ms = 2, .total_ms = 72, .detected = true};
        const pipeline::StageTimes gated{.queue_ms = 2, .gate_ms = 1, .total_ms = 3,
                                         .gated = true};
        for (int i = 0; i < 3; ++i) {
            observer_.OnFrame({.times = &full});
            observer_.OnFrame({.times = &gated});
        }
        const float wobble = static_cast<float>(step_ % 5) * 0.02f;
        observer_.OnEvent(events::MakeEvent(
            "door", events::Recognized{.subject_id = "s1", .score = 0.72f + wobble}));
        observer_.OnEvent(events::MakeEvent(
            "lobby", events::Recognized{.subject_id = "s2", .score = 0.81f + wobble}));
        observer_.OnEvent(events::MakeEvent("door", events::UnknownFace{.best_score = 0.3f + wobble}));
        observer_.OnEvent(events::MakeEvent("lobby", events::SpoofDetected{.liveness_score = 0.1f}));
        m_->ObserveHttpRequest("/v1/identify", 200, 0.003 + wobble / 100);
        m_->ObserveHttpRequest("/v1/subjects/{id}", 404, 0.001);
        m_->RecordAudit("identify");
        m_->SetGallerySize(4, 12 + step_ % 3);
        m_->SetComputeQueueDepth(step_ % 4);
        m_->AddInferenceBusySeconds("compute", 0.05);
        // serve beside the cluster: results read from the bus.
        m_->SetClusterConnected("hq", true);
        m_->RecordClusterResult("hq", "known");
        m_->RecordClusterResult("hq", step_ % 2 == 0 ? "unknown" : "spoof");
        m_->AddClusterDuplicates("hq", step_ % 3 == 0 ? 1 : 0);
        // ... and its status poller: two workers holding gallery "main" (S = 2) and one edge.
        ClusterStatusSample cs;
        const double n = step_;
        cs.nodes = {{.node = "w1", .role = "worker", .region = "hq", .applied_change = step_,
                     .redelivered = n, .republished = n / 2},
                    {.node = "w2", .role = "worker", .region = "hq", .applied_change = step_,
                     .redelivered = 0, .republished = 0},
                    {.node = "e1", .role = "edge", .region = "hq", .buffer_depth = double(step_ % 7)}};
        cs.galleries = {{.name = "main", .replicas = {2, 1}}};
        cs.backlogs = {{"hq", double(10 * step_)}};
        m_->SetClusterStatus(cs);
        m_->SetClusterStatusAge(0.5);
    }

    pipeline::PipelineStats Stats() const {
        std::lock_guard lock(mu_);
        return stats_;
    }

  private:
    std::shared_ptr<ServiceMetrics> m_;
    MetricsObserver observer_;
    mutable std::mutex mu_;
    pipeline::PipelineStats stats_;
    int step_ = 0;
};

TEST(Promtool, CheckMetricsAcceptsAPopulatedScrape) {
    const auto promtool = FindProgram("promtool");
    FG_REQUIRE_PATH(promtool);
    auto m = std::make_shared<ServiceMetrics>();
    Traffic traffic(m);
    traffic.Step();
    traffic.Step();
    m->Collect(traffic.Stats());
    testing::TmpDir dir;
    const auto file = dir / "scrape.txt";
    std::ofstream(file) << m->Serialize();
    EXPECT_EQ(Families(m->Serialize()), AllFamilies());
    const Output out = RunTool({promtool.string(), "check", "metrics"}, file.string());
    EXPECT_EQ(out.exit_code, 0) << out.text;
    EXPECT_EQ(out.text, "") << "lint findings:\n" << out.text;
}

TEST(Promtool, CheckRules) {
    const auto promtool = FindProgram("promtool");
    FG_REQUIRE_PATH(promtool);
    const Output out =
        RunTool({promtool.string(), "check", "rules", (kDeploy / "prometheus/alerts.yml").string()});
    EXPECT_EQ(out.exit_code, 0) << out.text;
    EXPECT_NE(out.text.find("SUCCESS"), std::string::npos) << out.text;
}

TEST(Promtool, RuleUnitTestsFireAndClearEveryAlert) {
    const auto promtool = FindProgram("promtool");
    FG_REQUIRE_PATH(promtool);
    const Output out = RunTool(
        {promtool.string(), "test", "rules", (kDeploy / "prometheus/alerts_test.yml").string()});
    EXPECT_EQ(out.exit_code, 0) << out.text;
    EXPECT_NE(out.text.find("SUCCESS"), std::string::npos) << out.text;
}

TEST(Prometheus, ScrapesEveryFamilyAndAnswersTheDashboardAndRules) {
    const auto prometheus = FindProgram("prometheus");
    FG_REQUIRE_PATH(prometheus);

    auto metrics = std::make_shared<ServiceMetrics>();
    auto traffic = std::make_shared<Traffic>(metrics);
    traffic->Step();

    // The endpoint Prometheus scrapes: Collect + Serialize per scrape, as `serve` does.
    httplib::Server endpoint;
    endpoint.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
        metrics->Collect(traffic->Stats());
        res.set_content(metrics->Serialize(), "text/plain; version=0.0.4");
    });
    const int metrics_port = endpoint.bind_to_any_port("127.0.0.1");
    ASSERT_GT(metrics_port, 0);
    std::thread server([&] { endpoint.listen_after_bind(); });
    std::atomic<bool> feeding{true};
    std::thread feeder([&] {
        while (feeding) {
            traffic->Step();
            std::this_thread::sleep_for(100ms);
        }
    });
    struct Cleanup {
        std::function<void()> f;
        ~Cleanup() { f(); }
    } cleanup{[&] {
        feeding = false;
        feeder.join();
        endpoint.stop();
        server.join();
    }};

    testing::TmpDir dir;
    const int prom_port = testing::FreeLoopbackPort();
    ASSERT_GT(prom_port, 0);
    std::ofstream(dir / "prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "rule_files:\n  - " << (kDeploy / "prometheus/alerts.yml").string() << "\n"
        << "scrape_configs:\n  - job_name: facegate\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << metrics_port << "']\n";
    PrometheusProcess process(prometheus, dir.path(), prom_port);
    ASSERT_TRUE(process.started());

    httplib::Client client("127.0.0.1", prom_port);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    // Bounded wait: ready, then at least 5 successful scrapes (rates need two, windows more).
    const auto deadline = Clock::now() + 60s;
    bool scraped = false;
    while (Clock::now() < deadline && process.running()) {
        const auto a = Query(client, "count_over_time(up{job=\"facegate\"}[1m]) >= 5 and "
                                     "up{job=\"facegate\"} == 1");
        if (HasData(a)) {
            scraped = true;
            break;
        }
        std::this_thread::sleep_for(500ms);
    }
    std::string log;
    {
        std::ifstream in(dir / "prometheus.log");
        log.assign(std::istreambuf_iterator<char>(in), {});
    }
    ASSERT_TRUE(scraped) << "Prometheus did not scrape 5 times within 60 s; its log:\n" << log;

    // One instant query per family of the scrape (histograms through their buckets).
    const auto families = Families(metrics->Serialize());
    ASSERT_EQ(families, AllFamilies());
    for (const auto& [name, type] : families) {
        const std::string q = type == "histogram" ? name + "_bucket" : name;
        const auto answer = Query(client, q);
        EXPECT_TRUE(HasData(answer)) << q << " -> " << answer.dump();
    }

    // Every PromQL expression of the dashboard returns data.
    std::ifstream dash_in(kDeploy / "grafana/facegate-dashboard.json");
    const auto dashboard = nlohmann::json::parse(dash_in, nullptr, false);
    ASSERT_FALSE(dashboard.is_discarded()) << "the dashboard is not valid JSON";
    std::vector<std::pair<std::string, std::string>> exprs;
    CollectExprs(dashboard["panels"], exprs);
    ASSERT_GE(exprs.size(), 8u);
    for (const auto& [title, expr] : exprs) {
        EXPECT_EQ(expr.find('$'), std::string::npos) << title << ": unreplaced variable in " << expr;
        const auto answer = Query(client, expr);
        EXPECT_TRUE(HasData(answer)) << title << ": " << expr << " -> " << answer.dump();
    }

    // The alert rules load and evaluate without error against these series (bounded wait for
    // a first evaluation of each group).
    bool evaluated = false;
    nlohmann::json rules;
    while (Clock::now() < deadline + 15s && !evaluated) {
        auto res = client.Get("/api/v1/rules");
        if (res) rules = nlohmann::json::parse(res->body, nullptr, false);
        evaluated = !rules.is_discarded() && rules.is_object() && rules.contains("data");
        if (evaluated) {
            for (const auto& g : rules["data"]["groups"]) {
                for (const auto& r : g["rules"]) {
                    evaluated = evaluated && r.value("health", "") != "unknown";
                }
            }
        }
        if (!evaluated) std::this_thread::sleep_for(500ms);
    }
    ASSERT_TRUE(evaluated) << rules.dump();
    int count = 0;
    for (const auto& g : rules["data"]["groups"]) {
        for (const auto& r : g["rules"]) {
            ++count;
            EXPECT_EQ(r.value("health", ""), "ok") << r.dump();
        }
    }
    EXPECT_GE(count, 5);
}

}  // namespace
}  // namespace fg::metrics
