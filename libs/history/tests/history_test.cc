// SPDX-License-Identifier: Apache-2.0
// HistoryStore on SQLite: the back-end contract (history_contract.h), plus what only a file has
// (its 0600 mode, refusing another program's database) and the Recorder.
#include <sqlite3.h>
#include <sys/stat.h>

#include <opencv2/core.hpp>

#include "fg/events/event.h"
#include "history_contract.h"

namespace fg::history {
namespace {

using contract::Keys;

bool SqliteExec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return false;
    char* err = nullptr;
    const bool ok = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK;
    if (!ok) ADD_FAILURE() << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    return ok;
}

const HistoryBackend kSqlite{
    .name = "sqlite",
    .new_location = [](const std::filesystem::path& dir) { return (dir / "g.db.history.db").string(); },
    .gallery_location = [](const std::string&, const std::filesystem::path& dir) { return (dir / "g.db").string(); },
    .exec = SqliteExec,
    .table_prefix = "history_",
};

INSTANTIATE_TEST_SUITE_P(Sqlite, HistoryContract, ::testing::Values(kSqlite));

class HistoryTest : public ::testing::Test {
  protected:
    std::unique_ptr<HistoryStore> Open(int retention_days = 7) {
        HistoryOptions o;
        o.path = dir_ / "g.db.history.db";
        o.keys = Keys();
        o.model_id = "m1";
        o.dim = contract::kDim;
        o.retention_days = retention_days;
        o.stranger_threshold = 0.8f;
        o.purge_batch = 3;
        auto h = HistoryStore::Open(o);
        EXPECT_TRUE(h.ok()) << h.status().ToString();
        return h.ok() ? std::move(*h) : nullptr;
    }
    void Sql(const std::string& sql) { SqliteExec((dir_ / "g.db.history.db").string(), sql); }
    fg::testing::TmpDir dir_;
};

using contract::Face;

TEST_F(HistoryTest, TheFileIsPrivate) {
    auto h = Open();
    ASSERT_TRUE(h);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "g.db.history.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_F(HistoryTest, TheLocationFollowsTheGallery) {
    HistoryOptions o;
    SetHistoryLocation(o, "people.db", "");
    EXPECT_EQ(o.path, "people.db.history.db");
    EXPECT_TRUE(o.url.empty());
    SetHistoryLocation(o, "postgresql://fg@127.0.0.1/g", "");
    EXPECT_EQ(o.url, "postgresql://fg@127.0.0.1/g");  // the gallery's own database
    EXPECT_TRUE(o.path.empty());
    SetHistoryLocation(o, "postgresql://fg@127.0.0.1/g", "/var/lib/h.db");  // named: wins
    EXPECT_EQ(o.path, "/var/lib/h.db");
    EXPECT_TRUE(o.url.empty());
    SetHistoryLocation(o, "people.db", "postgres://h/x");
    EXPECT_EQ(o.url, "postgres://h/x");
    EXPECT_FALSE(IsPostgresUrl("postgres.db"));
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

// best_shot_crops on: the recognizer already encoded the crop for the event; the recorder keeps
// those very bytes instead of encoding the crop a second time.
TEST_F(HistoryTest, RecorderReusesTheEventsBestShotJpeg) {
    std::shared_ptr<HistoryStore> h = Open();
    ASSERT_TRUE(h);
    std::vector<Sighting> published;
    auto rec = std::make_shared<Recorder>(h, [&](const Sighting& s) { published.push_back(s); });
    const std::vector<std::uint8_t> jpeg = {0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9};
    pipeline::Outcome o;
    o.kind = pipeline::Outcome::Kind::kUnknown;
    o.track_id = 9;
    o.capture_unix_ms = 5678;
    o.fused_embedding = Face(3);
    o.best_shot = cv::Mat(32, 32, CV_8UC3, cv::Scalar(10, 120, 200));
    o.best_shot_jpeg_base64 = events::Base64Encode(jpeg);
    rec->OnDecision("door", o);
    rec->Stop();
    ASSERT_EQ(published.size(), 1u);
    auto crop = h->Crop(published[0].id);
    ASSERT_TRUE(crop.ok()) << crop.status().ToString();
    EXPECT_EQ(*crop, jpeg);  // the event's bytes, not a new encoding of best_shot
}

}  // namespace
}  // namespace fg::history
