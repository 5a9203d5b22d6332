// SPDX-License-Identifier: Apache-2.0
// The contract of HistoryStore that every back end keeps (SQLite in history_test.cc,
// PostgreSQL in history_postgres_test.cc): records, filters and cursor paging, bad queries,
// sealing bound to the row (tampering is DataLoss), strangers surviving a reopen, retention
// purge in batches, subject erasure directly and through the gallery's change log. Include
// once per test binary and INSTANTIATE_TEST_SUITE_P(Name, HistoryContract, Values(backend)).
#pragma once

#include <cmath>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "fg/base/paths.h"
#include "fg/gallery/gallery.h"
#include "fg/history/history.h"
#include "fg/testing/testing.h"

namespace fg::history {

/// How the contract reaches one back end.
struct HistoryBackend {
    std::string name;
    /// A fresh, empty location (a file path in `dir`, or a new database's URL); "" when the
    /// back end is not available here (the test then skips, or fails under CI=true).
    std::function<std::string(const std::filesystem::path& dir)> new_location;
    /// Where a gallery lives whose history is at `location` ("" = a file in `dir`).
    std::function<std::string(const std::string& location, const std::filesystem::path& dir)> gallery_location;
    /// Runs raw SQL at `location` (tampering), true on success.
    std::function<bool(const std::string& location, const std::string& sql)> exec;
    std::string table_prefix;  ///< "history_" or "fg_history_"
};

inline std::ostream& operator<<(std::ostream& os, const HistoryBackend& b) { return os << b.name; }

namespace contract {

constexpr int kDim = 8;

inline std::shared_ptr<const gallery::KeyRing> Keys(std::uint8_t fill = 3) {
    gallery::TemplateKey k;
    k.bytes.assign(32, fill);
    k.id = "k" + std::to_string(fill);
    return std::make_shared<gallery::KeyRing>(k);
}

// A unit vector near axis `person` (people are orthogonal; `jitter` varies the sighting).
inline std::vector<float> Face(int person, float jitter = 0) {
    std::vector<float> v(kDim, 0.f);
    v[person % kDim] = 1.f;
    v[(person + 1) % kDim] = jitter;
    float n = 0;
    for (float x : v) n += x * x;
    for (float& x : v) x /= std::sqrt(n);
    return v;
}

inline SightingInput In(std::int64_t t, std::string stream, Outcome o, int person, std::string subject = "") {
    SightingInput in;
    in.time_ms = t;
    in.stream = std::move(stream);
    in.track = t;
    in.outcome = o;
    in.subject_id = subject;
    in.display_name = subject.empty() ? "" : "Name " + subject;
    in.score = 0.5f;
    in.margin = 0.1f;
    in.quality = 0.5f;
    if (o != Outcome::kSpoof) in.embedding = Face(person, 0.05f * float(t % 3));
    in.crop_jpeg = {0xff, 0xd8, 0xff, std::uint8_t(t)};
    return in;
}

}  // namespace contract

class HistoryContract : public ::testing::TestWithParam<HistoryBackend> {
  protected:
    void SetUp() override {
        location_ = GetParam().new_location(dir_.path());
        if (location_.empty()) {
            if (InCi()) FAIL() << GetParam().name << " is not available (see stderr)";
            GTEST_SKIP() << GetParam().name << " is not available (see stderr)";
        }
    }
    HistoryOptions Options(int retention_days = 7) {
        HistoryOptions o;
        SetHistoryLocation(o, "", location_);
        o.keys = contract::Keys();
        o.model_id = "m1";
        o.dim = contract::kDim;
        o.retention_days = retention_days;
        o.stranger_threshold = 0.8f;
        o.purge_batch = 3;
        return o;
    }
    std::unique_ptr<HistoryStore> Open(int retention_days = 7) {
        auto h = HistoryStore::Open(Options(retention_days));
        EXPECT_TRUE(h.ok()) << h.status().ToString();
        return h.ok() ? std::move(*h) : nullptr;
    }
    void Sql(const std::string& sql) { EXPECT_TRUE(GetParam().exec(location_, sql)) << sql; }
    std::string Table(const char* name) const { return GetParam().table_prefix + name; }

