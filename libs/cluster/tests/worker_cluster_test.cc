// SPDX-License-Identifier: Apache-2.0
// The worker role end to end, as processes: a real nats-server (JetStream, temp store, free
// loopback port), three `facegate worker` processes over a real encrypted gallery of four of
// dlib's "johns", face items made from held-out photos (aligned crops, as an edge sends them)
// published here, results collected here through fg::cluster::ResultConsumer. Exactly one
// result per item with the right decisions; then one worker is killed with -9 mid-stream and
// every item still gets exactly one result; the survivors stop cleanly on SIGTERM; a person
// enrolled while the workers run is recognised without a restart (the gallery's change log).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bus_test_util.h"
#include "child_process.h"
#include "fg/base/paths.h"
#include "fg/bus/messages.h"
#include "fg/bus/nats.h"
#include "fg/cluster/result_consumer.h"
#include "fg/gallery/crypto.h"
#include "fg/gallery/gallery.h"
#include "fg/image/image_io.h"
#include "fg/testing/testing.h"
#include "fg/vision/engine.h"

extern char** environ;

namespace fg::cluster {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using bus::testing::NatsServer;

constexpr const char* kStranger = "John_Simm";
constexpr const char* kKeyHex = "6b1f0e3a9d2c4b5e8f7a6d5c4b3a29180f1e2d3c4b5a69788796a5b4c3d2e1f0";
constexpr int kAckWaitMs = 2000;

using testing::Child;
using testing::ReadAll;

std::vector<fs::path> Photos(const fs::path& dir) {
    std::vector<fs::path> p;
    for (const auto& f : fs::directory_iterator(dir)) p.push_back(f.path());
    std::sort(p.begin(), p.end());
    return p;
}

/// One held-out face of a person: the aligned crop an edge would send, and who it is.
struct Probe {
    std::string person;
    cv::Mat aligned;
};

class WorkerCluster : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!bus::testing::HaveNatsServer()) {
            if (fg::InCi()) FAIL() << "nats-server not found (Debian nats-server)";
            GTEST_SKIP() << "nats-server not found (Debian nats-server)";
        }
        const fs::path johns = DlibExamplesDir() / "johns";
        FG_REQUIRE_PATH(johns);
        FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx");
        FG_REQUIRE_PATH(ModelsDir() / "fr_feature.onnx");
        ::setenv("FG_GALLERY_KEY", kKeyHex, 1);  // the workers' gallery key (inherited)

        auto e = vision::Engine::Create({.pack = "default", .backend = {.threads = 1}});
        ASSERT_TRUE(e.ok()) << e.status().ToString();
        engine_ = *e;
        auto key = gallery::ParseKey(kKeyHex);
        ASSERT_TRUE(key.ok());
        keys_ = std::make_shared<gallery::KeyRing>(*key);
        auto g = gallery::Gallery::Open({.location = (tmp_ / "g.db").string(),
                                         .keys = keys_,
                                         .default_threshold = vision::DefaultVerifyThreshold(engine_->pack())});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        gallery_ = std::move(*g);
        auto worker = engine_->CreateWorker();
        ASSERT_TRUE(worker.ok());
        worker_ = std::move(*worker);
        for (const auto& d : fs::directory_iterator(johns)) {
            const std::string person = d.path().filename().string();
            const auto photos = Photos(d.path());
            ASSERT_GE(photos.size(), 6u);
            if (person != kStranger) ASSERT_NO_FATAL_FAILURE(Enroll(person, photos));
            else stranger_photos_ = photos;
            for (std::size_t i = 3; i < 6; ++i) {  // held out: never enrolled
                auto img = LoadImage(photos[i]);
                ASSERT_TRUE(img.ok());
                auto f = worker_->Analyze(*img, {.embed = false, .keep_aligned = true, .max_faces = 1});
                ASSERT_TRUE(f.ok() && !f->empty()) << photos[i];
                const vision::Face& face = f->at(static_cast<std::size_t>(PickLargest(*f)));
                probes_.push_back({person, face.aligned.image.clone()});
            }
        }
        server_ = std::make_unique<NatsServer>(tmp_.path());
        ASSERT_TRUE(server_->Start()) << "nats-server did not start; log: " << (tmp_ / "nats.log");
        bus::NatsConfig c;
        c.url = server_->url();
        c.publish_timeout = 20s;
        c.ack_wait = std::chrono::milliseconds(kAckWaitMs);
        auto b = bus::CreateNatsBus(c);
        ASSERT_TRUE(b.ok()) << b.status().ToString();
        bus_ = std::move(*b);
    }

    void TearDown() override { ::unsetenv("FG_GALLERY_KEY"); }

    static int PickLargest(const std::vector<vision::Face>& faces) {
        int best = 0;
        for (std::size_t i = 1; i < faces.size(); ++i)
            if (faces[i].detection.box.area() > faces[static_cast<std::size_t>(best)].detection.box.area())
                best = static_cast<int>(i);
        return best;
    }

    void Enroll(const std::string& person, const std::vector<fs::path>& photos) {
        std::vector<gallery::NewFace> faces;
        for (std::size_t i = 0; i < 3; ++i) {
            auto img = LoadImage(photos[i]);
            ASSERT_TRUE(img.ok());
            auto f = worker_->Analyze(*img, {.max_faces = 1});
            ASSERT_TRUE(f.ok() && !f->empty() && f->front().embedding) << photos[i];
            faces.push_back({f->front().embedding->values, f->front().quality.score, ""});
        }
        auto r = gallery_->Enroll(person, {.model_id = engine_->embedder_info()->model_id, .display_name = person},
                                  faces);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
    }

    std::unique_ptr<Child> StartWorker(const std::string& id) {
        return std::make_unique<Child>(
            std::vector<std::string>{"worker", "--bus", server_->url(), "--region", "hq", "--db",
                                     (tmp_ / "g.db").string(), "--worker-id", id, "--threads", "1",
                                     "--batch", "4", "--ack-wait-ms", std::to_string(kAckWaitMs)},
            tmp_ / id);
    }

    /// Publishes items [from, to): item i shows probe i % probes, from camera i % 4, sealed with
    /// the gallery key (the bus stores face crops on disk).
    void Publish(int from, int to, const std::vector<Probe>& probes) {
        for (int i = from; i < to; ++i) {
            pipeline::FaceItem item;
            item.stream_id = "cam" + std::to_string(i % 4);
            item.track_id = static_cast<std::uint64_t>(i);
            item.frame_index = i;
            item.item_id = item.stream_id + "/0/" + std::to_string(i) + "/" + std::to_string(i);
            item.quality = 0.8f;
            item.aligned = probes[static_cast<std::size_t>(i) % probes.size()].aligned;
            auto env = bus::FaceItemEnvelope(item, "hq", item.stream_id, 1);
            ASSERT_TRUE(env.ok()) << env.status().ToString();
            auto ack = bus::PublishEnvelope(*bus_, *env, keys_.get());
            ASSERT_TRUE(ack.ok()) << ack.status().ToString();
            const std::string& person = probes[static_cast<std::size_t>(i) % probes.size()].person;
            expected_[item.item_id] = {person, enrolled_.contains(person)};
        }
    }

    /// The last lines of every worker's stderr, for failure messages.
    std::string Logs() const {
        std::string out;
        for (const std::string w : {"w0", "w1", "w2"}) {
            const std::string e = ReadAll(tmp_ / (w + ".err"));
            out += "\n--- " + w + ".err (tail):\n" + e.substr(e.size() > 1500 ? e.size() - 1500 : 0);
        }
        return out;
    }

    int Count() {
        std::lock_guard lock(mu_);
        return static_cast<int>(results_.size());
    }

    bool WaitResults(int n, std::chrono::milliseconds limit) {
        return bus::testing::WaitFor([&] { return Count() >= n; }, limit);
    }

    /// Every published item has exactly one result, with the right decision.
    void CheckResults() {
        std::lock_guard lock(mu_);
        EXPECT_EQ(results_.size(), expected_.size());
        for (const auto& [id, want] : expected_) {
            const auto& [person, known] = want;
            auto it = results_.find(id);
            if (it == results_.end()) {
                ADD_FAILURE() << "no result for " << id;
                continue;
            }
            EXPECT_EQ(calls_[id], 1) << id;
            const bus::RecognitionResult& r = it->second;
            if (known) {
                EXPECT_EQ(r.decision, "known") << id << " (" << person << ") score " << r.score;
                EXPECT_EQ(r.subject_id, person) << id;
            } else {
                EXPECT_EQ(r.decision, "unknown") << id << " (" << person << ") " << r.subject_id;
            }
        }
        for (const auto& [id, r] : results_) EXPECT_TRUE(expected_.contains(id)) << "unexpected result " << id;
    }

    fg::testing::TmpDir tmp_;
    std::shared_ptr<vision::Engine> engine_;
    std::unique_ptr<vision::Worker> worker_;
    std::shared_ptr<gallery::KeyRing> keys_;
    std::shared_ptr<gallery::Gallery> gallery_;
    std::vector<Probe> probes_;
    std::vector<fs::path> stranger_photos_;
    std::set<std::string> enrolled_;
    std::unique_ptr<NatsServer> server_;
    std::unique_ptr<bus::Bus> bus_;

    std::mutex mu_;
    std::map<std::string, bus::RecognitionResult> results_;
    std::map<std::string, int> calls_;
    /// item id -> the person shown, and whether they were enrolled when it was published.
    std::map<std::string, std::pair<std::string, bool>> expected_;
};

