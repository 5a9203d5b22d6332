// SPDX-License-Identifier: Apache-2.0
#include "fg/api/serve_config.h"

#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "fg/testing/testing.h"

namespace fg::api {
namespace {

using nlohmann::json;

GetEnv Env(std::map<std::string, std::string> vars) {
    auto held = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
    return [held](const char* n) -> const char* {
        const auto it = held->find(n);
        return it == held->end() ? nullptr : it->second.c_str();
    };
}
const GetEnv kNoEnv = [](const char*) -> const char* { return nullptr; };

std::string Error(const json& j, const GetEnv& env = kNoEnv) {
    auto c = ParseServeConfig(j, "/cfg", env);
    return c.ok() ? "" : c.status().message();
}

TEST(ServeConfigTest, Defaults) {
    auto c = ParseServeConfig(json::object(), "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->server.listen_address, "127.0.0.1");
    EXPECT_EQ(c->server.port, 8080);
    EXPECT_FALSE(c->server.tls);
    EXPECT_EQ(c->keys_file, "");  // facegate keys' default store
    EXPECT_EQ(c->events_backlog, 1000u);
    EXPECT_EQ(c->api.max_faces, 50);
    EXPECT_TRUE(c->run.pipeline.streams.empty());
    EXPECT_TRUE(c->run.sinks.empty());  // events go to the API only unless sinks are named
    EXPECT_EQ(c->run.engine.pack, "default");
}

TEST(ServeConfigTest, ReadsEverySection) {
    const json j = json::parse(R"({
      "listen": {"address": "0.0.0.0", "port": 9000},
      "tls": {"cert_file": "c.pem", "key_file": "/abs/k.pem"},
      "threads": {"io": 3, "compute": 4, "compute_queue": 8},
      "limits": {"max_body_bytes": 2048, "header_timeout_ms": 500, "max_faces": 10},
      "cors": {"origins": ["https://a.example"]},
      "rate_limit": {"per_key": 5.5},
      "auth": {"keys_file": "k/keys.json"},
      "audit": {"file": "audit.log", "key_file": "audit.key"},
      "api": {"events_backlog": 50, "heartbeat_ms": 2000, "top_k": 3, "mjpeg_fps": 2},
      "engine": {"pack": "yunet_s"},
      "gallery": {"db": "people.db"},
      "streams": [{"id": "door", "uri": "clip.mp4"}],
      "events": {"sinks": [{"type": "jsonl", "path": "events.jsonl"}]}
    })");
    auto c = ParseServeConfig(j, "/cfg", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->server.listen_address, "0.0.0.0");
    EXPECT_EQ(c->server.port, 9000);
    ASSERT_TRUE(c->server.tls);
    EXPECT_EQ(c->server.tls->cert_file, "/cfg/c.pem");
    EXPECT_EQ(c->server.tls->key_file, "/abs/k.pem");
    EXPECT_EQ(c->server.io_threads, 3);
    EXPECT_EQ(c->server.compute_threads, 4);
    EXPECT_EQ(c->server.max_body_bytes, 2048u);
    EXPECT_EQ(c->server.header_timeout.count(), 500);
    EXPECT_EQ(c->server.cors_origins, std::vector<std::string>{"https://a.example"});
    EXPECT_DOUBLE_EQ(c->server.rate_limit_per_key, 5.5);
    EXPECT_EQ(c->keys_file, "/cfg/k/keys.json");
    EXPECT_EQ(c->audit_file, "/cfg/audit.log");
    EXPECT_EQ(c->events_backlog, 50u);
    EXPECT_EQ(c->api.heartbeat.count(), 2000);
    EXPECT_EQ(c->api.max_faces, 10);
    EXPECT_EQ(c->run.engine.pack, "yunet_s");
    EXPECT_EQ(c->run.gallery.db, "/cfg/people.db");
    ASSERT_EQ(c->run.pipeline.streams.size(), 1u);
    EXPECT_EQ(c->run.pipeline.streams[0].source.uri, "/cfg/clip.mp4");
    EXPECT_EQ(c->stream_specs.at("door")["uri"], "clip.mp4");
    EXPECT_EQ(c->run.sinks.size(), 1u);
}

TEST(ServeConfigTest, ErrorsNameTheField) {
    EXPECT_EQ(Error({{"listen", {{"port", 70000}}}}), "listen.port must be in [0, 65535], got 70000");
    EXPECT_EQ(Error({{"listen", {{"port", "80"}}}}), "listen.port must be an integer");
    EXPECT_EQ(Error({{"listen", {{"prot", 80}}}}), "unknown option listen.prot");
    EXPECT_EQ(Error({{"tls", {{"cert_file", "c.pem"}}}}), "tls.key_file is required with tls.cert_file");
    EXPECT_EQ(Error({{"threads", {{"io", 0}}}}), "threads.io must be in [1, 64], got 0");
    EXPECT_EQ(Error({{"cors", {{"origins", "x"}}}}), "cors.origins must be a list of strings");
    EXPECT_EQ(Error({{"api", {{"events_backlog", 0}}}}), "api.events_backlog must be in [1, 1000000], got 0");
    EXPECT_EQ(Error({{"api", {{"enroll_gate", 1}}}}), "api.enroll_gate must be true or false");
    EXPECT_EQ(Error({{"bogus", 1}}), "unknown option bogus");
    EXPECT_EQ(Error({{"engine", {{"backend", "gpu"}}}}), "engine.backend must be auto, onednn or opencv");
    EXPECT_NE(Error({{"streams", {{{"uri", "x.mp4"}}}}}).find("streams[0].id"), std::string::npos);
    EXPECT_EQ(Error(json::array()), "the serve config must be a JSON object");
}

TEST(ServeConfigTest, EnvironmentOverrides) {
    auto c = ParseServeConfig({{"listen", {{"port", 9000}}}}, "/cfg",
                              Env({{"FG_SERVE_LISTEN_PORT", "9100"},
                                   {"FG_SERVE_CORS_ORIGINS", "https://a,https://b"},
                                   {"FG_SERVE_GALLERY_DB", "postgresql://db/x"},
                                   {"FG_SERVE_KEYS_FILE", "/etc/fg/keys.json"},
                                   {"FG_SERVE_EVENTS_BACKLOG", "7"},
                                   {"FG_SERVE_RATE_LIMIT_PER_KEY", "2.5"}}));
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->server.port, 9100);
    EXPECT_EQ(c->server.cors_origins.size(), 2u);
    EXPECT_EQ(c->run.gallery.db, "postgresql://db/x");
    EXPECT_EQ(c->keys_file, "/etc/fg/keys.json");
    EXPECT_EQ(c->events_backlog, 7u);
    EXPECT_DOUBLE_EQ(c->server.rate_limit_per_key, 2.5);
    EXPECT_EQ(Error(json::object(), Env({{"FG_SERVE_LISTEN_PORT", "80x"}})),
              "FG_SERVE_LISTEN_PORT must be an integer (listen.port), got '80x'");
    EXPECT_EQ(Error(json::object(), Env({{"FG_SERVE_LISTEN_PORT", "99999"}})),
              "listen.port must be in [0, 65535], got 99999");
    for (const auto& v : ServeEnvVars()) EXPECT_TRUE(v.name.starts_with("FG_SERVE_")) << v.name;
}

TEST(ServeConfigTest, LoadsFilesWithClearErrors) {
    testing::TmpDir dir;
    EXPECT_EQ(LoadServeConfig(dir / "missing.json", kNoEnv).status().code(), StatusCode::kNotFound);
    std::ofstream(dir / "bad.json") << "{ not json";
    EXPECT_EQ(LoadServeConfig(dir / "bad.json", kNoEnv).status().code(), StatusCode::kInvalidArgument);
    std::ofstream(dir / "ok.json") << "// comment\n{\"listen\": {\"port\": 0}}";
    auto c = LoadServeConfig(dir / "ok.json", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->server.port, 0);
    std::ofstream(dir / "err.json") << "{\"listen\": {\"port\": -1}}";
    const Status s = LoadServeConfig(dir / "err.json", kNoEnv).status();
    EXPECT_NE(s.message().find("listen.port"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("err.json"), std::string::npos) << s.message();
}

TEST(ServeConfigTest, ExampleFileParses) {
    auto c = LoadServeConfig(std::filesystem::path(FG_SOURCE_DIR) / "examples/serve.json", kNoEnv);
    ASSERT_TRUE(c.ok()) << c.status().message();
}

}  // namespace
}  // namespace fg::api