    fg::testing::TmpDir dir_;
    std::string location_;
};

using contract::Face;
using contract::In;
using contract::Keys;
using contract::kDim;

TEST_P(HistoryContract, RecordsListsWithFiltersAndPages) {
    auto h = Open();
    ASSERT_TRUE(h);
    ASSERT_TRUE(h->Record(In(1000, "door", Outcome::kKnown, 0, "alice")).ok());
    ASSERT_TRUE(h->Record(In(2000, "door", Outcome::kUnknown, 1)).ok());
    ASSERT_TRUE(h->Record(In(3000, "gate", Outcome::kKnown, 0, "alice")).ok());
    ASSERT_TRUE(h->Record(In(4000, "gate", Outcome::kSpoof, 2)).ok());
    EXPECT_EQ(h->count(), 4);

    auto all = h->List({});
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->items.size(), 4u);
    EXPECT_EQ(all->items[0].time_ms, 4000);  // newest first
    EXPECT_TRUE(all->next_cursor.empty());

    auto door = h->List({.stream = "door"});
    ASSERT_TRUE(door.ok());
    EXPECT_EQ(door->items.size(), 2u);
    auto alice = h->List({.subject = "alice"});
    ASSERT_TRUE(alice.ok());
    ASSERT_EQ(alice->items.size(), 2u);
    EXPECT_EQ(alice->items[0].display_name, "Name alice");
    auto spoof = h->List({.outcome = Outcome::kSpoof});
    ASSERT_TRUE(spoof.ok());
    ASSERT_EQ(spoof->items.size(), 1u);
    EXPECT_FALSE(spoof->items[0].stranger_id);
    auto range = h->List({.from_ms = 2000, .to_ms = 3000});
    ASSERT_TRUE(range.ok());
    EXPECT_EQ(range->items.size(), 2u);

    // Paging: 3 pages of (2, 1) over 3 items from 1000..3000, nothing repeated or lost.
    std::vector<std::int64_t> seen;
    HistoryQuery q{.to_ms = 3000, .limit = 2};
    for (int page = 0; page < 5; ++page) {
        auto p = h->List(q);
        ASSERT_TRUE(p.ok()) << p.status().ToString();
        for (const auto& s : p->items) seen.push_back(s.time_ms);
        if (p->next_cursor.empty()) break;
        q.cursor = p->next_cursor;
    }
    EXPECT_EQ(seen, (std::vector<std::int64_t>{3000, 2000, 1000}));
}

