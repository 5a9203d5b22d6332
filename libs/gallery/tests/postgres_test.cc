// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL store against a real server that this test starts on loopback in a temporary
// directory (fg::testing::PostgresServer), and stops at the end.
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "fg/gallery/gallery.h"
#include "fg/testing/postgres.h"
#include "fg/testing/testing.h"
#include "follow_contract.h"
#include "store_contract.h"
#include "test_util.h"

namespace fg::gallery::testing {
namespace {

using fg::testing::PostgresServer;

PostgresServer* Server() { return PostgresServer::Shared(); }

#define FG_REQUIRE_PG() FG_REQUIRE_POSTGRES()

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

// Issue 16: a database admin rearranging rows or settings is refused (DataLoss), as in SQLite
// (integrity_test.cc); PostgreSQL has no snapshot, so every open checks every row.
TEST(PostgresGallery, TamperingByADatabaseAdminIsDetected) {
    FG_REQUIRE_PG();
    const std::string url = Server()->NewDatabase();
    {
        auto g = Gallery::Open({.location = url, .keys = TestKeys()});
        ASSERT_TRUE(g.ok()) << g.status().ToString();
        for (std::uint32_t p = 0; p < 3; ++p) {
            ASSERT_TRUE((*g)->Enroll("p" + std::to_string(p), {.model_id = kModel},
                                     std::vector<NewFace>{{Sample(p, 0)}})
                            .ok());
        }
        ASSERT_TRUE((*g)->MergeSubjects("p2", "p1").ok());
    }
    auto sql = [&](const std::string& q) {
        PGconn* c = PQconnectdb(url.c_str());
        PGresult* r = PQexec(c, q.c_str());
        EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
        PQclear(r);
        PQfinish(c);
    };
    auto expect_data_loss = [&](const char* what) {
        auto g = Gallery::Open({.location = url, .keys = TestKeys()});
        ASSERT_FALSE(g.ok()) << what << " went unnoticed";
        EXPECT_EQ(g.status().code(), StatusCode::kDataLoss) << what << ": " << g.status().ToString();
    };
    ASSERT_TRUE(Gallery::Open({.location = url, .keys = TestKeys()}).ok());
    sql("CREATE TABLE saved AS SELECT id, subject_id, sealed FROM faces");
    sql("UPDATE faces SET sealed = (SELECT sealed FROM saved WHERE subject_id = 'p0') "
        "WHERE subject_id = 'p1'");
    expect_data_loss("a blob copied to another subject's rows");
    sql("UPDATE faces f SET sealed = s.sealed FROM saved s WHERE f.id = s.id");
    ASSERT_TRUE(Gallery::Open({.location = url, .keys = TestKeys()}).ok());
    sql("UPDATE faces SET subject_id = 'p1' WHERE subject_id = 'p0'");
    expect_data_loss("a changed subject_id");
    sql("UPDATE faces SET subject_id = 'p0' WHERE id = (SELECT id FROM saved WHERE subject_id = 'p0')");
    ASSERT_TRUE(Gallery::Open({.location = url, .keys = TestKeys()}).ok());
    sql("INSERT INTO settings(key, value) VALUES ('identify', '{\"threshold\": -1}') "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    expect_data_loss("a threshold lowered in the database");
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
    ASSERT_TRUE(Server()->Up().ok());
    auto again = (*g)->Enroll("b", {.model_id = kModel}, std::vector<NewFace>{{Sample(2, 0)}});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ((*g)->Stats()->templates, 2);
    EXPECT_EQ((*g)->Identify(Probe(Sample(2, 5)))->subject_id, "b");
}

// Short timeouts so the outage tests finish quickly (libpq's minimum connect_timeout is 2 s).
std::string ShortTimeouts(std::string url) {
    const std::string from = "connect_timeout=5";
    url.replace(url.find(from), from.size(), "connect_timeout=2&statement_timeout=1000");
    return url;
}

std::unique_ptr<Gallery> TwoPeople(const std::string& url) {
    auto g = Gallery::Open({.location = url, .keys = TestKeys()});
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    if (!g.ok()) return nullptr;
    for (std::uint32_t p : {1u, 2u}) {
        EXPECT_TRUE((*g)->Enroll("p" + std::to_string(p),
                                 {.model_id = kModel, .display_name = "Person " + std::to_string(p)},
                                 std::vector<NewFace>{{Sample(p, 0)}})
                        .ok());
    }
    return std::move(*g);
}

/// Runs `fn` and returns how long it took (an upper bound checked against hanging, not speed).
template <typename Fn>
std::chrono::duration<double> Took(Fn&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::steady_clock::now() - t0;
}

// Waits (bounded) until identify reads names from the store again.
bool Recovers(const Gallery& g) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < end) {
        if (g.Identify(Probe(Sample(1, 5))).ok() && !g.degraded()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
}

TEST(PostgresGallery, OutageDegradesIdentifyToTheIndexWithCachedNames) {
    FG_REQUIRE_PG();
    auto g = TwoPeople(ShortTimeouts(Server()->NewDatabase()));
    ASSERT_TRUE(g);
    auto warm = g->Identify(Probe(Sample(1, 5)));  // names reach the cache
    ASSERT_TRUE(warm.ok());
    EXPECT_EQ(warm->candidates.front().display_name, "Person 1");
    EXPECT_FALSE(g->degraded());

    Server()->Down();
    Result<Identification> id = Internal("not run");
    const auto took = Took([&] { id = g->Identify(Probe(Sample(1, 5))); });
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_EQ(id->subject_id, "p1");  // the same decision, from the in-memory index
    EXPECT_EQ(id->candidates.front().display_name, "Person 1");  // from the cache
    EXPECT_TRUE(g->degraded());
    EXPECT_LT(took.count(), 10.0);
    // While degraded the store is not asked again for a while: the next answers are immediate.
    auto again = g->Identify(Probe(Sample(2, 5)));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->subject_id, "p2");

    ASSERT_TRUE(Server()->Up().ok());
    EXPECT_TRUE(Recovers(*g));
}

// A hung server (processes stopped: connections open, nothing answers) is the worst case: no
// error ever arrives, only the client-side deadlines end the waits.
TEST(PostgresGallery, HungServerDoesNotHangIdentifyOrWrites) {
    FG_REQUIRE_PG();
    auto g = TwoPeople(ShortTimeouts(Server()->NewDatabase()));
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->Identify(Probe(Sample(2, 5))).ok());
    struct Thaw {
        ~Thaw() { Server()->Thaw(); }
    } thaw;
    Server()->Freeze();
    Result<Identification> id = Internal("not run");
    const auto took = Took([&] { id = g->Identify(Probe(Sample(2, 5))); });
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_EQ(id->subject_id, "p2");
    EXPECT_EQ(id->candidates.front().display_name, "Person 2");
    EXPECT_TRUE(g->degraded());
    EXPECT_LT(took.count(), 10.0);  // lookup deadline 1 s, not forever
    // A write fails with Unavailable after statement_timeout + 2 s instead of blocking.
    Result<EnrollResult> r = Internal("not run");
    const auto write_took = Took([&] {
        r = g->Enroll("p3", {.model_id = kModel}, std::vector<NewFace>{{Sample(3, 0)}});
    });
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    EXPECT_LT(write_took.count(), 15.0);
    Server()->Thaw();
    EXPECT_TRUE(Recovers(*g));
    auto later = g->Enroll("p3", {.model_id = kModel}, std::vector<NewFace>{{Sample(3, 0)}});
    EXPECT_TRUE(later.ok()) << later.status().ToString();
}

TEST(PostgresGallery, TimeoutsInTheUrlAreChecked) {
    for (const char* bad : {"statement_timeout=abc", "statement_timeout=-1",
                            "connect_timeout=0", "connect_timeout=1x"}) {
        auto s = OpenPostgresStore(std::string("postgresql://fg@127.0.0.1:1/none?") + bad);
        ASSERT_FALSE(s.ok()) << bad;
        EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << bad;
        EXPECT_NE(s.status().message().find(std::string(bad).substr(0, 10)), std::string::npos)
            << s.status().ToString();
    }
    // Accepted and stripped before libpq (which would reject statement_timeout): the failure
    // is then the unreachable server, not the parameter.
    auto s = OpenPostgresStore("postgresql://fg@127.0.0.1:1/none?statement_timeout=500");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kUnavailable) << s.status().ToString();
}

TEST(PostgresGallery, UnreachableServerIsAClearError) {
    auto s = OpenPostgresStore("postgresql://fg@127.0.0.1:1/none?connect_timeout=2");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(s.status().message().find("PostgreSQL"), std::string::npos);
}

}  // namespace
}  // namespace fg::gallery::testing
