// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL store against a real server that this test starts on loopback in a temporary
// directory (initdb + pg_ctl; as the "postgres" user when running as root, since initdb refuses
// root), and stops at the end.
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "follow_contract.h"
#include "store_contract.h"
#include "test_util.h"

namespace fg::gallery::testing {
namespace {

std::filesystem::path PgBinDir() {
    std::error_code ec;
    for (const auto& d : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
        if (std::filesystem::exists(d.path() / "bin" / "pg_ctl")) return d.path() / "bin";
    }
    return {};
}


class PgServer {
  public:
    bool Start() {
        const auto bin = PgBinDir();
        if (bin.empty()) {
            error_ = "PostgreSQL server binaries not found (Debian package postgresql)";
            return false;
        }
        bin_ = bin.string();
        port_ = fg::testing::FreeLoopbackPort();
        const std::string dir = dir_.path().string();
        as_ = geteuid() == 0 ? "runuser -u postgres -- " : "";
        if (geteuid() == 0 && std::system(("chown -R postgres " + dir).c_str()) != 0)
            return Fail("chown");
        if (Sh(bin_ + "/initdb -D " + dir + "/data -A trust -U fg -E UTF8 > " + dir +
               "/initdb.log 2>&1") != 0) {
            return Fail("initdb");
        }
        return Up();
    }
    bool Up() {
        const std::string dir = dir_.path().string();
        return Sh(bin_ + "/pg_ctl -D " + dir + "/data -l " + dir + "/server.log -w -t 60 -o \"-p " +
                  std::to_string(port_) + " -k " + dir +
                  " -c listen_addresses=127.0.0.1\" start > /dev/null") == 0 ||
               Fail("pg_ctl start");
    }
    void Down() {
        Sh(bin_ + "/pg_ctl -D " + dir_.path().string() + "/data -m fast -w stop > /dev/null 2>&1");
    }
    std::string Url(const std::string& db) const {
        return "postgresql://fg@127.0.0.1:" + std::to_string(port_) + "/" + db +
               "?connect_timeout=5";
    }
    /// A fresh database per test so tests do not see each other's rows.
    std::string NewDatabase() {
        static int n = 0;
        const std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(n++);
        PGconn* c = PQconnectdb(Url("postgres").c_str());
        PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        PQfinish(c);
        return ok ? Url(name) : "";
    }
    const std::string& error() const { return error_; }

