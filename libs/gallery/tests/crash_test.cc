// SPDX-License-Identifier: Apache-2.0
// Fault tests in child processes: kill -9 in the middle of a bulk enrollment, a delete, a merge
// and a re-embedding (key rotation: integrity_test.cc), and a full disk. After each kill the
// gallery is reopened and checked through its index (identify), not only the store's counts.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

using testing::kModel;
using testing::Probe;
using testing::Sample;

/// Identify with a fresh shot of `identity`; the subject it answers ("" when unknown).
std::string Who(Gallery& g, std::uint32_t identity, const std::string& model = kModel) {
    auto id = g.Identify(Probe(Sample(identity, 97), model));
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() && id->known ? id->subject_id : "";
}

/// Forks `child` (which writes one uint32 per acknowledged step to the fd it is given and
/// never returns), SIGKILLs it after `delay`, and returns the acknowledged steps.
template <typename Child>
std::vector<std::uint32_t> RunAndKill(Child child, std::chrono::milliseconds delay) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    EXPECT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    std::this_thread::sleep_for(delay);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    std::vector<std::uint32_t> acked;
    std::uint32_t n;
    while (read(fds[0], &n, sizeof n) == sizeof n) acked.push_back(n);
    close(fds[0]);
    return acked;
}

void Ack(int fd, std::uint32_t n) {
    if (write(fd, &n, sizeof n) != sizeof n) _exit(5);
}

/// Subjects s0..s<n-1>, identity 5000 + i, 3 templates each (with crops when asked).
void EnrollSubjects(const std::string& path, int n, bool crops) {
    GalleryOptions o{.location = path, .keys = testing::TestKeys()};
    if (crops) o.default_settings = nlohmann::json{{"keep_crops", true}};
    auto g = Gallery::Open(o);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    std::vector<BulkFace> faces;
    for (int i = 0; i < n; ++i) {
        for (std::uint32_t s = 0; s < 3; ++s) {
            NewFace f{Sample(std::uint32_t(5000 + i), s)};
            if (crops) {
                f.crop.resize(8);
                const std::uint32_t id = std::uint32_t(5000 + i);
                std::memcpy(f.crop.data(), &id, 4);
                std::memcpy(f.crop.data() + 4, &s, 4);
            }
            faces.push_back({"s" + std::to_string(i), std::move(f)});
        }
    }
    auto r = (*g)->EnrollBulk(faces, {.model_id = kModel, .force = true});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
}

// The child enrolls subjects c<round>_<i> with 5 templates each and reports every
// acknowledged enrollment (OK returned => durable) on the pipe, then gets SIGKILLed.
[[noreturn]] void BulkEnrollChild(const std::string& path, int round, int out_fd) {
    auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
    if (!g.ok()) _exit(3);
    for (int i = 0;; ++i) {
        std::vector<NewFace> faces;
        for (int s = 0; s < 5; ++s)
            faces.push_back({Sample(std::uint32_t(round * 100000 + i), std::uint32_t(s))});
        const std::string id = "c" + std::to_string(round) + "_" + std::to_string(i);
        // force: the child does not search (keeps it free of thread pools across fork).
        auto r = (*g)->Enroll(id, {.model_id = kModel, .force = true}, faces);
        if (!r.ok()) _exit(4);
        const std::uint32_t n = std::uint32_t(i);
        if (write(out_fd, &n, sizeof n) != sizeof n) _exit(5);
    }
}

