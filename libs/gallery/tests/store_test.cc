// SPDX-License-Identifier: Apache-2.0
#include <sqlite3.h>

#include <fstream>

#include "store_contract.h"

namespace fg::gallery::testing {
namespace {

fg::testing::TmpDir& SqliteDir() {
    static fg::testing::TmpDir dir;
    return dir;
}

std::unique_ptr<Store> MakeSqlite() {
    static int n = 0;
    auto s = OpenSqliteStore((SqliteDir() / ("s" + std::to_string(n++) + ".db")).string());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract, ::testing::Values(StoreFactory(MakeSqlite)));

TEST(SqliteStore, ReopenKeepsDataAndSchemaVersion) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    {
        auto s = OpenSqliteStore(path);
        ASSERT_TRUE(s.ok());
        ASSERT_TRUE((*s)->CreateSubject({"a", "A"}).ok());
    }
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE((*s)->GetSubject("a").ok());
    EXPECT_EQ((*s)->schema_version(), 3);  // 3: the change log
}

TEST(SqliteStore, NewerSchemaIsRefused) {
    fg::testing::TmpDir tmp;
    const std::string path = (tmp / "g.db").string();
    ASSERT_TRUE(OpenSqliteStore(path).ok());
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    auto s = OpenSqliteStore(path);
    EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(s.status().message().find("newer"), std::string::npos);
}

TEST(SqliteStore, GarbageAndTruncatedFilesGiveClearErrors) {
    fg::testing::TmpDir tmp;
    { std::ofstream(tmp / "junk.db") << std::string(10000, 'x'); }
    auto junk = OpenSqliteStore((tmp / "junk.db").string());
    ASSERT_FALSE(junk.ok());
    EXPECT_EQ(junk.status().code(), StatusCode::kDataLoss) << junk.status().ToString();

    const std::string path = (tmp / "g.db").string();
    {
        auto s = OpenSqliteStore(path);
        ASSERT_TRUE(s.ok());
        for (int i = 0; i < 200; ++i) {
            std::vector<TemplateRecord> r = {Rec("a", 1)};
            r[0].sealed.assign(2000, std::uint8_t(i));
            ASSERT_TRUE((*s)->AddTemplates(r, Subject{"a", ""}).ok());
        }
    }
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size / 2);
    auto t = OpenSqliteStore(path);
    if (t.ok()) {
        // The damage may only be found when the lost pages are read: never silently.
        auto n = (*t)->ForEachTemplate([](const TemplateRecord&) { return Status::Ok(); });
        EXPECT_FALSE(n.ok());
    } else {
        EXPECT_EQ(t.status().code(), StatusCode::kDataLoss) << t.status().ToString();
    }
    EXPECT_EQ(OpenSqliteStore((tmp / "nodir" / "x.db").string()).status().code(),
              StatusCode::kNotFound);
}

}  // namespace
}  // namespace fg::gallery::testing