  private:
    int Sh(const std::string& cmd) { return std::system((as_ + cmd).c_str()); }
    bool Fail(const std::string& what) {
        error_ = what + " failed (see " + dir_.path().string() + ")";
        return false;
    }
    fg::testing::TmpDir dir_;
    std::string bin_, as_, error_;
    int port_ = 0;
};

PgServer* Server() {
    static PgServer* server = nullptr;
    static bool tried = false;
    if (!tried) {
        tried = true;
        auto* s = new PgServer();
        if (s->Start()) {
            server = s;
        } else {
            std::fprintf(stderr, "postgres: %s\n", s->error().c_str());
        }
    }
    return server;
}

class StopServer : public ::testing::Environment {
  public:
    void TearDown() override {
        if (PgServer* s = Server()) s->Down();
    }
};
[[maybe_unused]] auto* const kStop = ::testing::AddGlobalTestEnvironment(new StopServer);

#define FG_REQUIRE_PG()                                            \
    do {                                                           \
        if (!Server()) {                                           \
            if (::fg::InCi()) FAIL() << "cannot start PostgreSQL"; \
            GTEST_SKIP() << "cannot start PostgreSQL";             \
        }                                                          \
    } while (0)

std::unique_ptr<Store> MakePostgres() {
    if (!Server()) return nullptr;
    auto s = OpenPostgresStore(Server()->NewDatabase());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreContract, ::testing::Values(StoreFactory(MakePostgres)));

std::string NewPostgresGallery() { return Server() ? Server()->NewDatabase() : ""; }

INSTANTIATE_TEST_SUITE_P(Postgres, FollowContract,
                         ::testing::Values(LocationFactory(NewPostgresGallery)));

TEST(PostgresGallery, AnOldGalleryIsMigratedOnOpenAndWorks) {
    FG_REQUIRE_PG();
    const std::string url = Server()->NewDatabase();
    {
        auto g = Gallery::Open({.location = url, .keys = TestKeys()});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        ASSERT_TRUE(
            (*g)->Enroll("old", {.model_id = kModel}, std::vector<NewFace>{{Sample(1, 0)}}).ok());
    }
    // Back to schema 2 (before the change log), as the previous facegate left it.
    PGconn* c = PQconnectdb(url.c_str());
    PGresult* r = PQexec(c, "DROP TABLE changes; UPDATE fg_schema SET version = 2");
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    auto a = Gallery::Open({.location = url, .keys = TestKeys()});
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ((*a)->Stats()->schema_version, 3);
    EXPECT_EQ(*(*a)->last_change(), 0);
    EXPECT_EQ((*a)->Identify(Probe(Sample(1, 9)))->subject_id, "old");
    auto b = Gallery::Open({.location = url, .keys = TestKeys()});
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(
        (*a)->Enroll("new", {.model_id = kModel}, std::vector<NewFace>{{Sample(2, 0)}}).ok());
    EXPECT_EQ(*(*b)->Refresh(), 1);
    EXPECT_EQ((*b)->Identify(Probe(Sample(2, 9)))->subject_id, "new");
}

// NOTIFY wakes the follower at once: with a polling interval far longer than the deadline,
// the change can only arrive through LISTEN.
TEST(PostgresGallery, NotifyWakesTheFollowerBeforeItsInterval) {
    FG_REQUIRE_PG();
    const std::string url = Server()->NewDatabase();
    auto a = Gallery::Open({.location = url, .keys = TestKeys()});
    auto b = Gallery::Open({.location = url, .keys = TestKeys()});
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE((*b)->StartFollowing(std::chrono::minutes(10)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the LISTEN is in place
    ASSERT_TRUE(
        (*a)->Enroll("n", {.model_id = kModel}, std::vector<NewFace>{{Sample(3, 0)}}).ok());
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < end) {
        auto id = (*b)->Identify(Probe(Sample(3, 9)));
        seen = id.ok() && id->known;
        if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(seen);
    (*b)->StopFollowing();
}

TEST(PostgresGallery, EnrollIdentifyAndTwoNodesShareOneGallery) {
    FG_REQUIRE_PG();
    const std::string url = Server()->NewDatabase();
    auto a = Gallery::Open({.location = url, .keys = TestKeys()});
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    for (int p = 0; p < 10; ++p) {
        auto r = (*a)->Enroll(
            "p" + std::to_string(p), {.model_id = kModel},
            std::vector<NewFace>{{Sample(std::uint32_t(p), 0)}, {Sample(std::uint32_t(p), 1)}});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    // A second node opens the same gallery concurrently (migrations already applied).
    auto b = Gallery::Open({.location = url, .keys = TestKeys()});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ((*b)->Identify(Probe(Sample(4, 9)))->subject_id, "p4");
    EXPECT_FALSE((*b)->Identify(Probe(Sample(400, 9)))->known);
    ASSERT_TRUE((*a)->DeleteSubject("p4").ok());
    EXPECT_EQ((*b)->Stats()->templates, 18);
    auto templates = (*b)->ListFaces("p5");
    ASSERT_TRUE(templates.ok());
    ASSERT_EQ(templates->size(), 2u);
    EXPECT_EQ((*templates)[0].model_id, kModel);
    EXPECT_EQ((*templates)[0].dim, 64);
    EXPECT_GT(*(*b)->Verify(Probe(Sample(5, 9)), "p5"), 0.6f);
}

TEST(PostgresGallery, ServerGoingAwayGivesUnavailableThenRecovers) {
    FG_REQUIRE_PG();
    const std::string url = Server()->NewDatabase();
    auto g = Gallery::Open({.location = url, .keys = TestKeys()});
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->Enroll("a", {.model_id = kModel}, std::vector<NewFace>{{Sample(1, 0)}}).ok());
    Server()->Down();
    auto r = (*g)->Enroll("b", {.model_id = kModel}, std::vector<NewFace>{{Sample(2, 0)}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    // Identification keeps working from the in-memory index while the store is away.
    EXPECT_EQ((*g)->Identify(Probe(Sample(1, 5)))->subject_id, "a");
    ASSERT_TRUE(Server()->Up());
    auto again = (*g)->Enroll("b", {.model_id = kModel}, std::vector<NewFace>{{Sample(2, 0)}});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ((*g)->Stats()->templates, 2);
    EXPECT_EQ((*g)->Identify(Probe(Sample(2, 5)))->subject_id, "b");
}

TEST(PostgresGallery, UnreachableServerIsAClearError) {
    auto s = OpenPostgresStore("postgresql://fg@127.0.0.1:1/none?connect_timeout=2");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(s.status().message().find("PostgreSQL"), std::string::npos);
}

}  // namespace
}  // namespace fg::gallery::testing
