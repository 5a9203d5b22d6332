// SPDX-License-Identifier: Apache-2.0
#include "fg/history/history.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cmath>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "fg/testing/testing.h"

namespace fg::history {
namespace {

constexpr int kDim = 8;

std::shared_ptr<const gallery::KeyRing> Keys(std::uint8_t fill = 3) {
    gallery::TemplateKey k;
    k.bytes.assign(32, fill);
    k.id = "k" + std::to_string(fill);
    return std::make_shared<gallery::KeyRing>(k);
}

// A unit vector near axis `person` (people are orthogonal; `jitter` varies the sighting).
std::vector<float> Face(int person, float jitter = 0) {
    std::vector<float> v(kDim, 0.f);
    v[person % kDim] = 1.f;
    v[(person + 1) % kDim] = jitter;
    float n = 0;
    for (float x : v) n += x * x;
    for (float& x : v) x /= std::sqrt(n);
    return v;
}

SightingInput In(std::int64_t t, std::string stream, Outcome o, int person, std::string subject = "") {
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

class HistoryTest : public ::testing::Test {
  protected:
    std::unique_ptr<HistoryStore> Open(int retention_days = 7) {
        HistoryOptions o;
        o.path = dir_ / "g.db.history.db";
        o.keys = Keys();
        o.model_id = "m1";
        o.dim = kDim;
        o.retention_days = retention_days;
        o.stranger_threshold = 0.8f;
        o.purge_batch = 3;
        auto h = HistoryStore::Open(o);
        EXPECT_TRUE(h.ok()) << h.status().ToString();
        return h.ok() ? std::move(*h) : nullptr;
    }
    void Sql(const std::string& sql) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((dir_ / "g.db.history.db").c_str(), &db), SQLITE_OK);
        char* err = nullptr;
        EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
        sqlite3_free(err);
        sqlite3_close(db);
    }
    fg::testing::TmpDir dir_;
};

TEST_F(HistoryTest, RecordsListsWithFiltersAndPages) {
    auto h = Open();
    ASSERT_TRUE(h);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "g.db.history.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);
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

TEST_F(HistoryTest, BadQueriesAreInvalidArgument) {
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

TEST_F(HistoryTest, CropsAndEmbeddingsAreSealedAndBoundToTheirRow) {
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
    Sql("UPDATE history_sightings SET crop = (SELECT crop FROM history_sightings WHERE id = " + std::to_string(a->id) +
        "), embedding = (SELECT embedding FROM history_sightings WHERE id = " + std::to_string(a->id) +
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

TEST_F(HistoryTest, UnknownsClusterIntoStrangersThatSurviveReopen) {
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

TEST_F(HistoryTest, PurgeKeepsTheRetentionAndDropsEmptiedStrangers) {
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

TEST_F(HistoryTest, RetentionZeroKeepsNothing) {
    auto h = Open(0);
    ASSERT_TRUE(h);
    auto s = h->Record(In(1000, "door", Outcome::kUnknown, 1));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->id, 0);
    EXPECT_EQ(h->count(), 0);
}

TEST_F(HistoryTest, EraseSubjectErasesTheirHistory) {
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

TEST_F(HistoryTest, RefusesAnotherProgramsDatabase) {
    Sql("CREATE TABLE subjects (id TEXT)");
    HistoryOptions o;
    o.path = dir_ / "g.db.history.db";
    o.keys = Keys();
    EXPECT_EQ(HistoryStore::Open(o).status().code(), StatusCode::kFailedPrecondition);
    o.keys = nullptr;
    EXPECT_EQ(HistoryStore::Open(o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HistoryTest, RecorderStoresDecisionsOffTheStreamThread) {
    std::shared_ptr<HistoryStore> h = Open();
    ASSERT_TRUE(h);
    std::vector<Sighting> published;
    auto rec = std::make_shared<Recorder>(h, [&](const Sighting& s) { published.push_back(s); });
    pipeline::Outcome o;
    o.kind = pipeline::Outcome::Kind::kRecognized;
    o.track_id = 7;
    o.capture_unix_ms = 1234;
    o.verdict.known = true;
    o.verdict.subject_id = "alice";
    o.verdict.score = 0.7f;
    o.fused_embedding = Face(0);
    o.best_shot = cv::Mat(32, 32, CV_8UC3, cv::Scalar(10, 120, 200));
    rec->OnDecision("door", o);
    o.kind = pipeline::Outcome::Kind::kUnknown;
    o.track_id = 8;
    o.fused_embedding = Face(2);
    rec->OnDecision("door", o);
    rec->Stop();
    rec->OnDecision("door", o);  // after Stop: dropped, never blocks
    EXPECT_EQ(rec->recorded(), 2u);
    EXPECT_EQ(rec->dropped(), 1u);
    ASSERT_EQ(published.size(), 2u);
    EXPECT_EQ(published[0].subject_id, "alice");
    EXPECT_EQ(published[0].outcome, Outcome::kKnown);
    EXPECT_TRUE(published[1].stranger_id);
    auto crop = h->Crop(published[0].id);
    ASSERT_TRUE(crop.ok());
    ASSERT_GT(crop->size(), 2u);
    EXPECT_EQ((*crop)[0], 0xff);  // a JPEG
    EXPECT_EQ((*crop)[1], 0xd8);
}

}  // namespace
}  // namespace fg::history