TEST(Crash, KillNineDuringBulkEnrollLosesNothingAcknowledged) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    std::mt19937 rng(20240601);
    std::printf("seed 20240601\n");
    std::set<std::string> acknowledged;
    constexpr int kRounds = 25;
    for (int round = 0; round < kRounds; ++round) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            BulkEnrollChild(path, round, fds[1]);
        }
        close(fds[1]);
        std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 120));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
        std::uint32_t n;
        while (read(fds[0], &n, sizeof n) == sizeof n) {
            acknowledged.insert("c" + std::to_string(round) + "_" + std::to_string(n));
        }
        close(fds[0]);

        auto g =
            Gallery::Open({.location = path, .keys = testing::TestKeys(), .use_snapshot = false});
        ASSERT_TRUE(g.ok()) << "round " << round << ": " << g.status().ToString();
        // The store itself, beside the gallery: what survived on disk.
        auto store = OpenStore(path);
        ASSERT_TRUE(store.ok()) << store.status().ToString();
        for (const std::string& id : acknowledged) {
            auto s = (*g)->GetSubject(id);
            ASSERT_TRUE(s.ok()) << "round " << round << ": acknowledged " << id << " lost";
            ASSERT_EQ(s->face_count, 5) << id << " half-written";
        }
        // At most one unacknowledged enrollment may have committed (killed after commit, before
        // the report); never a partial one.
        const std::int64_t subjects = *(*store)->CountSubjects();
        EXPECT_LE(subjects - std::int64_t(acknowledged.size()), round + 1);
        const std::int64_t templates = *(*store)->CountTemplates();
        EXPECT_EQ(templates, subjects * 5);
        auto stats = (*g)->Stats();
        EXPECT_EQ(stats->templates, templates);
        // What identification sees: every subject acknowledged this round is found by the index.
        ASSERT_TRUE((*g)->CheckConsistency().ok());
        for (const std::string& id : acknowledged) {
            if (id.rfind("c" + std::to_string(round) + "_", 0) != 0 && round + 1 != kRounds)
                continue;  // earlier rounds were checked then (all of them in the last round)
            const auto us = id.find('_');
            const std::uint32_t r = std::uint32_t(std::stoi(id.substr(1, us - 1)));
            const std::uint32_t i = std::uint32_t(std::stoi(id.substr(us + 1)));
            ASSERT_EQ(Who(**g, r * 100000 + i), id) << "round " << round;
        }
        if (!acknowledged.empty()) {
            const std::string probe_id = *acknowledged.rbegin();
            auto templates_of = *(*g)->ListFaces(probe_id);
            EXPECT_EQ(templates_of.size(), 5u);
        }
    }
    std::printf("%zu acknowledged enrollments survived %d kills\n", acknowledged.size(), kRounds);
    EXPECT_GT(acknowledged.size(), size_t(kRounds));
}

TEST(Crash, KillNineDuringDeletesLosesNoAcknowledgedDelete) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    constexpr int kSubjects = 400;
    ASSERT_NO_FATAL_FAILURE(EnrollSubjects(path, kSubjects, false));
    std::set<std::uint32_t> deleted;
    std::uint32_t next = 0;
    for (int round = 0; round < 6 && next < kSubjects; ++round) {
        const std::uint32_t first = next;
        auto acked = RunAndKill(
            [&](int fd) {
                auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
                if (!g.ok()) _exit(3);
                for (std::uint32_t i = first; i < kSubjects; ++i) {
                    if (!(*g)->DeleteSubject("s" + std::to_string(i)).ok()) _exit(4);
                    Ack(fd, i);
                }
                for (;;) pause();
            },
            std::chrono::milliseconds(40 + 30 * round));
        for (std::uint32_t i : acked) deleted.insert(i);
        next = acked.empty() ? next : acked.back() + 1;
        auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        ASSERT_TRUE((*g)->CheckConsistency().ok());
        // The one delete in flight at the kill may have committed without its ack: skip it.
        if (next < kSubjects && (*g)->GetSubject("s" + std::to_string(next)).status().code() ==
                                    StatusCode::kNotFound) {
            deleted.insert(next++);
        }
        for (std::uint32_t i = 0; i < kSubjects; ++i) {
            const std::string id = "s" + std::to_string(i);
            if (deleted.count(i)) {
                ASSERT_EQ((*g)->GetSubject(id).status().code(), StatusCode::kNotFound) << id;
                ASSERT_NE(Who(**g, 5000 + i), id) << id << " deleted but still identified";
            } else if (i % 7 == 0 || i == next) {
                ASSERT_EQ(Who(**g, 5000 + i), id) << id << " lost";
            }
        }
    }
    EXPECT_GT(deleted.size(), 0u);
}

