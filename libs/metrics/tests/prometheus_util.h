// SPDX-License-Identifier: Apache-2.0
// Shared by the Prometheus tests (prometheus_test.cc: the metrics fed synthetically;
// serve_scrape_test.cc: the real `facegate serve`): finding and running the tools, a Prometheus
// process on loopback, queries, the metric families and the dashboard's expressions.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace fg::metrics::testing_util {

using namespace std::chrono_literals;


// The program's path in PATH, or a path that does not exist (for FG_REQUIRE_PATH's message).
inline std::filesystem::path FindProgram(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        const auto p = std::filesystem::path(dir) / name;
        if (!dir.empty() && access(p.c_str(), X_OK) == 0) return p;
    }
    return std::filesystem::path("/usr/bin") / name;  // missing: FG_REQUIRE_PATH names it
}

struct Output {
    int exit_code = -1;
    std::string text;  // stdout and stderr
};

inline std::string Quote(const std::string& s) {
    std::string q = "'";
    for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs a short-lived tool (promtool answers in well under a second) through the shell.
inline Output RunTool(const std::vector<std::string>& argv, const std::string& stdin_file = "") {
    std::string cmd;
    for (const auto& a : argv) cmd += Quote(a) + " ";
    if (!stdin_file.empty()) cmd += "< " + Quote(stdin_file) + " ";
    cmd += "2>&1";
    Output out;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.text.append(buf, n);
    const int status = pclose(pipe);
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

// "# TYPE name type" lines of a scrape: every family and its type.
inline std::map<std::string, std::string> Families(const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string hash, kw, name, type;
        if (words >> hash >> kw >> name >> type && hash == "#" && kw == "TYPE") out[name] = type;
    }
    return out;
}

// Every family README.md lists, with its type.
inline const std::map<std::string, std::string> kFamilies = {
    {"facegate_stage_latency_seconds", "histogram"},
    {"facegate_stream_frames_received_total", "counter"},
    {"facegate_stream_frames_processed_total", "counter"},
    {"facegate_stream_frames_gated_total", "counter"},
    {"facegate_stream_frames_dropped_total", "counter"},
    {"facegate_stream_reconnects_total", "counter"},
    {"facegate_stream_fps", "gauge"},
    {"facegate_stream_queue_depth", "gauge"},
    {"facegate_stream_state", "gauge"},
    {"facegate_queue_depth", "gauge"},
    {"facegate_inference_threads", "gauge"},
    {"facegate_inference_busy_seconds_total", "counter"},
    {"facegate_recognitions_total", "counter"},
    {"facegate_recognition_top1_score", "histogram"},
    {"facegate_gallery_subjects", "gauge"},
    {"facegate_gallery_templates", "gauge"},
    {"facegate_http_requests_total", "counter"},
    {"facegate_http_request_duration_seconds", "histogram"},
    {"facegate_audit_records_total", "counter"},
};

// Families that exist only when serve reads the cluster's results (its `cluster` section).
inline const std::map<std::string, std::string> kClusterFamilies = {
    {"facegate_cluster_results_total", "counter"},
    {"facegate_cluster_result_duplicates_total", "counter"},
    {"facegate_cluster_bus_connected", "gauge"},
    // Its status poller (cluster.status_interval_s): the nodes' answers and the backlogs.
    {"facegate_cluster_nodes", "gauge"},
    {"facegate_cluster_shard_replicas", "gauge"},
    {"facegate_cluster_backlog_items", "gauge"},
    {"facegate_cluster_node_redeliveries", "gauge"},
    {"facegate_cluster_node_dedupe_hits", "gauge"},
    {"facegate_cluster_edge_buffered_items", "gauge"},
    {"facegate_cluster_node_applied_change", "gauge"},
    {"facegate_cluster_status_age_seconds", "gauge"},
};

/// kFamilies and kClusterFamilies: a scrape of serve with a `cluster` section.
inline std::map<std::string, std::string> AllFamilies() {
    std::map<std::string, std::string> all = kFamilies;
    all.insert(kClusterFamilies.begin(), kClusterFamilies.end());
    return all;
}

// A Prometheus server process on loopback; stopped (SIGTERM, then SIGKILL) by the destructor.
class PrometheusProcess {
  public:
    PrometheusProcess(const std::filesystem::path& binary, const std::filesystem::path& dir,
                      int port) {
        const std::string config = "--config.file=" + (dir / "prometheus.yml").string();
        const std::string storage = "--storage.tsdb.path=" + (dir / "data").string();
        const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
        const std::string log = (dir / "prometheus.log").string();
        pid_ = fork();
        if (pid_ == 0) {
            const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execl(binary.c_str(), binary.c_str(), config.c_str(), storage.c_str(), listen.c_str(),
                  "--log.level=warn", static_cast<char*>(nullptr));
            _exit(127);
        }
    }
    ~PrometheusProcess() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {  // up to 10 s for a clean shutdown
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(100ms);
        }
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    PrometheusProcess(const PrometheusProcess&) = delete;
    PrometheusProcess& operator=(const PrometheusProcess&) = delete;
    bool started() const { return pid_ > 0; }
    bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

  private:
    pid_t pid_ = -1;
};

// Instant query; the JSON answer, or null on a transport error.
inline nlohmann::json Query(httplib::Client& client, const std::string& promql) {
    auto res = client.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
    if (!res) return nullptr;
    auto json = nlohmann::json::parse(res->body, nullptr, false);
    return json.is_discarded() ? nlohmann::json(res->body) : json;
}

inline bool HasData(const nlohmann::json& answer) {
    return answer.is_object() && answer.value("status", "") == "success" &&
           answer["data"]["result"].is_array() && !answer["data"]["result"].empty();
}

// Every "expr" of the dashboard's panels (rows may nest panels), with Grafana's variables
// replaced by what a user would get: all streams, a 1-minute rate window.
inline void CollectExprs(const nlohmann::json& panels, std::vector<std::pair<std::string, std::string>>& out) {
    for (const auto& p : panels) {
        if (p.contains("panels")) CollectExprs(p["panels"], out);
        if (!p.contains("targets")) continue;
        for (const auto& t : p["targets"]) {
            if (!t.contains("expr")) continue;
            std::string e = t["expr"].get<std::string>();
            for (const auto& [var, value] :
                 std::vector<std::pair<std::string, std::string>>{{"$__rate_interval", "1m"},
                                                                  {"$__interval", "1m"},
                                                                  {"${stream:regex}", ".*"},
                                                                  {"$stream", ".*"}}) {
                for (std::size_t at; (at = e.find(var)) != std::string::npos;) {
                    e.replace(at, var.size(), value);
                }
            }
            out.emplace_back(p.value("title", "?"), e);
        }
    }
}

}  // namespace fg::metrics::testing_util
