// SPDX-License-Identifier: Apache-2.0
// The sharded gallery with its API node, as processes: a real nats-server, `facegate serve` (the
// system of record's writer, publishing its change log on the bus) and four `facegate worker`s
// holding S = 2 shards x R = 2 replicas that poll the change log only once a minute, so changes
// reach them through the bus's change stream. A person enrolled through serve's REST API from
// real photos is named by a scatter-gather over the replicas (a held-out photo's embedding)
// within a bounded time, and is gone everywhere once deleted through the API; serve's
// GET /v1/cluster sees every replica. Needs the default pack and dlib's example photos: skips
// without them (fails under CI=true). Bounded waits throughout.
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../../gallery/tests/test_util.h"
#include "bus_test_util.h"
#include "child_process.h"
#include "fg/testing/process.h"
#include "fg/base/paths.h"
#include "fg/bus/nats.h"
#include "fg/cluster/shard_server.h"
#include "fg/image/image_io.h"
#include "fg/testing/testing.h"
#include "fg/vision/engine.h"

namespace fg::cluster {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using testing::Child;
using testing::ReadAll;

constexpr const char* kKeyHex = "5a1f0e3a9d2c4b5e8f7a6d5c4b3a29180f1e2d3c4b5a69788796a5b4c3d2e1f0";

std::string ReadBytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(ShardServe, EnrollAndDeleteThroughTheApiNodeReachEveryShardReplica) {
    if (!bus::testing::HaveNatsServer()) {
        if (fg::InCi()) FAIL() << "nats-server not found (Debian nats-server)";
        GTEST_SKIP() << "nats-server not found (Debian nats-server)";
    }
    const fs::path johns = DlibExamplesDir() / "johns";
    FG_REQUIRE_PATH(johns);
    FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
    FG_REQUIRE_PATH(ModelsDir() / "fr_feature.onnx");
    fg::testing::TmpDir tmp;
    const fs::path key_file = tmp / "gallery.key";
    std::ofstream(key_file) << kKeyHex << "\n";
    fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write);
    auto keys = std::make_shared<gallery::KeyRing>(*gallery::ParseKey(kKeyHex));

    // The system of record: 200 synthetic people under the real embedder's model id (random
    // 512-d vectors: nobody resembles a real face), so the real person is the only match.
    auto engine = vision::Engine::Create({.pack = "default", .backend = {.threads = 1}});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    const std::string model = (*engine)->embedder_info()->model_id;
    {
        auto g = gallery::Gallery::Open({.location = (tmp / "g.db").string(), .keys = keys,
                                         .default_threshold = vision::DefaultVerifyThreshold((*engine)->pack())});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        std::vector<gallery::BulkFace> faces;
        for (int i = 0; i < 200; ++i)
            faces.push_back({"p" + std::to_string(i), {.embedding = gallery::testing::RandomUnit(std::uint32_t(i), 512),
                                                       .quality = -1, .source = "t"}});
        ASSERT_TRUE((*g)->EnrollBulk(faces, {.model_id = model, .force = true}).ok());
    }
    // A real person: three photos to enroll through the API, a held-out one as the probe.
    fs::path person;
    for (const auto& d : fs::directory_iterator(johns)) {
        if (person.empty() || d.path() < person) person = d.path();
    }
    std::vector<fs::path> photos;
    for (const auto& f : fs::directory_iterator(person)) photos.push_back(f.path());
    std::sort(photos.begin(), photos.end());
    ASSERT_GE(photos.size(), 4u);
    auto worker = (*engine)->CreateWorker();
    ASSERT_TRUE(worker.ok());
    auto img = LoadImage(photos[3]);
    ASSERT_TRUE(img.ok());
    auto faces = (*worker)->Analyze(*img, {.max_faces = 1});
    ASSERT_TRUE(faces.ok() && !faces->empty() && faces->front().embedding);
    const Embedding probe = *faces->front().embedding;

