// SPDX-License-Identifier: Apache-2.0
// Fault tests in child processes: kill -9 in the middle of a bulk enrollment, and a full disk.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

using testing::kModel;
using testing::Sample;

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
        if (!acknowledged.empty()) {
            const std::string probe_id = *acknowledged.rbegin();
            auto templates_of = *(*g)->ListFaces(probe_id);
            EXPECT_EQ(templates_of.size(), 5u);
        }
    }
    std::printf("%zu acknowledged enrollments survived %d kills\n", acknowledged.size(), kRounds);
    EXPECT_GT(acknowledged.size(), size_t(kRounds));
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
