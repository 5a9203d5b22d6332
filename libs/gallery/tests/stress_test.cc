// SPDX-License-Identifier: Apache-2.0
// Concurrency stress: threads enrolling, identifying, deleting and merging on one gallery, and
// two processes writing one SQLite file; afterwards the index must agree with the store.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

using testing::kModel;
using testing::Probe;
using testing::Sample;

// Expected failures of racing operations: the subject was already deleted or merged away.
bool Benign(const Status& s) {
    return s.ok() || s.code() == StatusCode::kNotFound || s.code() == StatusCode::kAlreadyExists;
}

TEST(Stress, ThreadsEnrollIdentifyDeleteMergeAndIndexAgreesWithStore) {
    fg::testing::TmpDir tmp;
    auto g = Gallery::Open({.location = (tmp / "g.db").string(), .keys = testing::TestKeys()});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    Gallery& gal = **g;
    constexpr int kPeople = 120;
    std::atomic<int> errors{0}, identified{0};
    std::atomic<bool> stop{false};
    std::printf("seeds: enrollers 1..2, deleter 3, merger 4, identifiers 5..6\n");
    auto enroller = [&](int which) {
        for (int p = which; p < kPeople; p += 2) {
            std::vector<NewFace> faces = {{Sample(std::uint32_t(p), 0)},
                                          {Sample(std::uint32_t(p), 1)}};
            auto r = gal.Enroll("p" + std::to_string(p), {.model_id = kModel, .force = true},
                                faces);
            if (!r.ok()) {
                std::fprintf(stderr, "enroll: %s\n", r.status().ToString().c_str());
                ++errors;
            }
        }
    };
    auto deleter = [&] {
        std::mt19937 rng(3);
        while (!stop) {
            // A fifth of the people are deleted, racing their enrollment.
            const int p = 5 * int(rng() % (kPeople / 5));
            if (!Benign(gal.DeleteSubject("p" + std::to_string(p)))) ++errors;
            std::this_thread::yield();
        }
    };
    auto merger = [&] {
        std::mt19937 rng(4);
        while (!stop) {
            // p (p % 5 == 1) merged into p + 1 (another person: a curation error).
            const int p = 5 * int(rng() % (kPeople / 5)) + 1;
            if (!Benign(gal.MergeSubjects("p" + std::to_string(p), "p" + std::to_string(p + 1))))
                ++errors;
            std::this_thread::yield();
        }
    };
    auto identifier = [&](int seed) {
        std::mt19937 rng{std::uint32_t(seed)};
        while (!stop) {
            auto id = gal.Identify(Probe(Sample(std::uint32_t(rng() % kPeople), 9)));
            if (!id.ok()) {
                std::fprintf(stderr, "identify: %s\n", id.status().ToString().c_str());
                ++errors;
            } else if (id->known) {
                ++identified;
            }
            auto v = gal.Verify(Probe(Sample(std::uint32_t(rng() % kPeople), 9)),
                                "p" + std::to_string(rng() % kPeople));
            if (!v.ok() && v.status().code() != StatusCode::kNotFound &&
                v.status().code() != StatusCode::kFailedPrecondition)
                ++errors;
        }
    };
    std::vector<std::thread> threads;
    threads.emplace_back(enroller, 0);
    threads.emplace_back(enroller, 1);
    threads.emplace_back(deleter);
    threads.emplace_back(merger);
    threads.emplace_back(identifier, 5);
    threads.emplace_back(identifier, 6);
    threads[0].join();
    threads[1].join();
    stop = true;
    for (size_t i = 2; i < threads.size(); ++i) threads[i].join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_GT(identified.load(), 0);
    Status c = gal.CheckConsistency();
    EXPECT_TRUE(c.ok()) << c.ToString();
    // Every surviving template's owner answers for it, and a reopened gallery agrees too.
    auto store = OpenStore((tmp / "g.db").string());  // the store beside the gallery
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const std::int64_t templates = *(*store)->CountTemplates();
    EXPECT_EQ(gal.Stats()->templates, templates);
    g->reset();
    auto again = Gallery::Open({.location = (tmp / "g.db").string(), .keys = testing::TestKeys()});
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE((*again)->CheckConsistency().ok());
    EXPECT_EQ((*again)->Stats()->templates, templates);
    for (int p = 0; p < kPeople; ++p) {
        auto s = (*again)->GetSubject("p" + std::to_string(p));
        if (!s.ok()) continue;
        auto id = (*again)->Identify(Probe(Sample(std::uint32_t(p), 9)));
        ASSERT_TRUE(id.ok());
        // A merged-away person is answered by the subject that received the templates.
        if (p % 5 != 1) {
            EXPECT_EQ(id->candidates[0].subject_id, "p" + std::to_string(p));
        }
    }
}

// Two processes write the same SQLite file at once (each with its own in-memory index); after
// both finish, a fresh open sees every acknowledged enrollment and an index equal to the store.
TEST(Stress, TwoProcessesOnOneSqliteFile) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    {
        auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
        ASSERT_TRUE(g.ok());
        ASSERT_TRUE(
            (*g)->Enroll("seed", {.model_id = kModel}, std::vector<NewFace>{{Sample(1, 0)}}).ok());
    }
    pid_t pids[2];
    for (int w = 0; w < 2; ++w) {
        pids[w] = fork();
        ASSERT_GE(pids[w], 0);
        if (pids[w] == 0) {
            auto g = Gallery::Open({.location = path, .keys = testing::TestKeys(),
                                    .use_snapshot = false});
            if (!g.ok()) _exit(3);
            for (int i = 0; i < 60; ++i) {
                const int p = 1000 * (w + 1) + i;
                std::vector<NewFace> faces = {{Sample(std::uint32_t(p), 0)},
                                              {Sample(std::uint32_t(p), 1)}};
                if (!(*g)->Enroll("w" + std::to_string(p), {.model_id = kModel, .force = true},
                                  faces)
                         .ok())
                    _exit(4);
                if (i % 3 == 2 && !(*g)->DeleteSubject("w" + std::to_string(p - 1)).ok()) _exit(5);
            }
            // Close writes a snapshot of this process's index, which misses the other's
            // writes: the next open must notice and rebuild.
            (void)(*g)->Close();
            _exit(0);
        }
    }
    for (pid_t pid : pids) {
        int status = 0;
        waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    auto g = Gallery::Open({.location = path, .keys = testing::TestKeys()});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    Status c = (*g)->CheckConsistency();
    EXPECT_TRUE(c.ok()) << c.ToString();
    // 1 + 2 processes x 40 surviving subjects, 2 templates each.
    EXPECT_EQ((*g)->Stats()->subjects, 81);
    EXPECT_EQ((*g)->Stats()->templates, 1 + 160);
    EXPECT_EQ((*g)->Identify(Probe(Sample(2059, 9)))->subject_id, "w2059");
    EXPECT_FALSE((*g)->GetSubject("w1001").ok());
}

}  // namespace
}  // namespace fg::gallery
