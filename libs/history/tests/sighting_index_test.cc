// SPDX-License-Identifier: Apache-2.0
#include "fg/history/sighting_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "../src/vec_kernels.h"

namespace fg::history {
namespace {

constexpr int kDim = 512;

std::vector<float> RandomUnit(std::mt19937& rng) {
    std::normal_distribution<float> g;
    std::vector<float> v(kDim);
    double n = 0;
    for (float& x : v) {
        x = g(rng);
        n += double(x) * x;
    }
    for (float& x : v) x = float(x / std::sqrt(n));
    return v;
}

// Face-like data: people with several sightings each (genuine pairs ~0.6, impostors ~0).
std::vector<std::vector<float>> FaceLike(std::mt19937& rng, int people, int each) {
    std::vector<std::vector<float>> out;
    for (int p = 0; p < people; ++p) {
        const auto c = RandomUnit(rng);
        for (int i = 0; i < each; ++i) {
            auto n = RandomUnit(rng);
            std::vector<float> v(kDim);
            double nn = 0;
            for (int k = 0; k < kDim; ++k) {
                v[size_t(k)] = 0.77f * c[size_t(k)] + 0.63f * n[size_t(k)];
                nn += double(v[size_t(k)]) * v[size_t(k)];
            }
            for (float& x : v) x = float(x / std::sqrt(nn));
            out.push_back(std::move(v));
        }
    }
    return out;
}

std::vector<std::pair<std::int64_t, float>> Brute(const std::vector<std::vector<float>>& data,
                                                  const std::vector<std::int64_t>& ids,
                                                  const std::vector<float>& q, int k, float min) {
    std::vector<std::pair<std::int64_t, float>> all;
    for (size_t i = 0; i < data.size(); ++i) {
        double s = 0;
        for (int j = 0; j < kDim; ++j) s += double(q[size_t(j)]) * data[i][size_t(j)];
        if (s >= min) all.emplace_back(ids[i], float(s));
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.second > b.second; });
    if (all.size() > size_t(k)) all.resize(size_t(k));
    return all;
}

TEST(VecKernelsTest, HalfRoundTrip) {
    for (float f : {0.0f, 1.0f, -1.0f, 0.5f, 1e-5f, -3e-7f, 65504.0f, 0.0439f, -0.12345f}) {
        const float back = kernels::HalfToFloat(kernels::FloatToHalf(f));
        EXPECT_NEAR(back, f, std::fabs(f) * 1e-3f + 6e-8f) << f;
    }
    EXPECT_TRUE(std::isinf(kernels::HalfToFloat(kernels::FloatToHalf(1e6f))));
}

TEST(SightingIndexTest, AllCodecsAgreeWithBruteForce) {
    std::mt19937 rng(1);
    const auto data = FaceLike(rng, 200, 5);
    std::vector<std::int64_t> ids;
    for (size_t i = 0; i < data.size(); ++i) ids.push_back(std::int64_t(i) * 3 + 7);
    for (SightingCodec codec : {SightingCodec::kFloat32, SightingCodec::kFloat16, SightingCodec::kInt8}) {
        SightingIndex index(kDim, codec);
        for (size_t i = 0; i < data.size(); ++i) ASSERT_TRUE(index.Add(ids[i], data[i]).ok());
        ASSERT_EQ(index.size(), data.size());
        int recalled = 0, wanted = 0;
        float max_err = 0;
        for (int p = 0; p < 50; ++p) {
            const auto& q = data[size_t(p) * 5];  // a sighting of person p as probe
            const auto want = Brute(data, ids, q, 10, 0.3f);
            const auto got = index.Search(q, 10, 0.3f);
            ASSERT_LE(got.size(), 10u);
            for (size_t i = 1; i < got.size(); ++i) ASSERT_GE(got[i - 1].second, got[i].second);
            for (const auto& [id, s] : got) ASSERT_GE(s, 0.3f);
            for (const auto& w : want) {
                ++wanted;
                auto it = std::find_if(got.begin(), got.end(), [&](auto& g) { return g.first == w.first; });
                if (it != got.end()) {
                    ++recalled;
                    max_err = std::max(max_err, std::fabs(it->second - w.second));
                }
            }
        }
        const double recall = double(recalled) / wanted;
        if (codec == SightingCodec::kFloat32) {
            EXPECT_EQ(recall, 1.0);
            EXPECT_LT(max_err, 1e-5f);
        } else {
            // Each probe's 5 sightings (>= 0.5) are far above the 0.3 floor: full recall.
            EXPECT_GE(recall, 0.999) << int(codec);
            EXPECT_LT(max_err, codec == SightingCodec::kInt8 ? 3e-3f : 1e-3f) << int(codec);
        }
        EXPECT_GT(index.MemoryBytes(), data.size() * size_t(kDim) * (codec == SightingCodec::kInt8 ? 1 : 2));
    }
}

TEST(SightingIndexTest, RemoveReplaceAndBadInput) {
    std::mt19937 rng(2);
    SightingIndex index(kDim);
    std::vector<std::vector<float>> v;
    for (int i = 0; i < 20; ++i) {
        v.push_back(RandomUnit(rng));
        ASSERT_TRUE(index.Add(i, v.back()).ok());
    }
    EXPECT_EQ(index.Search(v[3], 1, 0.9f).at(0).first, 3);
    index.Remove(3);
    index.Remove(999);  // unknown: ignored
    EXPECT_EQ(index.size(), 19u);
    EXPECT_TRUE(index.Search(v[3], 1, 0.9f).empty());
    // The row moved into 3's place is still found.
    EXPECT_EQ(index.Search(v[19], 1, 0.9f).at(0).first, 19);
    // Re-adding an id replaces its embedding.
    ASSERT_TRUE(index.Add(5, v[3]).ok());
    EXPECT_EQ(index.size(), 19u);
    EXPECT_EQ(index.Search(v[3], 1, 0.9f).at(0).first, 5);
    EXPECT_TRUE(index.Search(v[5], 1, 0.9f).empty());

    EXPECT_EQ(index.Add(50, std::vector<float>(kDim - 1, 0.0f)).code(), StatusCode::kInvalidArgument);
    auto bad = v[0];
    bad[7] = std::numeric_limits<float>::infinity();
    EXPECT_EQ(index.Add(51, bad).code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(index.Search(std::vector<float>(3, 0.0f), 5, 0).empty());
    EXPECT_TRUE(index.Search(v[0], 0, 0).empty());
    EXPECT_EQ(index.size(), 19u);
    SightingIndex empty(kDim);
    EXPECT_TRUE(empty.Search(v[0], 5, -1).empty());
}

TEST(SightingIndexTest, ConcurrentSearchAndAdd) {
    std::mt19937 rng(4);
    SightingIndex index(kDim);
    std::vector<std::vector<float>> v;
    for (int i = 0; i < 200; ++i) v.push_back(RandomUnit(rng));
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(index.Add(i, v[size_t(i)]).ok());
    std::thread writer([&] {
        for (int i = 100; i < 200; ++i) {
            ASSERT_TRUE(index.Add(i, v[size_t(i)]).ok());
            index.Remove(i - 100);
        }
    });
    for (int r = 0; r < 200; ++r) {
        const auto got = index.Search(v[size_t(r)], 3, 0.9f);
        ASSERT_LE(got.size(), 1u);
        if (!got.empty()) {
            ASSERT_EQ(got[0].first, r);
        }
    }
    writer.join();
    EXPECT_EQ(index.size(), 100u);
}

}  // namespace
}  // namespace fg::history
