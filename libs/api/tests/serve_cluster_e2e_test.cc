// SPDX-License-Identifier: Apache-2.0
// `facegate serve` beside the cluster, as processes: serve starts before its nats-server (its own
// API is up and ready all the same), then reads the workers' results of two regions from the
// bus and shows each exactly once on GET /v1/events (SSE), repeats included (one the server
// dedupes, one only the consumer can), a sealed one opened with the gallery key; each result is
// also a sighting in the history, the metrics count them, and losing the bus again leaves serve
// ready. Its status poller gathers in-process fake nodes' statuses into the facegate_cluster_*
// gauges and GET /v1/cluster, and forgets a node that stops answering. Skips (fails under
// CI=true) without nats-server or the models. Bounded waits throughout.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bus_test_util.h"
#include "fg/base/paths.h"
#include "fg/bus/messages.h"
#include "fg/bus/nats.h"
#include "fg/cluster/cluster_status.h"
#include "fg/events/event.h"
#include "fg/gallery/gallery.h"
#include "fg/testing/process.h"
#include "fg/testing/testing.h"

namespace fg::api {
namespace {

using namespace std::chrono_literals;
using bus::testing::HaveNatsServer;
using bus::testing::NatsServer;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

using fg::testing::Process;
using fg::testing::ReadFile;

/// GET /v1/events on a thread of its own: every event's type and JSON, in arrival order.
class SseReader {
  public:
    SseReader(int port, std::string key) {
        thread_ = std::thread([this, port, key = std::move(key)] {
            httplib::Client c("127.0.0.1", port);
            c.set_read_timeout(10, 0);  // heartbeats come every 200 ms
            std::string buffer;
            c.Get("/v1/events", {{"Authorization", "Bearer " + key}}, [&](const char* data, std::size_t n) {
                buffer.append(data, n);
                for (std::size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
                    Parse(buffer.substr(0, end));
                    buffer.erase(0, end + 2);
                }
                opened_ = true;
                return !stop_.load();
            });
        });
    }
    ~SseReader() {
        stop_ = true;
        thread_.join();
    }
    bool opened() const { return opened_.load(); }
    std::vector<std::pair<std::string, json>> events() const {
        std::lock_guard lock(mu_);
        return events_;
    }

  private:
    void Parse(const std::string& block) {
        std::istringstream in(block);
        std::string type, data;
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("event: ", 0) == 0) type = line.substr(7);
            if (line.rfind("data: ", 0) == 0) data = line.substr(6);
        }
        if (type.empty()) return;  // "retry:" or a heartbeat comment
        std::lock_guard lock(mu_);
        events_.emplace_back(type, json::parse(data, nullptr, false));
    }

    std::atomic<bool> stop_{false}, opened_{false};
    mutable std::mutex mu_;
    std::vector<std::pair<std::string, json>> events_;
    std::thread thread_;
};

bus::RecognitionResult Result(std::string item, std::string decision, std::string subject = "") {
    bus::RecognitionResult r;
    r.item_id = std::move(item);
    r.stream_id = "door";
    r.track_id = 7;
    r.frame_index = 42;
    r.capture_unix_ms = 1'764'900'000'000;
    r.decision = std::move(decision);
    r.subject_id = std::move(subject);
    r.score = r.subject_id.empty() ? 0.25f : 0.81f;
    r.worker_id = "w1";
    return r;
}

