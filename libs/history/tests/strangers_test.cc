// SPDX-License-Identifier: Apache-2.0
#include "fg/history/strangers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

namespace fg::history {
namespace {

constexpr int kDim = 128;

std::vector<float> Normalize(std::vector<float> v) {
    double n = 0;
    for (float x : v) n += double(x) * x;
    for (float& x : v) x = float(x / std::sqrt(n));
    return v;
}

std::vector<float> RandomUnit(std::mt19937& rng) {
    std::normal_distribution<float> g;
    std::vector<float> v(kDim);
    for (float& x : v) x = g(rng);
    return Normalize(v);
}

// A sighting of `center`: cosine to the center sqrt(same), so two sightings of one person
// score about `same` (0.6: a typical genuine pair) and two people about 0.
std::vector<float> Sighting(const std::vector<float>& center, std::mt19937& rng,
                            float same = 0.6f) {
    const auto noise = RandomUnit(rng);
    const float a = std::sqrt(same), b = std::sqrt(1 - same);
    std::vector<float> v(kDim);
    for (int i = 0; i < kDim; ++i) v[size_t(i)] = a * center[size_t(i)] + b * noise[size_t(i)];
    return Normalize(v);
}

float Cos(const std::vector<float>& a, const std::vector<float>& b) {
    float s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

TEST(StrangersTest, GroupsSightingsOfOnePersonAndKeepsPeopleApart) {
    std::mt19937 rng(7);
    constexpr int kPeople = 30, kEach = 12;
    std::vector<std::vector<float>> centers;
    for (int p = 0; p < kPeople; ++p) centers.push_back(RandomUnit(rng));
    std::vector<std::pair<int, std::vector<float>>> sightings;
    for (int p = 0; p < kPeople; ++p)
        for (int i = 0; i < kEach; ++i) sightings.emplace_back(p, Sighting(centers[size_t(p)], rng));
    std::shuffle(sightings.begin(), sightings.end(), rng);

    StrangerClusterer c({.threshold = 0.40f});
    std::int64_t next = 1;
    std::map<std::int64_t, std::set<int>> people_of;
    std::map<int, std::set<std::int64_t>> strangers_of;
    for (size_t i = 0; i < sightings.size(); ++i) {
        const auto m = c.Assign(std::int64_t(i + 100), sightings[i].second, 1.0f, next);
        ASSERT_NE(m.stranger_id, 0);
        if (m.created) ++next;
        EXPECT_EQ(c.StrangerOf(std::int64_t(i + 100)), m.stranger_id);
        people_of[m.stranger_id].insert(sightings[i].first);
        strangers_of[sightings[i].first].insert(m.stranger_id);
    }
    for (const auto& [id, people] : people_of) EXPECT_EQ(people.size(), 1u) << "stranger " << id;
    for (const auto& [p, ids] : strangers_of) EXPECT_EQ(ids.size(), 1u) << "person " << p;
    EXPECT_EQ(c.size(), size_t(kPeople));
}

// A bridge sighting halfway between A and B joins A; B's sightings match the bridge exemplar
// above the threshold but not A's centroid. Single linkage swallows B; the guard does not.
TEST(StrangersTest, CentroidGuardStopsChaining) {
    for (StrangerRule rule : {StrangerRule::kExemplar, StrangerRule::kExemplarAndCentroid}) {
        std::mt19937 rng(11);
        const auto a = RandomUnit(rng);
        auto b = RandomUnit(rng);
        std::vector<float> bridge(kDim);
        for (int i = 0; i < kDim; ++i) bridge[size_t(i)] = a[size_t(i)] + b[size_t(i)];
        bridge = Normalize(bridge);
        StrangerClusterer c({.threshold = 0.40f, .rule = rule});
        std::int64_t sid = 1;
        for (int i = 0; i < 6; ++i) c.Assign(sid++, Sighting(a, rng, 0.8f), 1.0f, 1);
        ASSERT_EQ(c.size(), 1u);
        const auto mb = c.Assign(sid++, bridge, 2.0f, 2);
        ASSERT_EQ(mb.stranger_id, 1);  // the bridge is closer to A than the threshold
        std::set<std::int64_t> b_strangers;
        for (int i = 0; i < 6; ++i) {
            const auto v = Sighting(b, rng, 0.8f);
            ASSERT_GE(Cos(v, bridge), 0.40f);
            b_strangers.insert(c.Assign(sid++, v, 1.0f, 2).stranger_id);
        }
        if (rule == StrangerRule::kExemplar) {
            EXPECT_TRUE(b_strangers.count(1)) << "single linkage should chain (test premise)";
        } else {
            EXPECT_EQ(b_strangers, std::set<std::int64_t>{2});
        }
    }
}

TEST(StrangersTest, MergeRemoveAndRestore) {
    std::mt19937 rng(3);
    const auto a = RandomUnit(rng);
    const auto b = RandomUnit(rng);
    StrangerClusterer c({.threshold = 0.40f, .max_exemplars = 3});
    for (int i = 0; i < 5; ++i) c.Restore(10, 100 + i, Sighting(a, rng), float(i));
    for (int i = 0; i < 5; ++i) c.Restore(20, 200 + i, Sighting(b, rng), float(i));
    EXPECT_EQ(c.size(), 2u);
    EXPECT_EQ(c.Members(10).size(), 5u);
    // Restored strangers match new sightings.
    EXPECT_EQ(c.Assign(105, Sighting(a, rng), 1, 99).stranger_id, 10);
    EXPECT_EQ(c.Assign(205, Sighting(b, rng), 1, 99).stranger_id, 20);

    c.Merge(20, 10);
    EXPECT_EQ(c.size(), 1u);
    EXPECT_EQ(c.Members(10).size(), 12u);
    EXPECT_TRUE(c.Members(20).empty());
    EXPECT_EQ(c.StrangerOf(203), 10);
    // Both people now match the merged stranger (its exemplars come from both).
    EXPECT_EQ(c.Assign(300, Sighting(b, rng, 0.8f), 1, 99).stranger_id, 10);
    c.Merge(10, 10);   // no-op
    c.Merge(77, 10);   // unknown: no-op
    EXPECT_EQ(c.size(), 1u);

    c.RemoveSighting(300);
    c.RemoveSighting(100);
    c.RemoveSighting(12345);  // unknown
    EXPECT_EQ(c.StrangerOf(100), 0);
    EXPECT_EQ(c.Members(10).size(), 11u);
    c.Remove(10);
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(c.StrangerOf(203), 0);
    // A removed (named) stranger's person now founds a new stranger.
    const auto m = c.Assign(400, Sighting(a, rng), 1, 30);
    EXPECT_TRUE(m.created);
    EXPECT_EQ(m.stranger_id, 30);
    // Removing a stranger's only sighting removes the stranger.
    c.RemoveSighting(400);
    EXPECT_EQ(c.size(), 0u);
}

TEST(StrangersTest, ManyStrangersStayConsistentUnderChurn) {
    std::mt19937 rng(5);
    std::vector<std::vector<float>> centers;
    for (int p = 0; p < 60; ++p) centers.push_back(RandomUnit(rng));
    StrangerClusterer c({.threshold = 0.40f, .max_exemplars = 4});
    std::int64_t next = 1;
    std::map<std::int64_t, int> person_of_stranger;
    for (int i = 0; i < 900; ++i) {
        const int p = int(rng() % 60);
        const auto m = c.Assign(i + 1, Sighting(centers[size_t(p)], rng), float(rng() % 10), next);
        if (m.created) {
            ++next;
            person_of_stranger[m.stranger_id] = p;
        } else {
            ASSERT_EQ(person_of_stranger[m.stranger_id], p);
        }
        if (i % 50 == 49) {  // churn: dismiss one stranger, purge some sightings
            c.Remove(c.StrangerOf(i + 1));
            for (int k = 0; k < 10; ++k) c.RemoveSighting(std::int64_t(rng() % std::uint32_t(i + 1)) + 1);
        }
    }
    EXPECT_LE(c.size(), 60u);
}

TEST(StrangersTest, RejectsBadEmbeddings) {
    StrangerClusterer c({});
    EXPECT_EQ(c.Assign(1, {}, 1, 5).stranger_id, 0);
    std::vector<float> v(kDim, 0.0f);
    v[0] = 1;
    EXPECT_TRUE(c.Assign(1, v, 1, 5).created);
    std::vector<float> w(kDim + 1, 0.0f);
    EXPECT_EQ(c.Assign(2, w, 1, 6).stranger_id, 0);  // other dimension
    v[1] = std::nanf("");
    EXPECT_EQ(c.Assign(3, v, 1, 7).stranger_id, 0);
    std::vector<float> far(kDim, 0.0f);
    far[2] = 1;
    EXPECT_EQ(c.Assign(4, far, 1, 5).stranger_id, 0);  // new id already in use
    EXPECT_EQ(c.size(), 1u);
}

// The threshold is read live (issue 15): a change applies to the next sighting, not only
// after a restart, and leaves existing strangers as they are.
TEST(StrangersTest, ThresholdChangeAppliesToTheNextSighting) {
    auto axis = [](int i, float c, int j) {  // c * e_i + sqrt(1 - c^2) * e_j
        std::vector<float> v(kDim, 0.0f);
        v[size_t(i)] = c;
        v[size_t(j)] += std::sqrt(1 - c * c);
        return v;
    };
    StrangerClusterer c({.threshold = 0.8f});
    EXPECT_TRUE(c.Assign(1, axis(0, 1.f, 1), 1, 10).created);
    EXPECT_TRUE(c.Assign(2, axis(0, 0.6f, 1), 1, 11).created);  // cosine 0.6 < 0.8: apart
    EXPECT_TRUE(c.SetThreshold(0.5f));
    EXPECT_FLOAT_EQ(c.options().threshold, 0.5f);
    const StrangerMatch m = c.Assign(3, axis(0, 0.6f, 2), 1, 12);  // 0.6 to #1, 0.36 to #2
    EXPECT_FALSE(m.created);
    EXPECT_EQ(m.stranger_id, 10);
    EXPECT_EQ(c.size(), 2u);  // no retroactive merge of 10 and 11
    EXPECT_FALSE(c.SetThreshold(std::nanf("")));
    EXPECT_FALSE(c.SetThreshold(1.5f));
    EXPECT_FLOAT_EQ(c.options().threshold, 0.5f);
    EXPECT_TRUE(c.SetThreshold(0.9f));
    EXPECT_TRUE(c.Assign(4, axis(0, 0.6f, 3), 1, 13).created);  // raised: apart again
}

}  // namespace
}  // namespace fg::history