TEST(Crash, KillNineDuringMergesKeepsEveryFaceWithOneOwner) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    constexpr int kPairs = 150;
    ASSERT_NO_FATAL_FAILURE(EnrollSubjects(path, 2 * kPairs, false));
    std::set<std::uint32_t> merged;  // pair k: s(2k+1) merged into s(2k)
    std::uint32_t next = 0;
    for (int round = 0; round < 5 && next < kPairs; ++round) {
        const std::uint32_t first = next;
        auto acked = RunAndKill(
            [&](int fd) {
                auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
                if (!g.ok()) _exit(3);
                for (std::uint32_t k = first; k < kPairs; ++k) {
                    if (!(*g)->MergeSubjects("s" + std::to_string(2 * k + 1),
                                             "s" + std::to_string(2 * k))
                             .ok())
                        _exit(4);
                    Ack(fd, k);
                }
                for (;;) pause();
            },
            std::chrono::milliseconds(40 + 30 * round));
        for (std::uint32_t k : acked) merged.insert(k);
        next = acked.empty() ? next : acked.back() + 1;
        // Reopened (integrity checked: a merge re-seals the moved templates for their new
        // subject in its own transaction, so no row may be left bound to the old one).
        auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        ASSERT_TRUE((*g)->CheckConsistency().ok());
        if (next < kPairs && (*g)->GetSubject("s" + std::to_string(2 * next + 1)).status().code() ==
                                 StatusCode::kNotFound) {
            merged.insert(next++);
        }
        for (std::uint32_t k = 0; k < kPairs; ++k) {
            const std::string into = "s" + std::to_string(2 * k);
            const std::string from = "s" + std::to_string(2 * k + 1);
            ASSERT_EQ(Who(**g, 5000 + 2 * k), into);
            ASSERT_EQ(Who(**g, 5000 + 2 * k + 1), merged.count(k) ? into : from) << "pair " << k;
            auto v = (*g)->Verify(Probe(Sample(5000 + 2 * k + 1, 97)), merged.count(k) ? into : from);
            ASSERT_TRUE(v.ok()) << v.status().ToString();
        }
    }
    EXPECT_GT(merged.size(), 0u);
}

TEST(Crash, KillNineDuringReembedLeavesOneModel) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    constexpr int kSubjects = 300;
    ASSERT_NO_FATAL_FAILURE(EnrollSubjects(path, kSubjects, true));
    std::mt19937 rng(7);
    bool switched = false;
    for (int round = 0; round < 4 && !switched; ++round) {
        auto acked = RunAndKill(
            [&](int fd) {
                auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
                if (!g.ok()) _exit(3);
                // The "new model": the same identities (the crop holds identity and shot).
                auto embed = [](std::span<const std::uint8_t> crop) -> Result<std::vector<float>> {
                    std::uint32_t id, shot;
                    std::memcpy(&id, crop.data(), 4);
                    std::memcpy(&shot, crop.data() + 4, 4);
                    return Sample(id, shot);
                };
                if (!(*g)->Reembed("model-b@1", embed, std::nullopt).ok()) _exit(4);
                Ack(fd, 1);
                for (;;) pause();
            },
            std::chrono::milliseconds(20 + rng() % 200));
        auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        ASSERT_TRUE((*g)->CheckConsistency().ok());
        const std::string model = (*g)->model_id();
        // All or nothing: one transaction.
        ASSERT_TRUE(model == kModel || model == "model-b@1") << model;
        if (!acked.empty()) ASSERT_EQ(model, "model-b@1");
        switched = model == "model-b@1";
        for (int i = 0; i < kSubjects; i += 5)
            ASSERT_EQ(Who(**g, std::uint32_t(5000 + i), model), "s" + std::to_string(i));
    }
}

TEST(Crash, DiskFullFailsCleanlyAndRecovers) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    {
        auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
        ASSERT_TRUE(g.ok());
        ASSERT_TRUE(
            (*g)->Enroll("base", {.model_id = kModel}, std::vector<NewFace>{{Sample(1, 0)}}).ok());
    }
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // A file-size limit is how a test gets ENOSPC-like failures without filling a disk.
        signal(SIGXFSZ, SIG_IGN);
        auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
        if (!g.ok()) _exit(3);
        rlimit lim{};
        lim.rlim_cur = lim.rlim_max = rlim_t(std::filesystem::file_size(path) + 8192);
        setrlimit(RLIMIT_FSIZE, &lim);
        std::vector<NewFace> faces;
        for (int s = 0; s < 2000; ++s) faces.push_back({Sample(std::uint32_t(9000 + s), 0)});
        auto r = (*g)->Enroll("big", {.model_id = kModel, .force = true}, faces);
        if (r.ok()) _exit(10);
        std::fprintf(stderr, "child: %s\n", r.status().ToString().c_str());
        _exit(r.status().code() == StatusCode::kResourceExhausted ? 0
                                                                  : 20 + int(r.status().code()));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "expected RESOURCE_EXHAUSTED from the enrollment";
    auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ((*g)->Stats()->templates, 1);
    EXPECT_EQ((*g)->GetSubject("big").status().code(), StatusCode::kNotFound);
    // The fault has ended: the same enrollment now succeeds.
    std::vector<NewFace> faces;
    for (int s = 0; s < 2000; ++s) faces.push_back({Sample(std::uint32_t(9000 + s), 0)});
    auto r = (*g)->Enroll("big", {.model_id = kModel, .force = true}, faces);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*g)->Stats()->templates, 2001);
}

}  // namespace
}  // namespace fg::gallery