TEST(ServeCluster, ShowsEveryBusResultOnceOnTheEventStream) {
    if (!HaveNatsServer()) {
        if (InCi()) FAIL() << "nats-server is not installed";
        GTEST_SKIP() << "nats-server is not installed";
    }
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    testing::TmpDir dir;
    NatsServer nats(dir.path());  // its port is chosen now; it starts later
    const std::string hex_key(64, 'a');
    std::ofstream(dir / "gallery.key") << hex_key << "\n";
    std::filesystem::permissions(dir / "gallery.key",
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::ofstream(dir / "serve.json") << json{
        {"listen", {{"address", "127.0.0.1"}, {"port", 0}}},
        {"auth", {{"keys_file", "keys.db"}}},
        {"api", {{"heartbeat_ms", 200}}},
        {"gallery", {{"db", "g.db"}, {"key_file", "gallery.key"}}},
        {"cluster", {{"bus", nats.url()}, {"regions", {"hq", "lab"}}, {"group", "serve"}}}};
    Process serve({FG_FACEGATE_BIN, "serve", "--config", (dir / "serve.json").string(), "--create",
                   "--create-admin-key", "--json"},
                  dir / "serve.out", dir / "serve.err");
    const auto [port, key] = fg::testing::WaitForServe(dir / "serve.out", 60s, [&] { return serve.running(); });
    ASSERT_GT(port, 0) << "serve did not start:\n" << ReadFile(dir / "serve.err");
    httplib::Client api("127.0.0.1", port);
    api.set_read_timeout(10, 0);
    const httplib::Headers auth = {{"Authorization", "Bearer " + key}};
    const auto ready = [&] {
        auto res = api.Get("/readyz");
        return res ? std::make_pair(res->status, json::parse(res->body, nullptr, false)) : std::make_pair(0, json());
    };

    // No bus yet: serve answers and is ready; the consumer says it is connecting.
    auto [status, body] = ready();
    EXPECT_EQ(status, 200) << body.dump();
    EXPECT_EQ(body["cluster"]["bus"], "connecting") << body.dump();
    EXPECT_EQ(body["cluster"]["regions"], (json{{"hq", "connecting"}, {"lab", "connecting"}}));

    ASSERT_TRUE(nats.Start()) << ReadFile(dir / "nats.log");
    for (const auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
        std::tie(status, body) = ready();
        if (body["cluster"]["bus"] == "connected") break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(body["cluster"]["bus"], "connected") << body.dump() << "\n" << ReadFile(dir / "serve.err");
    EXPECT_EQ(status, 200);

    // A subject, so the recognized event carries its display name.
    auto res = api.Post("/v1/subjects", auth, R"({"id": "alice", "display_name": "Alice A."})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 201) << res->body;

    SseReader sse(port, key);
    for (const auto deadline = Clock::now() + 10s; Clock::now() < deadline && !sse.opened();)
        std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(sse.opened());

    auto b = bus::CreateNatsBus({.url = nats.url(), .name = "test-publisher"});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    auto keys = std::make_shared<gallery::KeyRing>(*gallery::ParseKey(hex_key));
    const auto envelope = [](const bus::RecognitionResult& r, const std::string& region) {
        auto env = bus::ResultEnvelope(r, region, "cam1", events::NowUnixMs());
        EXPECT_TRUE(env.ok()) << env.status().ToString();
        return *env;
    };
    const bus::Envelope known = envelope(Result("hq-1", "known", "alice"), "hq");
    ASSERT_TRUE(bus::PublishEnvelope(**b, known).ok());
    // The same message again: the server dedupes it on its id.
    auto again = bus::PublishEnvelope(**b, known);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->duplicate);
    // The same result under another message id (a worker that republished after a crash): only
    // the consumer's dedupe by item id can drop it.
    auto bytes = bus::EncodeEnvelope(known);
    ASSERT_TRUE(bytes.ok());
    ASSERT_TRUE((*b)->Publish({bus::Topic::kResults, "hq", "cam1"}, "hq-1-republished", *bytes).ok());
    ASSERT_TRUE(bus::PublishEnvelope(**b, envelope(Result("hq-2", "unknown"), "hq"), keys.get()).ok());  // sealed
    ASSERT_TRUE(bus::PublishEnvelope(**b, envelope(Result("hq-3", "spoof"), "hq")).ok());
    ASSERT_TRUE(bus::PublishEnvelope(**b, envelope(Result("lab-1", "known", "bob"), "lab")).ok());
    // A region serve does not read: never shown.
    ASSERT_TRUE(bus::PublishEnvelope(**b, envelope(Result("eu-1", "unknown"), "eu")).ok());

    const std::map<std::string, std::string> expected = {
        {"hq-1", "recognized"}, {"hq-2", "unknown_face"}, {"hq-3", "spoof_detected"}, {"lab-1", "recognized"}};
    const auto bus_events = [&] {
        std::vector<json> out;
        for (const auto& [type, e] : sse.events()) {
            if (e.value("source", "") == "bus") out.push_back(e);
        }
        return out;
    };
    const auto sightings = [&] {
        int n = 0;
        for (const auto& [type, e] : sse.events()) n += type == "sighting";
        return n;
    };
    for (const auto deadline = Clock::now() + 30s;
         Clock::now() < deadline && (bus_events().size() < expected.size() || sightings() < 4);)
        std::this_thread::sleep_for(50ms);
    // A repeat would arrive right behind its original: give it time to show up if it were to.
    std::this_thread::sleep_for(1500ms);

    std::map<std::string, int> seen;
    for (const auto& [type, e] : sse.events()) {
        if (e.value("source", "") != "bus") continue;
        const std::string item = e.value("item_id", "");
        ++seen[item];
        ASSERT_TRUE(expected.count(item)) << e.dump();
        EXPECT_EQ(type, expected.at(item)) << e.dump();
        EXPECT_EQ(e["type"], type);
        EXPECT_EQ(e["stream_id"], "door");
        EXPECT_EQ(e["camera"], "cam1");
        EXPECT_EQ(e["region"], item.substr(0, item.find('-')));
        EXPECT_EQ(e["worker_id"], "w1");
        EXPECT_EQ(e["track_id"], 7);
        EXPECT_EQ(e["frame_index"], 42);
        EXPECT_EQ(e["timestamp_ms"], 1'764'900'000'000);
        EXPECT_EQ(e["timestamp"], "2025-12-05T02:00:00.000Z");
        EXPECT_FALSE(e.contains("best_shot_jpeg_base64") || e["data"].contains("best_shot_jpeg_base64"));
        if (item == "hq-1") {
            EXPECT_EQ(e["data"]["subject_id"], "alice");
            EXPECT_EQ(e["data"]["display_name"], "Alice A.");
            EXPECT_NEAR(e["data"]["score"].get<double>(), 0.81, 1e-6);
        }
        if (item == "lab-1") {
            EXPECT_EQ(e["data"]["display_name"], "");  // not in serve's gallery
        }
        if (item == "hq-2") {
            EXPECT_NEAR(e["data"]["best_score"].get<double>(), 0.25, 1e-6);
        }
    }
    for (const auto& [item, type] : expected) EXPECT_EQ(seen[item], 1) << item << "\n" << ReadFile(dir / "serve.err");
    EXPECT_EQ(seen.size(), expected.size());
    EXPECT_EQ(sightings(), 4);

    // Stored in the history (without crop or embedding), like the pipeline's decisions.
    res = api.Get("/v1/history?limit=50", auth);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json history = json::parse(res->body);
    ASSERT_EQ(history["items"].size(), 4u) << history.dump();
    std::map<std::string, int> outcomes;
    for (const json& s : history["items"]) {
        ++outcomes[s["outcome"].get<std::string>()];
        EXPECT_EQ(s["stream"], "door");
        EXPECT_EQ(s["has_crop"], false);
    }
    EXPECT_EQ(outcomes, (std::map<std::string, int>{{"known", 2}, {"unknown", 1}, {"spoof", 1}}));

    // Counted by region and decision; the consumer's repeat counted apart.
    res = api.Get("/metrics", auth);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    const std::string& m = res->body;
    EXPECT_NE(m.find("facegate_cluster_results_total{decision=\"known\",region=\"hq\"} 1"), std::string::npos) << m;
    EXPECT_NE(m.find("facegate_cluster_results_total{decision=\"unknown\",region=\"hq\"} 1"), std::string::npos);
    EXPECT_NE(m.find("facegate_cluster_results_total{decision=\"spoof\",region=\"hq\"} 1"), std::string::npos);
    EXPECT_NE(m.find("facegate_cluster_results_total{decision=\"known\",region=\"lab\"} 1"), std::string::npos);
    EXPECT_NE(m.find("facegate_cluster_result_duplicates_total{region=\"hq\"} 1"), std::string::npos);
    EXPECT_NE(m.find("facegate_cluster_bus_connected{region=\"lab\"} 1"), std::string::npos);

    // The bus goes away: serve stays ready for its own API and says the consumer lost it.
    b->reset();
    nats.Stop();
    for (const auto deadline = Clock::now() + 20s; Clock::now() < deadline;) {
        std::tie(status, body) = ready();
        if (body["cluster"]["bus"] == "disconnected") break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(body["cluster"]["bus"], "disconnected") << body.dump();
    EXPECT_EQ(status, 200) << body.dump();
    EXPECT_EQ(body["ready"], true);
    res = api.Get("/v1/subjects", auth);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(serve.Stop(), 0) << ReadFile(dir / "serve.err");
}

/// A value of one series of a scrape ("name{labels}" exactly as serialized), or -1 when absent.
double SeriesValue(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
            return std::stod(line.substr(series.size() + 1));
    }
    return -1;
}

/// A node of the cluster as far as status goes: answers the broadcast on a bus connection of its
/// own until destroyed.
class FakeNode {
  public:
    FakeNode(const std::string& url, cluster::NodeStatus status) : status_(std::move(status)) {
        auto b = bus::CreateNatsBus({.url = url, .name = "fake-" + status_.node});
        EXPECT_TRUE(b.ok()) << b.status().ToString();
        if (!b.ok()) return;
        bus_ = std::move(*b);
        responder_ = std::make_unique<cluster::StatusResponder>(bus_->rpc(), [this] { return status_; });
        const Status st = responder_->Start();
        EXPECT_TRUE(st.ok()) << st.ToString();
    }
    ~FakeNode() {
        if (responder_) responder_->Stop();  // before the bus it serves on
    }

  private:
    cluster::NodeStatus status_;
    std::unique_ptr<bus::Bus> bus_;
    std::unique_ptr<cluster::StatusResponder> responder_;
};

cluster::NodeStatus Worker(std::string node, std::vector<int> held, std::int64_t change) {
    cluster::NodeStatus s;
    s.node = std::move(node);
    s.role = "worker";
    s.region = "hq";
    s.gallery = "main";
    s.shards = 2;
    s.held = std::move(held);
    for (int h : s.held) s.templates[h] = 10;
    s.applied_change = change;
    s.started_unix_ms = 1'764'900'000'000;
    s.counters = {{"fetched", 20}, {"redelivered", 3}, {"results", 20}, {"republished", 2}, {"search_retries", 0}};
    return s;
}

TEST(ServeCluster, GathersTheNodesStatusesIntoMetricsAndTheClusterRoute) {
    if (!HaveNatsServer()) {
        if (InCi()) FAIL() << "nats-server is not installed";
        GTEST_SKIP() << "nats-server is not installed";
    }
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    testing::TmpDir dir;
    NatsServer nats(dir.path());
    ASSERT_TRUE(nats.Start()) << ReadFile(dir / "nats.log");

    // The region's work queue with three face items waiting (a workers' consumer that fetches
    // nothing), so the backlog is known.
    auto b = bus::CreateNatsBus({.url = nats.url(), .name = "test-edge"});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    auto queue = (*b)->Subscribe({.topic = bus::Topic::kFaces, .region = "hq", .group = "workers"});
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE((*b)->Publish({bus::Topic::kFaces, "hq", "cam1"}, "item-" + std::to_string(i), "x").ok());

    auto w1 = std::make_unique<FakeNode>(nats.url(), Worker("w1", {0, 1}, 7));
    FakeNode w2(nats.url(), Worker("w2", {0}, 6));
    cluster::NodeStatus edge;
    edge.node = "e1";
    edge.role = "edge";
    edge.region = "hq";
    edge.counters = {{"published", 5}, {"buffer_depth", 4}, {"buffered", 9}, {"dropped", 0}};
    auto e1 = std::make_unique<FakeNode>(nats.url(), edge);

    std::ofstream(dir / "serve.json") << json{
        {"listen", {{"address", "127.0.0.1"}, {"port", 0}}},
        {"auth", {{"keys_file", "keys.db"}}},
        {"cluster", {{"bus", nats.url()}, {"regions", {"hq"}}, {"status_interval_s", 1}}}};
    Process serve({FG_FACEGATE_BIN, "serve", "--config", (dir / "serve.json").string(), "--create-admin-key", "--json"},
                  dir / "serve.out", dir / "serve.err");
    const auto [port, key] = fg::testing::WaitForServe(dir / "serve.out", 60s, [&] { return serve.running(); });
    ASSERT_GT(port, 0) << "serve did not start:\n" << ReadFile(dir / "serve.err");
    httplib::Client api("127.0.0.1", port);
    api.set_read_timeout(10, 0);
    const httplib::Headers auth = {{"Authorization", "Bearer " + key}};
    const auto scrape = [&] {
        auto res = api.Get("/metrics", auth);
        return res && res->status == 200 ? res->body : std::string();
    };
    const auto cluster_doc = [&] {
        auto res = api.Get("/v1/cluster", auth);
        return res ? std::make_pair(res->status, json::parse(res->body, nullptr, false)) : std::make_pair(0, json());
    };
    EXPECT_EQ(api.Get("/v1/cluster")->status, 401);  // scope read

    // Every node answered: the gauges (bounded wait for a gathering that saw all three).
    std::string m;
    for (const auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
        m = scrape();
        if (SeriesValue(m, "facegate_cluster_nodes{role=\"worker\"}") == 2 &&
            SeriesValue(m, "facegate_cluster_nodes{role=\"edge\"}") == 1 &&
            SeriesValue(m, "facegate_cluster_backlog_items{region=\"hq\"}") == 3)
            break;
        std::this_thread::sleep_for(200ms);
    }
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_nodes{role=\"worker\"}"), 2) << m << ReadFile(dir / "serve.err");
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_nodes{role=\"edge\"}"), 1);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_backlog_items{region=\"hq\"}"), 3);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"0\"}"), 2);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"1\"}"), 1);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_node_redeliveries{node=\"w1\",region=\"hq\"}"), 3);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_node_dedupe_hits{node=\"w2\",region=\"hq\"}"), 2);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_node_applied_change{node=\"w1\"}"), 7);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_node_applied_change{node=\"w2\"}"), 6);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_edge_buffered_items{node=\"e1\",region=\"hq\"}"), 4);
    const double age = SeriesValue(m, "facegate_cluster_status_age_seconds");
    EXPECT_GE(age, 0);
    EXPECT_LT(age, 10);

    // The snapshot, in the shape of `facegate cluster status --json`.
    auto [status, doc] = cluster_doc();
    ASSERT_EQ(status, 200) << doc.dump();
    EXPECT_EQ(doc["state"], "degraded") << doc.dump();  // shard 1 has one replica of two
    EXPECT_EQ(doc["nodes"].size(), 3u);
    EXPECT_EQ(doc["undecodable_answers"], 0);
    ASSERT_EQ(doc["galleries"].size(), 1u);
    EXPECT_EQ(doc["galleries"][0]["gallery"], "main");
    EXPECT_EQ(doc["galleries"][0]["replicas_wanted"], 2);
    EXPECT_EQ(doc["galleries"][0]["shard_health"][0]["replicas"], (json{"w1", "w2"}));
    EXPECT_EQ(doc["galleries"][0]["shard_health"][1]["state"], "degraded");
    EXPECT_EQ(doc["regions"], (json{{{"region", "hq"}, {"backlog", 3}}}));
    EXPECT_GT(doc.value("gathered_unix_ms", std::int64_t{0}), 0);
    // /readyz stays cheap: no node list there.
    auto ready = api.Get("/readyz");
    ASSERT_TRUE(ready);
    EXPECT_FALSE(json::parse(ready->body)["cluster"].contains("nodes")) << ready->body;

    // w1 and the edge stop answering: their series go, shard 1 is held by nobody.
    w1.reset();
    e1.reset();
    for (const auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
        m = scrape();
        if (SeriesValue(m, "facegate_cluster_nodes{role=\"worker\"}") == 1 &&
            SeriesValue(m, "facegate_cluster_nodes{role=\"edge\"}") == 0)
            break;
        std::this_thread::sleep_for(200ms);
    }
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_nodes{role=\"worker\"}"), 1) << m;
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"0\"}"), 1);
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_shard_replicas{gallery=\"main\",shard=\"1\"}"), 0);
    EXPECT_EQ(m.find("node=\"w1\""), std::string::npos) << m;
    EXPECT_EQ(m.find("node=\"e1\""), std::string::npos) << m;
    EXPECT_EQ(SeriesValue(m, "facegate_cluster_node_applied_change{node=\"w2\"}"), 6);
    std::tie(status, doc) = cluster_doc();
    ASSERT_EQ(status, 200);
    EXPECT_EQ(doc["state"], "down") << doc.dump();
    EXPECT_EQ(doc["nodes"].size(), 1u);
    EXPECT_EQ(serve.Stop(), 0) << ReadFile(dir / "serve.err");
}

}  // namespace
}  // namespace fg::api
