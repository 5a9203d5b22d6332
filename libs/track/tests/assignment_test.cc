// SPDX-License-Identifier: Apache-2.0
#include "assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

namespace fg::track::internal {
namespace {

using Pairs = std::vector<std::pair<int, int>>;

// Total cost under the same model as MinCostAssignment: pair costs + limit/2 per unmatched side.
double Total(const std::vector<float>& c, int rows, int cols, float limit, const Pairs& pairs) {
    double t = (rows + cols - 2.0 * static_cast<double>(pairs.size())) * limit / 2;
    for (auto [r, k] : pairs) {
        t += c[r * cols + k];
    }
    return t;
}

// Exhaustive reference: every partial matching restricted to allowed pairs.
double BruteForce(const std::vector<float>& c, int rows, int cols, float limit) {
    double best = 1e18;
    std::vector<char> col_used(cols, 0);
    Pairs cur;
    std::function<void(int)> go = [&](int r) {
        if (r == rows) {
            best = std::min(best, Total(c, rows, cols, limit, cur));
            return;
        }
        go(r + 1);  // leave row r unmatched
        for (int k = 0; k < cols; ++k) {
            if (!col_used[k] && c[r * cols + k] <= limit) {
                col_used[k] = 1;
                cur.emplace_back(r, k);
                go(r + 1);
                cur.pop_back();
                col_used[k] = 0;
            }
        }
    };
    go(0);
    return best;
}

TEST(AssignmentTest, Empty) {
    EXPECT_TRUE(MinCostAssignment({}, 0, 3, 0.8f).empty());
    EXPECT_TRUE(MinCostAssignment({}, 2, 0, 0.8f).empty());
}

TEST(AssignmentTest, PrefersGlobalOptimumOverGreedy) {
    // Greedy would take (0,0)=0.1 then (1,1)=0.7 (0.8 total); optimal is (0,1)+(1,0) = 0.4.
    const std::vector<float> c = {0.1f, 0.2f,  //
                                  0.2f, 0.7f};
    EXPECT_EQ(MinCostAssignment(c, 2, 2, 0.8f), (Pairs{{0, 1}, {1, 0}}));
}

TEST(AssignmentTest, NeverMakesPairsAboveTheLimit) {
    const std::vector<float> c = {0.9f, 0.95f, 0.1f,  //
                                  0.85f, 0.99f, 1.0f};
    EXPECT_EQ(MinCostAssignment(c, 2, 3, 0.8f), (Pairs{{0, 2}}));
}

TEST(AssignmentTest, OneGoodPairBeatsTwoPoorOnes) {
    // Two pairs at 0.75 each (1.5) lose to one at 0.0 plus two unmatched at 0.4 each (0.8).
    const std::vector<float> c = {0.75f, 0.0f,  //
                                  0.9f, 0.75f};
    EXPECT_EQ(MinCostAssignment(c, 2, 2, 0.8f), (Pairs{{0, 1}}));
}

TEST(AssignmentTest, MatchesBruteForceOnRandomMatrices) {
    constexpr unsigned kSeed = 7767517;
    SCOPED_TRACE("seed " + std::to_string(kSeed));
    std::mt19937 rng(kSeed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (int trial = 0; trial < 300; ++trial) {
        const int rows = 1 + static_cast<int>(rng() % 5);
        const int cols = 1 + static_cast<int>(rng() % 5);
        const float limit = 0.3f + 0.6f * u(rng);
        std::vector<float> c(rows * cols);
        for (float& v : c) {
            v = u(rng);
        }
        const Pairs got = MinCostAssignment(c, rows, cols, limit);
        std::vector<char> rs(rows, 0), cs(cols, 0);
        for (auto [r, k] : got) {
            ASSERT_FALSE(rs[r]++);
            ASSERT_FALSE(cs[k]++);
            ASSERT_LE(c[r * cols + k], limit);
        }
        EXPECT_NEAR(Total(c, rows, cols, limit, got), BruteForce(c, rows, cols, limit), 1e-5)
            << "trial " << trial;
    }
}

}  // namespace
}  // namespace fg::track::internal