TEST_F(WorkerCluster, ThreeWorkersExactlyOneResultPerItemThroughAKill9) {
    for (const Probe& p : probes_)
        if (p.person != kStranger) enrolled_.insert(p.person);
    ResultConsumer consumer({.region = "hq", .group = "test"}, *bus_,
                            [&](const bus::RecognitionResult& r, const bus::Envelope&) {
                                std::lock_guard lock(mu_);
                                results_[r.item_id] = r;
                                ++calls_[r.item_id];
                            });
    ASSERT_TRUE(consumer.Start().ok());
    std::vector<std::unique_ptr<Child>> workers;
    for (int w = 0; w < 3; ++w) {
        workers.push_back(StartWorker("w" + std::to_string(w)));
        ASSERT_TRUE(workers.back()->started());
    }

    // Phase 1: 100 items, three workers.
    ASSERT_NO_FATAL_FAILURE(Publish(0, 100, probes_));
    ASSERT_TRUE(WaitResults(100, 40s)) << Count() << " of 100 results" << Logs();
    CheckResults();
    std::set<std::string> deciders;
    {
        std::lock_guard lock(mu_);
        for (const auto& [id, r] : results_) deciders.insert(r.worker_id);
    }
    EXPECT_GE(deciders.size(), 2u) << "the load was not shared" << Logs();

    // Phase 2: 100 more; worker 0 is killed with -9 once some of them are answered. Its
    // unacked items come back after the ack wait and go to the survivors.
    ASSERT_NO_FATAL_FAILURE(Publish(100, 200, probes_));
    ASSERT_TRUE(WaitResults(120, 20s)) << Count() << " of 120 results" << Logs();
    workers[0]->Signal(SIGKILL);
    EXPECT_EQ(workers[0]->Wait(5s), std::optional<int>(-1));
    ASSERT_TRUE(WaitResults(200, 30s)) << Count() << " of 200 results" << Logs();
    std::this_thread::sleep_for(std::chrono::milliseconds(kAckWaitMs + 500));  // late repeats, if any
    CheckResults();

    // A person enrolled now is recognised by the running workers (they follow the change log).
    ASSERT_NO_FATAL_FAILURE(Enroll(kStranger, stranger_photos_));
    enrolled_.insert(kStranger);
    std::this_thread::sleep_for(1500ms);
    std::vector<Probe> stranger;
    for (const Probe& p : probes_)
        if (p.person == kStranger) stranger.push_back(p);
    ASSERT_NO_FATAL_FAILURE(Publish(200, 210, stranger));
    ASSERT_TRUE(WaitResults(210, 20s)) << Count() << " of 210 results" << Logs();
    CheckResults();

    // The survivors stop cleanly on SIGTERM (exit 0, stats printed).
    for (int w = 1; w < 3; ++w) workers[static_cast<std::size_t>(w)]->Signal(SIGTERM);
    for (int w = 1; w < 3; ++w) {
        EXPECT_EQ(workers[static_cast<std::size_t>(w)]->Wait(20s), std::optional<int>(0))
            << ReadAll(tmp_ / ("w" + std::to_string(w) + ".err"));
    }
    for (int w = 1; w < 3; ++w) {  // their final stats (a JSON line on stderr), for the log
        std::istringstream err(ReadAll(tmp_ / ("w" + std::to_string(w) + ".err")));
        for (std::string line; std::getline(err, line);)
            if (line.starts_with("{\"")) std::cout << "w" << w << ": " << line << "\n";
    }
    consumer.Stop();
    EXPECT_EQ(consumer.stats().delivered, 210u);
    std::cout << "result consumer: delivered " << consumer.stats().delivered << ", duplicates dropped "
              << consumer.stats().duplicates << "\n";

    // `facegate worker results`: a new group reads every result kept, each item once.
    Child results({"worker", "results", "--bus", server_->url(), "--region", "hq", "--group", "cli",
                   "--count", "210", "--timeout", "20"},
                  tmp_ / "results");
    ASSERT_EQ(results.Wait(30s), std::optional<int>(0)) << ReadAll(tmp_ / "results.err");
    std::istringstream lines(ReadAll(tmp_ / "results.out"));
    std::set<std::string> ids;
    for (std::string line; std::getline(lines, line);) {
        const auto j = nlohmann::json::parse(line);
        EXPECT_TRUE(ids.insert(j.at("item_id").get<std::string>()).second) << line;
    }
    EXPECT_EQ(ids.size(), 210u);
}

}  // namespace
}  // namespace fg::cluster
