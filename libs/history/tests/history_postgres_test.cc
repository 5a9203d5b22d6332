// SPDX-License-Identifier: Apache-2.0
// HistoryStore on PostgreSQL, against a real server this test starts on loopback
// (fg::testing::PostgresServer; skipped without the postgresql binaries, failed under CI=true):
// the back-end contract (history_contract.h) with a fresh database per test, plus the history
// beside a PostgreSQL gallery in one database and the URL's errors.
#include <libpq-fe.h>

#include "fg/testing/postgres.h"
#include "history_contract.h"

namespace fg::history {
namespace {

using fg::testing::PostgresServer;

bool PgExec(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb(url.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) ADD_FAILURE() << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    return ok;
}

const HistoryBackend kPostgres{
    .name = "postgres",
    .new_location = [](const std::filesystem::path&) -> std::string {
        PostgresServer* s = PostgresServer::Shared();
        return s ? s->NewDatabase() : "";
    },
    // The gallery in the history's own database: the deployment this back end is for.
    .gallery_location = [](const std::string& location, const std::filesystem::path&) { return location; },
    .exec = PgExec,
    .table_prefix = "fg_history_",
};

INSTANTIATE_TEST_SUITE_P(Postgres, HistoryContract, ::testing::Values(kPostgres));

HistoryOptions Options(const std::string& url) {
    HistoryOptions o;
    SetHistoryLocation(o, url, "");  // the gallery's database
    o.keys = contract::Keys();
    o.model_id = "m1";
    o.dim = contract::kDim;
    return o;
}

TEST(HistoryPostgres, LivesInTheGallerysDatabaseBesideItsTables) {
    FG_REQUIRE_POSTGRES();
    const std::string url = PostgresServer::Shared()->NewDatabase();
    ASSERT_FALSE(url.empty());
    auto g = gallery::Gallery::Open({.location = url, .keys = contract::Keys()});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    const HistoryOptions o = Options(url);
    ASSERT_EQ(o.url, url);
    auto h = HistoryStore::Open(o);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    ASSERT_TRUE((*h)->Record(contract::In(1000, "door", Outcome::kUnknown, 1)).ok());
    // A second store on the same database (another node, the CLI) sees the row and keeps the
    // schema as it is (created once, under the advisory lock).
    auto cli = HistoryStore::Open(Options(url));
    ASSERT_TRUE(cli.ok()) << cli.status().ToString();
    EXPECT_EQ((*cli)->count(), 1);
    auto crop = (*cli)->Crop(1);
    ASSERT_TRUE(crop.ok()) << crop.status().ToString();
    EXPECT_EQ(crop->size(), 4u);
    // The gallery's tables are untouched and still work.
    EXPECT_TRUE((*g)->Enroll("alice", {.model_id = "m1"},
                             std::vector<gallery::NewFace>{{.embedding = contract::Face(0)}}).ok());
    PGconn* c = PQconnectdb(url.c_str());
    PGresult* r = PQexec(c, "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'fg_history_%'");
    ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(c);
    EXPECT_STREQ(PQgetvalue(r, 0, 0), "3");  // sightings, strangers, meta
    PQclear(r);
    // The embeddings and crops are stored sealed: no raw float vector, no JPEG marker.
    r = PQexec(c, "SELECT position('\\xffd8ff'::bytea in crop) FROM fg_history_sightings");
    ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(c);
    EXPECT_STREQ(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    PQfinish(c);
}

TEST(HistoryPostgres, BadUrlsAndUnreachableServersAreClearErrors) {
    HistoryOptions o = Options("postgresql://fg@127.0.0.1:1/none?connect_timeout=2");
    auto down = HistoryStore::Open(o);
    EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().ToString();
    o.url = "postgresql://fg@127.0.0.1:1/none?statement_timeout=soon";
    EXPECT_EQ(HistoryStore::Open(o).status().code(), StatusCode::kInvalidArgument);
    o.url = "mysql://x/y";
    EXPECT_EQ(HistoryStore::Open(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(HistoryPostgres, AServerRestartIsSurvived) {
    FG_REQUIRE_POSTGRES();
    PostgresServer* s = PostgresServer::Shared();
    const std::string url = s->NewDatabase();
    auto h = HistoryStore::Open(Options(url));
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    ASSERT_TRUE((*h)->Record(contract::In(1000, "door", Outcome::kSpoof, 0)).ok());
    // Every session of the database ends (as in a server restart or a failover).
    ASSERT_TRUE(s->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                        url.substr(url.rfind('/') + 1, url.find('?') == std::string::npos
                                                            ? std::string::npos
                                                            : url.find('?') - url.rfind('/') - 1) +
                        "'"));
    // The first call may report the lost connection; the store dials again by itself.
    Result<HistoryPage> page = (*h)->List({});
    if (!page.ok()) {
        EXPECT_EQ(page.status().code(), StatusCode::kUnavailable);
        page = (*h)->List({});
    }
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_EQ(page->items.size(), 1u);
    EXPECT_TRUE((*h)->Record(contract::In(2000, "door", Outcome::kSpoof, 0)).ok());
}

}  // namespace
}  // namespace fg::history
