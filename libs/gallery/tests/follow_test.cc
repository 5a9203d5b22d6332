// SPDX-License-Identifier: Apache-2.0
// The change log on SQLite: the follow contract on a temporary file, and an old (schema 2)
// gallery migrated on open.
#include <sqlite3.h>

#include <memory>
#include <vector>

#include "follow_contract.h"

namespace fg::gallery::testing {
namespace {

std::string TmpGallery() {
    static auto* dir = new fg::testing::TmpDir();  // lives for the whole test program
    static int n = 0;
    return (*dir / ("follow" + std::to_string(n++) + ".db")).string();
}

INSTANTIATE_TEST_SUITE_P(Sqlite, FollowContract, ::testing::Values(LocationFactory(TmpGallery)));

// Turns a current gallery file back into schema 2 (before the change log), as a gallery made
// by the previous facegate would be.
void DowngradeToSchema2(const std::string& path) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db,
                                "DROP TABLE changes; DELETE FROM sqlite_sequence WHERE name = "
                                "'changes'; PRAGMA user_version = 2;",
                                nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
}

TEST(FollowSqlite, AnOldGalleryIsMigratedOnOpenAndWorks) {
    const std::string path = TmpGallery();
    {
        auto g = Gallery::Open({.location = path, .keys = TestKeys()});
        ASSERT_TRUE(g.ok());
        ASSERT_TRUE((*g)->Enroll("old", {.model_id = kModel},
                                 std::vector<NewFace>{{Sample(1, 0)}, {Sample(1, 1)}})
                        .ok());
    }
    DowngradeToSchema2(path);
    auto a = Gallery::Open({.location = path, .keys = TestKeys()});
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ((*a)->Stats()->schema_version, 3);
    EXPECT_EQ(*(*a)->last_change(), 0);  // history before the log is not invented
    EXPECT_EQ((*a)->Identify(Probe(Sample(1, 9)))->subject_id, "old");
    auto b = Gallery::Open({.location = path, .keys = TestKeys()});
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*a)->Enroll("new", {.model_id = kModel}, std::vector<NewFace>{{Sample(2, 0)}})
                    .ok());
    EXPECT_EQ(*(*a)->last_change(), 1);
    EXPECT_EQ(*(*b)->Refresh(), 1);
    EXPECT_EQ((*b)->Identify(Probe(Sample(2, 9)))->subject_id, "new");
    EXPECT_TRUE((*b)->CheckConsistency().ok());
}

TEST(FollowSqlite, AStoreWithAChangeLogIsNotMigratedTwice) {
    const std::string path = TmpGallery();
    auto s = OpenStore(path);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->CreateSubject({"a", "A"}).ok());
    EXPECT_EQ((*s)->TakeOwnChanges(), std::vector<std::int64_t>{1});
    EXPECT_TRUE((*s)->TakeOwnChanges().empty());
    s->reset();
    auto again = OpenStore(path);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*(*again)->LastChange(), 1);
    auto c = (*again)->ChangesSince(0, 10);
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->size(), 1u);
    EXPECT_EQ((*c)[0].kind, "enroll");
    EXPECT_EQ((*c)[0].subject_id, "a");
    EXPECT_TRUE((*c)[0].face_ids.empty());
}

}  // namespace
}  // namespace fg::gallery::testing
