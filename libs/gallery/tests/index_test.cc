// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "test_util.h"

namespace fg::gallery {
namespace {

constexpr int kDim = 64;

struct Data {
    std::vector<std::int64_t> ids;
    std::vector<float> vectors;
};

Data Make(int n) {
    Data d;
    for (int i = 0; i < n; ++i) {
        d.ids.push_back(1000 + i);
        auto v = testing::RandomUnit(std::uint32_t(i), kDim);
        d.vectors.insert(d.vectors.end(), v.begin(), v.end());
    }
    return d;
}

// Differential test: every approximate kind must find what exact search finds on noisy probes.
class IndexKinds : public ::testing::TestWithParam<IndexKind> {};

TEST_P(IndexKinds, AgreesWithExactAndSupportsRemoveAndSnapshots) {
    std::printf("seed: identities 0..1999, probes Sample(i, 1, 0.6)\n");
    Data d = Make(2000);
    IndexConfig c{.kind = GetParam(), .dim = kDim, .ivf_nlist = 32, .ivf_nprobe = 8};
    auto idx = FaceIndex::Build(c, d.ids, d.vectors);
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    EXPECT_EQ((*idx)->size(), 2000);
    int hits = 0;
    for (int i = 0; i < 200; ++i) {
        auto nn = (*idx)->Search(testing::Sample(std::uint32_t(i), 1, 0.6f, kDim), 3);
        ASSERT_TRUE(nn.ok());
        hits += (!nn->empty() && nn->front().id == 1000 + i);
    }
    EXPECT_GE(hits, 198);

    std::vector<std::int64_t> gone = {1000, 1001, 1002};
    auto removed = (*idx)->Remove(gone);
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, 3);
    EXPECT_EQ((*idx)->size(), 1997);
    auto nn = (*idx)->Search(testing::RandomUnit(0, kDim), 5);
    ASSERT_TRUE(nn.ok());
    for (const Neighbor& n : *nn) EXPECT_GE(n.id, 1003);

    std::vector<std::int64_t> dup = {1500};
    std::vector<float> v = testing::RandomUnit(9999, kDim);
    if (GetParam() != IndexKind::kIvf) {
        EXPECT_FALSE((*idx)->Add(dup, v).ok());
    }

    auto bytes = (*idx)->Serialize();
    ASSERT_TRUE(bytes.ok());
    auto back = FaceIndex::Deserialize(c, *bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ((*back)->Ids(), (*idx)->Ids());
    EXPECT_EQ((*back)->kind(), (*idx)->kind());
    auto nn2 = (*back)->Search(testing::RandomUnit(0, kDim), 5);
    ASSERT_EQ(nn2->size(), nn->size());
    EXPECT_EQ(nn2->front().id, nn->front().id);

    auto cut = *bytes;
    cut.resize(cut.size() / 2);
    EXPECT_EQ(FaceIndex::Deserialize(c, cut).status().code(), StatusCode::kDataLoss);
    EXPECT_FALSE((*idx)->Search(std::vector<float>(3, 0.f), 1).ok());
}

INSTANTIATE_TEST_SUITE_P(All, IndexKinds,
                         ::testing::Values(IndexKind::kFlat, IndexKind::kHnsw, IndexKind::kIvf),
                         [](const auto& info) { return std::string(IndexKindName(info.param)); });

TEST(Index, AutoPicksExactForSmallGalleries) {
    Data d = Make(100);
    auto idx = FaceIndex::Build({.kind = IndexKind::kAuto, .dim = kDim, .auto_hnsw_above = 1000},
                                d.ids, d.vectors);
    ASSERT_TRUE(idx.ok());
    EXPECT_EQ((*idx)->kind(), IndexKind::kFlat);
    auto big = FaceIndex::Build({.kind = IndexKind::kAuto, .dim = kDim, .auto_hnsw_above = 50},
                                d.ids, d.vectors);
    EXPECT_EQ((*big)->kind(), IndexKind::kHnsw);
    EXPECT_EQ(
        FaceIndex::Build({.kind = IndexKind::kIvf, .dim = kDim}, d.ids, d.vectors).status().code(),
        StatusCode::kFailedPrecondition);
}

TEST(Index, HnswTombstonesCompact) {
    Data d = Make(3000);
    auto idx = FaceIndex::Build({.kind = IndexKind::kHnsw, .dim = kDim}, d.ids, d.vectors);
    ASSERT_TRUE(idx.ok());
    std::vector<std::int64_t> gone(d.ids.begin(), d.ids.begin() + 1500);
    ASSERT_TRUE((*idx)->Remove(gone).ok());
    EXPECT_EQ((*idx)->size(), 1500);
    EXPECT_EQ((*idx)->Ids().size(), 1500u);
    auto nn = (*idx)->Search(testing::Sample(2000, 1, 0.3f, kDim), 1);
    EXPECT_EQ(nn->front().id, 3000);
}

}  // namespace
}  // namespace fg::gallery
