// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/dedupe.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace fg::bus {
namespace {

TEST(DedupeWindow, FirstSeenOncePerId) {
    DedupeWindow w(10);
    EXPECT_TRUE(w.FirstSeen("a"));
    EXPECT_TRUE(w.FirstSeen("b"));
    EXPECT_FALSE(w.FirstSeen("a"));
    EXPECT_FALSE(w.FirstSeen("b"));
    EXPECT_EQ(w.duplicates(), 2u);
    EXPECT_EQ(w.size(), 2u);
    EXPECT_TRUE(w.Contains("a"));
    EXPECT_FALSE(w.Contains("c"));
}

TEST(DedupeWindow, RemembersExactlyTheLastCapacityIds) {
    DedupeWindow w(3);
    for (const char* id : {"1", "2", "3", "4"}) EXPECT_TRUE(w.FirstSeen(id));
    EXPECT_EQ(w.size(), 3u);           // bounded memory
    EXPECT_FALSE(w.Contains("1"));     // fell out of the window
    EXPECT_FALSE(w.FirstSeen("2"));    // still inside: a duplicate
    EXPECT_TRUE(w.FirstSeen("1"));     // outside: looks new again (the documented limit)
}

TEST(DedupeWindow, ForgetLetsARedeliveryThrough) {
    DedupeWindow w(8);
    EXPECT_TRUE(w.FirstSeen("x"));
    w.Forget("x");  // processing failed
    EXPECT_TRUE(w.FirstSeen("x"));
    EXPECT_FALSE(w.FirstSeen("x"));
}

TEST(DedupeWindow, ConcurrentCallersAgreeOnOneWinnerPerId) {
    DedupeWindow w(100000);
    std::atomic<int> firsts{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                if (w.FirstSeen("id" + std::to_string(i))) firsts.fetch_add(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(firsts.load(), 2000);
    EXPECT_EQ(w.duplicates(), 6000u);
}

}  // namespace
}  // namespace fg::bus
