// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "../src/kernels.h"
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
                         ::testing::Values(IndexKind::kFlat, IndexKind::kScan, IndexKind::kHnsw,
                                           IndexKind::kIvf),
                         [](const auto& info) { return std::string(IndexKindName(info.param)); });

TEST(Index, AutoPicksExactForSmallGalleries) {
    Data d = Make(100);
    auto idx = FaceIndex::Build({.kind = IndexKind::kAuto, .dim = kDim, .auto_scan_above = 1000},
                                d.ids, d.vectors);
    ASSERT_TRUE(idx.ok());
    EXPECT_EQ((*idx)->kind(), IndexKind::kFlat);
    auto big = FaceIndex::Build({.kind = IndexKind::kAuto, .dim = kDim, .auto_scan_above = 50},
                                d.ids, d.vectors);
    EXPECT_EQ((*big)->kind(), IndexKind::kScan);
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

// Face-shaped data (see `bench gallery --data face`): people spread over few directions,
// photos of one person scattered around its centre. Rows [0, n) are templates; probes are
// other photos of people 0..nq-1.
struct FaceData {
    std::vector<std::int64_t> ids;
    std::vector<float> templates, probes;
};

FaceData MakeFaces(int n, int nq, int dim) {
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    std::vector<float> sb(static_cast<size_t>(dim)), sw(static_cast<size_t>(dim));
    for (int j = 0; j < dim; ++j) {
        sb[size_t(j)] = std::sqrt(std::exp(-j / 12.f));
        sw[size_t(j)] = std::sqrt(0.4f * std::exp(-j / 18.f));
    }
    FaceData f;
    std::vector<float> c(static_cast<size_t>(dim));
    auto photo = [&](std::vector<float>& out) {
        std::vector<float> v(static_cast<size_t>(dim));
        for (int j = 0; j < dim; ++j) v[size_t(j)] = c[size_t(j)] + sw[size_t(j)] * g(rng);
        v = testing::Normalise(std::move(v));
        out.insert(out.end(), v.begin(), v.end());
    };
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < dim; ++j) c[size_t(j)] = sb[size_t(j)] * g(rng);
        f.ids.push_back(10 * i + 7);
        photo(f.templates);
        if (i < nq) photo(f.probes);
    }
    return f;
}

std::int64_t ExactBest(const FaceData& f, const float* q, int dim) {
    float best = -2;
    std::int64_t id = -1;
    for (size_t i = 0; i < f.ids.size(); ++i) {
        float s = 0;
        for (int j = 0; j < dim; ++j) s += q[j] * f.templates[i * size_t(dim) + size_t(j)];
        if (s > best) best = s, id = f.ids[i];
    }
    return id;
}

TEST(ScanIndex, AgreesWithExactSearchOnFaceShapedData) {
    constexpr int kD = 128, kN = 30000, kQ = 300;
    std::printf("seed: 7, %d templates of dim %d, %d probes\n", kN, kD, kQ);
    FaceData f = MakeFaces(kN, kQ, kD);
    auto idx = FaceIndex::Build({.kind = IndexKind::kScan, .dim = kD}, f.ids, f.templates);
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    int agree = 0;
    for (int q = 0; q < kQ; ++q) {
        std::span<const float> probe(&f.probes[size_t(q) * kD], kD);
        auto nn = (*idx)->Search(probe, 5);
        ASSERT_TRUE(nn.ok());
        ASSERT_EQ(nn->size(), 5u);
        EXPECT_TRUE(std::is_sorted(nn->begin(), nn->end(),
                                   [](auto& a, auto& b) { return a.score > b.score; }));
        agree += nn->front().id == ExactBest(f, probe.data(), kD);
    }
    // The bar, on data far more concentrated than faces (~30 effective dims of 128).
    EXPECT_GE(agree, kQ * 99 / 100) << "recall@1 against exact search";
    // The compressed scan costs a fraction of the vectors' bytes.
    EXPECT_LT((*idx)->MemoryBytes(), std::int64_t(kN) * (kD * 4 + 128));
}