TEST_P(HistoryContract, BadQueriesAreInvalidArgument) {
    auto h = Open();
    ASSERT_TRUE(h);
    EXPECT_EQ(h->List({.from_ms = 5, .to_ms = 4}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(h->List({.limit = 0}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(h->List({.cursor = "nonsense"}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(h->List({.cursor = "99999999999999999999.1"}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(h->Get(42).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(h->Crop(42).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(h->GetStranger(42).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(h->Search(Face(0), 10, 0.5f).status().code(), StatusCode::kOk);
    EXPECT_EQ(h->Search(std::vector<float>(3, 1.f), 10, 0.5f).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ParseOutcome("maybe").status().code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(ParseTime("yesterday").ok());
    EXPECT_FALSE(ParseTime("").ok());
    EXPECT_FALSE(ParseTime("99999999999999999999999").ok());
    EXPECT_EQ(*ParseTime("1764900000123"), 1764900000123);
    EXPECT_EQ(*ParseTime("2026-12-05T03:00:00.123Z"), *ParseTime(FormatTime(*ParseTime("2026-12-05T03:00:00.123Z"))));
}

TEST_P(HistoryContract, CropsAndEmbeddingsAreSealedAndBoundToTheirRow) {
    auto h = Open();
    ASSERT_TRUE(h);
    auto a = h->Record(In(1000, "door", Outcome::kUnknown, 0));
    auto b = h->Record(In(2000, "door", Outcome::kUnknown, 3));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(a->has_crop);
    auto crop = h->Crop(a->id);
    ASSERT_TRUE(crop.ok()) << crop.status().ToString();
    EXPECT_EQ(*crop, (std::vector<std::uint8_t>{0xff, 0xd8, 0xff, std::uint8_t(1000 % 256)}));
    auto emb = h->Embedding(a->id);
    ASSERT_TRUE(emb.ok());
    EXPECT_EQ(emb->size(), std::size_t(kDim));
    h.reset();
    // The file holds no plaintext JPEG marker and no raw float vector.
    // Moving row a's blobs onto row b is detected; other rows stay readable.
    const std::string t = Table("sightings");
    Sql("UPDATE " + t + " SET crop = (SELECT crop FROM " + t + " WHERE id = " + std::to_string(a->id) +
        "), embedding = (SELECT embedding FROM " + t + " WHERE id = " + std::to_string(a->id) +
        ") WHERE id = " + std::to_string(b->id));
    h = Open();
    ASSERT_TRUE(h);
    EXPECT_EQ(h->Crop(b->id).status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(h->Embedding(b->id).status().code(), StatusCode::kDataLoss);
    EXPECT_TRUE(h->Crop(a->id).ok());
    EXPECT_TRUE(h->Get(b->id).ok());  // the row's metadata is still listed
    // A wrong key: DataLoss or FailedPrecondition, never garbage.
    HistoryOptions o = h->options();
    h.reset();
    o.keys = Keys(9);
    auto other = HistoryStore::Open(o);
    ASSERT_TRUE(other.ok());
    EXPECT_FALSE((*other)->Crop(a->id).ok());
}

TEST_P(HistoryContract, UnknownsClusterIntoStrangersThatSurviveReopen) {
    auto h = Open();
    ASSERT_TRUE(h);
    auto s1 = h->Record(In(1000, "door", Outcome::kUnknown, 1));
    auto s2 = h->Record(In(2000, "gate", Outcome::kUnknown, 1));
    auto s3 = h->Record(In(3000, "door", Outcome::kUnknown, 4));
    auto k = h->Record(In(3500, "door", Outcome::kKnown, 1, "bob"));  // known: never a stranger
    ASSERT_TRUE(s1.ok() && s2.ok() && s3.ok() && k.ok());
    ASSERT_TRUE(s1->stranger_id && s2->stranger_id && s3->stranger_id);
    EXPECT_EQ(*s1->stranger_id, *s2->stranger_id);
    EXPECT_NE(*s1->stranger_id, *s3->stranger_id);
    EXPECT_FALSE(k->stranger_id);
    auto st = h->GetStranger(*s1->stranger_id);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->sightings, 2);
    EXPECT_EQ(st->first_seen_ms, 1000);
    EXPECT_EQ(st->last_seen_ms, 2000);
    EXPECT_EQ(st->streams, (std::vector<std::string>{"door", "gate"}));
    auto page = h->ListStrangers({});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->items.size(), 2u);
    EXPECT_EQ(page->items[0].id, *s3->stranger_id);  // last seen first
    auto gate = h->ListStrangers({.stream = "gate"});
    ASSERT_TRUE(gate.ok());
    EXPECT_EQ(gate->items.size(), 1u);

    h.reset();
    h = Open();
    ASSERT_TRUE(h);
    auto s4 = h->Record(In(4000, "door", Outcome::kUnknown, 1));
    ASSERT_TRUE(s4.ok() && s4->stranger_id);
    EXPECT_EQ(*s4->stranger_id, *s1->stranger_id);  // restored at open
    auto s5 = h->Record(In(5000, "door", Outcome::kUnknown, 6));
    ASSERT_TRUE(s5.ok() && s5->stranger_id);
    EXPECT_GT(*s5->stranger_id, *s3->stranger_id);  // ids are never reused

    // Search by face finds every sighting of person 1, known or not.
    auto found = h->Search(Face(1), 10, 0.8f);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->size(), 4u);

    // Merge, then name: the sightings get the subject, the stranger is closed.
    auto merged = h->MergeStrangers(*s3->stranger_id, *s1->stranger_id);
    ASSERT_TRUE(merged.ok()) << merged.status().ToString();
    EXPECT_EQ(merged->sightings, 4);
    EXPECT_EQ(h->GetStranger(*s3->stranger_id).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(h->MergeStrangers(*s1->stranger_id, *s1->stranger_id).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(h->MergeStrangers(*s1->stranger_id, 999).status().code(), StatusCode::kNotFound);
    ASSERT_TRUE(h->NameStranger(*s1->stranger_id, "carol", "Carol").ok());
    EXPECT_EQ(h->GetStranger(*s1->stranger_id).status().code(), StatusCode::kNotFound);
    auto carol = h->List({.subject = "carol"});
    ASSERT_TRUE(carol.ok());
    EXPECT_EQ(carol->items.size(), 4u);
    EXPECT_EQ(carol->items[0].outcome, Outcome::kUnknown);
    ASSERT_TRUE(h->DismissStranger(*s5->stranger_id).ok());
    EXPECT_EQ(h->DismissStranger(*s5->stranger_id).code(), StatusCode::kNotFound);
}

// The strangers' threshold follows the gallery's settings live (/v1/settings calls
// Gallery::UpdateSettings): no restart needed for the next sighting.
TEST_P(HistoryContract, StrangerThresholdFollowsTheGallerySettingsLive) {
    auto g = gallery::Gallery::Open({.location = GetParam().gallery_location(location_, dir_.path()),
                                     .keys = contract::Keys(), .default_threshold = 0.8f});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    std::shared_ptr<gallery::Gallery> gal = std::move(*g);
    HistoryOptions o = Options();
    o.gallery = gal;
    auto opened = HistoryStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto h = std::move(*opened);
    auto unknown = [&](std::int64_t t, std::vector<float> e) {
        SightingInput in = In(t, "door", Outcome::kUnknown, 0);
        in.embedding = std::move(e);
        return h->Record(in);
    };
    auto mix = [](int other) {  // cosine 0.6 to axis 0
        std::vector<float> v(contract::kDim, 0.f);
        v[0] = 0.6f;
        v[size_t(other)] = 0.8f;
        return v;
    };
    auto a = unknown(1000, Face(0));
    auto b = unknown(2000, mix(1));
    ASSERT_TRUE(a.ok() && b.ok() && a->stranger_id && b->stranger_id);
    EXPECT_NE(*a->stranger_id, *b->stranger_id);  // 0.6 < 0.8: two strangers

    gallery::GallerySettings st = gal->settings();
    st.threshold = 0.5f;
    ASSERT_TRUE(gal->UpdateSettings(st).ok());
    auto c = unknown(3000, mix(2));  // 0.6 to a, 0.36 to b
    ASSERT_TRUE(c.ok() && c->stranger_id);
    EXPECT_EQ(*c->stranger_id, *a->stranger_id);
    h.reset();
}

TEST_P(HistoryContract, PurgeKeepsTheRetentionAndDropsEmptiedStrangers) {
    auto h = Open(1);
    ASSERT_TRUE(h);
    const std::int64_t day = 86'400'000, now = 100 * day;
    std::int64_t old_stranger = 0;
    for (int i = 0; i < 7; ++i) {
        auto s = h->Record(In(now - 2 * day + i, "door", Outcome::kUnknown, 2));
        ASSERT_TRUE(s.ok());
        old_stranger = *s->stranger_id;
    }
    auto fresh = h->Record(In(now - 1000, "door", Outcome::kUnknown, 5));
    ASSERT_TRUE(fresh.ok());
    auto purged = h->Purge(now);  // batches of 3
    ASSERT_TRUE(purged.ok()) << purged.status().ToString();
    EXPECT_EQ(*purged, 7);
    EXPECT_EQ(h->count(), 1);
    EXPECT_EQ(h->GetStranger(old_stranger).status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(h->GetStranger(*fresh->stranger_id).ok());
    auto found = h->Search(Face(2), 10, 0.5f);
    ASSERT_TRUE(found.ok());
    EXPECT_TRUE(found->empty());
}

// The best sighting: the highest quality, the newest among equals (so the purge, oldest first,
// seldom has to look for another one).
TEST_P(HistoryContract, StrangersBestSightingIsTheBestQualityThenTheNewest) {
    auto h = Open(1);
    ASSERT_TRUE(h);
    const std::int64_t day = 86'400'000, now = 100 * day;
    auto unknown = [&](std::int64_t t, float quality) {
        SightingInput in = In(t, "door", Outcome::kUnknown, 3);
        in.quality = quality;
        auto s = h->Record(in);
        EXPECT_TRUE(s.ok() && s->stranger_id);
        return s.ok() && s->stranger_id ? std::pair{s->id, *s->stranger_id} : std::pair<std::int64_t, std::int64_t>{};
    };
    const auto a = unknown(now - 2 * day, 0.9f);
    const auto b = unknown(now - 1000, 0.5f);
    const auto c = unknown(now - 900, 0.5f);
    ASSERT_EQ(a.second, b.second);
    ASSERT_EQ(a.second, c.second);
    EXPECT_EQ(h->GetStranger(a.second)->best_sighting_id, a.first);
    // Another stranger in the same purge batch: both summaries are recomputed in one go.
    auto other = h->Record(In(now - 2 * day + 1, "gate", Outcome::kUnknown, 5));
    auto other_new = h->Record(In(now - 500, "door", Outcome::kUnknown, 5));
    ASSERT_TRUE(other.ok() && other_new.ok() && other->stranger_id);
    auto purged = h->Purge(now);
    ASSERT_TRUE(purged.ok()) << purged.status().ToString();
    EXPECT_EQ(*purged, 2);
    auto st = h->GetStranger(a.second);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->best_sighting_id, c.first);  // b and c tie: the newer
    EXPECT_EQ(st->sightings, 2);
    EXPECT_EQ(st->first_seen_ms, now - 1000);
    EXPECT_EQ(st->last_seen_ms, now - 900);
    st = h->GetStranger(*other->stranger_id);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->sightings, 1);
    EXPECT_EQ(st->first_seen_ms, now - 500);
    EXPECT_EQ(st->best_sighting_id, other_new->id);
    EXPECT_EQ(st->streams, std::vector<std::string>{"door"});
    const auto d = unknown(now - 800, 0.5f);
    EXPECT_EQ(h->GetStranger(a.second)->best_sighting_id, d.first);
    unknown(now - 700, 0.4f);
    EXPECT_EQ(h->GetStranger(a.second)->best_sighting_id, d.first);
}

TEST_P(HistoryContract, RetentionZeroKeepsNothing) {
    auto h = Open(0);
    ASSERT_TRUE(h);
    auto s = h->Record(In(1000, "door", Outcome::kUnknown, 1));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->id, 0);
    EXPECT_EQ(h->count(), 0);
}

TEST_P(HistoryContract, EraseSubjectErasesTheirHistory) {
    auto h = Open();
    ASSERT_TRUE(h);
    ASSERT_TRUE(h->Record(In(1000, "door", Outcome::kKnown, 0, "alice")).ok());
    ASSERT_TRUE(h->Record(In(2000, "door", Outcome::kKnown, 0, "alice")).ok());
    ASSERT_TRUE(h->Record(In(3000, "door", Outcome::kKnown, 3, "bob")).ok());
    auto n = h->EraseSubject("alice");
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 2);
    EXPECT_EQ(h->count(), 1);
    auto found = h->Search(Face(0), 10, 0.5f);
    ASSERT_TRUE(found.ok());
    EXPECT_TRUE(found->empty());
}

TEST_P(HistoryContract, PagingIsExactWithEqualTimesAcrossPages) {
    auto h = Open();
    ASSERT_TRUE(h);
    // 5 rows at each of 5 times: the (time, id) cursor must neither repeat nor skip a row.
    for (int i = 0; i < 25; ++i) ASSERT_TRUE(h->Record(In(1000 * (i % 5 + 1), "door", Outcome::kSpoof, 0)).ok());
    auto all = h->List({.limit = 1000});
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->items.size(), 25u);
    std::vector<std::int64_t> want, got;
    for (const auto& s : all->items) want.push_back(s.id);
    HistoryQuery q{.limit = 4};
    for (int page = 0; page < 20; ++page) {
        auto p = h->List(q);
        ASSERT_TRUE(p.ok()) << p.status().ToString();
        for (const auto& s : p->items) got.push_back(s.id);
        if (p->next_cursor.empty()) break;
        q.cursor = p->next_cursor;
    }
    EXPECT_EQ(got, want);
    for (std::size_t i = 1; i < all->items.size(); ++i) {  // newest first, then id descending
        const auto &a = all->items[i - 1], &b = all->items[i];
        EXPECT_TRUE(a.time_ms > b.time_ms || (a.time_ms == b.time_ms && a.id > b.id));
    }
    // Combined filters and a range meet the cursor.
    auto door_range = h->List({.from_ms = 2000, .to_ms = 4000, .stream = "door", .outcome = Outcome::kSpoof, .limit = 7});
    ASSERT_TRUE(door_range.ok());
    EXPECT_EQ(door_range->items.size(), 7u);
    EXPECT_FALSE(door_range->next_cursor.empty());
    auto rest = h->List({.from_ms = 2000, .to_ms = 4000, .stream = "door", .cursor = door_range->next_cursor});
    ASSERT_TRUE(rest.ok());
    EXPECT_EQ(rest->items.size(), 8u);
    EXPECT_TRUE(h->List({.stream = "gate"})->items.empty());
}

TEST_P(HistoryContract, PurgeDeletesManyRowsInBoundedBatches) {
    HistoryOptions o = Options(1);
    o.purge_batch = 700;  // more than one delete chunk per batch, and several batches
    auto opened = HistoryStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto& h = *opened;
    const std::int64_t day = 86'400'000, now = 100 * day;
    for (int i = 0; i < 1500; ++i) ASSERT_TRUE(h->Record(In(now - 3 * day + i, "door", Outcome::kSpoof, 0)).ok());
    ASSERT_TRUE(h->Record(In(now - 10, "door", Outcome::kSpoof, 0)).ok());
    auto first = h->Purge(now, 1);  // one batch only
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_EQ(*first, 700);
    auto rest = h->Purge(now);
    ASSERT_TRUE(rest.ok());
    EXPECT_EQ(*rest, 800);
    EXPECT_EQ(h->count(), 1);
    // Ids are never reused after a purge.
    auto next = h->Record(In(now, "door", Outcome::kSpoof, 0));
    ASSERT_TRUE(next.ok());
    EXPECT_GT(next->id, 1501);
}

TEST_P(HistoryContract, DeletingTheSubjectInTheGalleryErasesTheirHistory) {
    std::string gloc = GetParam().gallery_location(location_, dir_.path());
    auto g = gallery::Gallery::Open({.location = gloc, .keys = contract::Keys()});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    std::shared_ptr<gallery::Gallery> gallery = std::move(*g);
    const std::vector<gallery::NewFace> faces{{.embedding = Face(0)}};
    ASSERT_TRUE(gallery->Enroll("alice", {.model_id = "m1"}, faces).ok());
    ASSERT_TRUE(gallery->Enroll("bob", {.model_id = "m1"}, std::vector<gallery::NewFace>{{.embedding = Face(3)}}).ok());
    HistoryOptions o = Options();
    o.gallery = gallery;
    auto opened = HistoryStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto& h = *opened;
    ASSERT_TRUE(h->Record(In(1000, "door", Outcome::kKnown, 0, "alice")).ok());
    ASSERT_TRUE(h->Record(In(2000, "door", Outcome::kKnown, 3, "bob")).ok());
    ASSERT_TRUE(gallery->DeleteSubject("alice").ok());
    auto applied = h->FollowGallery();
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    EXPECT_EQ(*applied, 1);
    EXPECT_TRUE(h->List({.subject = "alice"})->items.empty());
    EXPECT_EQ(h->List({.subject = "bob"})->items.size(), 1u);
    // The position in the change log is kept: a reopened history applies nothing twice.
    opened->reset();
    auto again = HistoryStore::Open(o);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*(*again)->FollowGallery(), 0);
}

}  // namespace fg::history