    bus::testing::NatsServer nats(tmp.path());
    ASSERT_TRUE(nats.Start()) << ReadAll(tmp / "nats.log");
    std::ofstream(tmp / "serve.json") << json{
        {"listen", {{"address", "127.0.0.1"}, {"port", 0}}},
        {"auth", {{"keys_file", "keys.db"}}},
        {"gallery", {{"db", "g.db"}, {"key_file", "gallery.key"}}},
        {"cluster", {{"bus", nats.url()}, {"regions", {"hq"}}, {"status_interval_s", 1}, {"replicas", 2}}}};
    Child serve({"serve", "--config", (tmp / "serve.json").string(), "--create-admin-key", "--json"}, tmp / "serve");
    std::vector<std::unique_ptr<Child>> replicas;
    for (int copy = 0; copy < 2; ++copy)
        for (int s = 0; s < 2; ++s)
            replicas.push_back(std::make_unique<Child>(
                std::vector<std::string>{"worker", "--bus", nats.url(), "--region", "hq", "--embedder", "stub", "--db",
                                         (tmp / "g.db").string(), "--key-file", key_file.string(), "--shards", "2",
                                         "--hold", std::to_string(s), "--worker-id",
                                         "w" + std::to_string(s) + "-" + std::to_string(copy), "--follow-ms", "60000"},
                tmp / ("w" + std::to_string(s) + "-" + std::to_string(copy))));
    const auto [port, key] = fg::testing::WaitForServe(tmp / "serve.out", 90s);
    ASSERT_GT(port, 0) << "serve did not start:\n" << ReadAll(tmp / "serve.err");
    httplib::Client api("127.0.0.1", port);
    api.set_read_timeout(30, 0);
    const httplib::Headers auth = {{"Authorization", "Bearer " + key}};
    // serve's view of the cluster: all four replicas, both shards healthy.
    json cluster;
    for (const auto deadline = Clock::now() + 60s; Clock::now() < deadline;) {
        auto res = api.Get("/v1/cluster", auth);
        if (res && res->status == 200) {
            cluster = json::parse(res->body, nullptr, false);
            if (cluster.value("state", "") == "ok" && cluster["nodes"].size() == 4) break;
        }
        std::this_thread::sleep_for(200ms);
    }
    ASSERT_EQ(cluster.value("state", ""), "ok") << cluster.dump() << "\n" << ReadAll(tmp / "w0-0.err");

    auto b = bus::CreateNatsBus({.url = nats.url(), .name = "test-asker"});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ShardedIdentifier cluster_id({.gallery = "main", .shards = 2, .keys = keys}, (*b)->rpc());
    auto who = cluster_id.Search(probe, 2);
    ASSERT_TRUE(who.ok()) << who.status().ToString();
    EXPECT_FALSE(who->known) << who->subject_id;

    // Enroll through the API node.
    auto res = api.Post("/v1/subjects", auth, R"({"id": "visitor"})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 201) << res->body;
    httplib::MultipartFormDataItems form;
    for (int i = 0; i < 3; ++i)
        form.push_back({"image", ReadBytes(photos[std::size_t(i)]), photos[std::size_t(i)].filename().string(), "image/jpeg"});
    res = api.Post("/v1/subjects/visitor/faces", auth, form);
    ASSERT_TRUE(res);
    ASSERT_TRUE(res->status == 200 || res->status == 201) << res->status << " " << res->body;
    const auto enrolled = Clock::now();
    bool named = false;
    for (const auto deadline = Clock::now() + 10s; Clock::now() < deadline && !named;) {
        who = cluster_id.Search(probe, 2);
        named = who.ok() && who->known && who->subject_id == "visitor";
        if (!named) std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(named) << (who.ok() ? who->reason : who.status().ToString());
    std::cout << "enrolled through serve, named by the sharded cluster after "
              << std::chrono::duration<double>(Clock::now() - enrolled).count() << " s\n";

    res = api.Delete("/v1/subjects/visitor", auth);
    ASSERT_TRUE(res);
    ASSERT_TRUE(res->status == 200 || res->status == 204) << res->status << " " << res->body;
    bool gone = false;
    for (const auto deadline = Clock::now() + 10s; Clock::now() < deadline && !gone;) {
        who = cluster_id.Search(probe, 2);
        gone = who.ok() && !who->known;
        if (who.ok())
            for (const gallery::Candidate& c : who->candidates) gone &= c.subject_id != "visitor";
        if (!gone) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(gone);
    // Both replicas of the visitor's shard are asked in turn (queue group): query a few times.
    for (int i = 0; i < 8; ++i) {
        auto again = cluster_id.Search(probe, 2);
        ASSERT_TRUE(again.ok());
        for (const gallery::Candidate& c : again->candidates) EXPECT_NE(c.subject_id, "visitor");
    }
    for (auto& r : replicas) r->Signal(SIGTERM);
    for (auto& r : replicas) EXPECT_EQ(r->Wait(20s), std::optional<int>(0));
    serve.Signal(SIGINT);
    EXPECT_EQ(serve.Wait(30s), std::optional<int>(0)) << ReadAll(tmp / "serve.err");
}

}  // namespace
}  // namespace fg::cluster