TEST(ScanIndex, SmallGalleriesAreExactThenTrainedWhenTheyGrow) {
    constexpr int kD = 64;
    FaceData f = MakeFaces(3000, 50, kD);
    IndexConfig c{.kind = IndexKind::kScan, .dim = kD};
    auto idx = FaceIndex::Build(c, std::span(f.ids).first(500),
                                std::span(f.templates).first(500 * size_t(kD)));
    ASSERT_TRUE(idx.ok());
    // Untrained (500 < 1024): exact, so scores are the true inner products.
    auto nn = (*idx)->Search(std::span(f.probes).first(kD), 500);
    ASSERT_EQ(nn->size(), 500u);
    // Enrolled a batch at a time past the training size, then removed from the middle.
    for (int from = 500; from < 3000; from += 250) {
        ASSERT_TRUE((*idx)
                        ->Add(std::span(f.ids).subspan(size_t(from), 250),
                              std::span(f.templates).subspan(size_t(from) * kD, 250 * size_t(kD)))
                        .ok());
    }
    std::vector<std::int64_t> gone;
    for (int i = 1; i < 3000; i += 3) gone.push_back(f.ids[size_t(i)]);
    EXPECT_EQ(*(*idx)->Remove(gone), std::int64_t(gone.size()));
    EXPECT_EQ((*idx)->size(), 3000 - std::int64_t(gone.size()));
    EXPECT_EQ(*(*idx)->Remove(gone), 0);
    std::vector<std::int64_t> dup = {f.ids[0]};
    EXPECT_EQ((*idx)->Add(dup, std::span(f.templates).first(kD)).code(),
              StatusCode::kAlreadyExists);
    std::vector<std::int64_t> twice = {5, 5};
    std::vector<float> two(2 * size_t(kD), 0.1f);
    EXPECT_EQ((*idx)->Add(twice, two).code(), StatusCode::kAlreadyExists);
    // Every kept template is still found by its own vector; removed ones never come back.
    auto ids = (*idx)->Ids();
    std::vector<std::int64_t> exported;
    std::vector<float> vectors;
    ASSERT_TRUE((*idx)->ExportVectors(exported, vectors).ok());
    ASSERT_EQ(exported.size(), ids.size());
    for (size_t i = 0; i < exported.size(); i += 37) {
        auto hit = (*idx)->Search(std::span(vectors).subspan(i * kD, kD), 3);
        ASSERT_TRUE(hit.ok());
        EXPECT_EQ(hit->front().id, exported[i]);
        for (const Neighbor& n : *hit)
            EXPECT_FALSE(std::binary_search(gone.begin(), gone.end(), n.id));
    }
    // A snapshot restores the same answers; any damage is DataLoss.
    auto bytes = (*idx)->Serialize();
    ASSERT_TRUE(bytes.ok());
    auto back = FaceIndex::Deserialize(c, *bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ((*back)->Ids(), ids);
    for (int q = 0; q < 50; ++q) {
        std::span<const float> probe(&f.probes[size_t(q) * kD], kD);
        auto a = (*idx)->Search(probe, 4), b = (*back)->Search(probe, 4);
        ASSERT_EQ(a->size(), b->size());
        for (size_t i = 0; i < a->size(); ++i) EXPECT_EQ((*a)[i].id, (*b)[i].id);
    }
    for (size_t cut : {size_t(10), bytes->size() / 3, bytes->size() - 1}) {
        auto part = *bytes;
        part.resize(cut);
        EXPECT_EQ(FaceIndex::Deserialize(c, part).status().code(), StatusCode::kDataLoss) << cut;
    }
    auto longer = *bytes;
    longer.push_back(0);
    EXPECT_EQ(FaceIndex::Deserialize(c, longer).status().code(), StatusCode::kDataLoss);
}

TEST(ScanKernels, DispatchedScoresEqualThePortableOnes) {
    std::printf("kernel path: %s\n", std::string(kernels::Level()).c_str());
    std::mt19937 rng(3);
    for (int groups : {1, 3, 9, 64}) {
        std::vector<std::uint8_t> block(size_t(groups) * kernels::kGroupBytes);
        std::vector<std::uint8_t> codes(size_t(8 * groups));
        for (int lane = 0; lane < kernels::kBlock; ++lane) {
            for (auto& c : codes) c = std::uint8_t(rng() % 16);
            if (lane == 5) std::fill(codes.begin(), codes.end(), 15);  // the int16 worst case
            kernels::PutCodes(block.data(), groups, lane, codes.data());
            std::vector<std::uint8_t> back(codes.size());
            kernels::GetCodes(block.data(), groups, lane, back.data());
            ASSERT_EQ(back, codes);
        }
        std::vector<std::int8_t> q(size_t(8 * groups));
        for (auto& w : q) w = std::int8_t(int(rng() % 255) - 127);
        std::fill(q.begin(), q.begin() + 8, std::int8_t(127));
        std::int32_t want[16], got[16];
        kernels::ScoreBlockPortable(block.data(), groups, q.data(), want);
        kernels::ScoreBlock(block.data(), groups, q.data(), got);
        for (int i = 0; i < 16; ++i)
            EXPECT_EQ(got[i], want[i]) << "groups " << groups << " lane " << i;
        // The scan keeps the best rows below the limit, whatever path it takes.
        kernels::TopInts top(3);
        kernels::ScanInt4(block.data(), 1, groups, q.data(), 100, 110, top);
        std::vector<std::pair<std::int32_t, std::int64_t>> all;
        for (int i = 0; i < 10; ++i) all.emplace_back(want[i], 100 + i);
        std::sort(all.rbegin(), all.rend());
        auto kept = top.heap;
        std::sort(kept.rbegin(), kept.rend());
        ASSERT_EQ(kept.size(), 3u);
        for (int i = 0; i < 3; ++i) EXPECT_EQ(kept[size_t(i)].first, all[size_t(i)].first);
    }
    std::vector<float> a(77), b(77);
    double want = 0;
    for (int i = 0; i < 77; ++i) {
        a[size_t(i)] = float(i % 7) - 3.f;
        b[size_t(i)] = 0.25f * float(i % 5);
        want += double(a[size_t(i)]) * b[size_t(i)];
    }
    EXPECT_NEAR(kernels::Dot(a.data(), b.data(), 77), want, 1e-4);
}

}  // namespace
}  // namespace fg::gallery
