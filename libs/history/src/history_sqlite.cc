// SPDX-License-Identifier: Apache-2.0
// The SQLite back end of the history: one file beside the gallery, WAL, synchronous=NORMAL (a
// power cut may lose the last sightings committed, never corrupt the file: history is an
// observation log whose insert rate matters more than the last second of it; the gallery and
// the audit log stay FULL).
#include <sqlite3.h>

#include "fg/sqlite/sqlite_db.h"
#include "history_db.h"

namespace fg::history::internal {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS history_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history_sightings (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL, stream TEXT NOT NULL, track INTEGER NOT NULL, outcome INTEGER NOT NULL,
  subject_id TEXT, display_name TEXT, score REAL NOT NULL, margin REAL NOT NULL, liveness REAL,
  quality REAL NOT NULL, stranger_id INTEGER, model_id TEXT NOT NULL, key_id TEXT NOT NULL,
  embedding BLOB, crop BLOB);
CREATE INDEX IF NOT EXISTS history_by_time ON history_sightings (time_ms);
CREATE INDEX IF NOT EXISTS history_by_stream ON history_sightings (stream, time_ms);
CREATE INDEX IF NOT EXISTS history_by_subject ON history_sightings (subject_id, time_ms) WHERE subject_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS history_by_outcome ON history_sightings (outcome, time_ms);
CREATE INDEX IF NOT EXISTS history_by_stream_outcome ON history_sightings (stream, outcome, time_ms);
CREATE INDEX IF NOT EXISTS history_by_stranger ON history_sightings (stranger_id, time_ms) WHERE stranger_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS history_stranger_streams ON history_sightings (stranger_id, stream) WHERE stranger_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS history_strangers (
  id INTEGER PRIMARY KEY, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
  sightings INTEGER NOT NULL, best_sighting_id INTEGER NOT NULL, best_quality REAL NOT NULL);
CREATE INDEX IF NOT EXISTS history_strangers_by_last ON history_strangers (last_seen_ms, id);
)sql";

class SqliteStmt final : public Stmt {
  public:
    SqliteStmt(sqlite3* db, const std::string& sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) err_ = Err("prepare");
    }
    ~SqliteStmt() override { sqlite3_finalize(s_); }
    void Bind(int i, std::int64_t v) override { sqlite3_bind_int64(s_, i, v); }
    void Bind(int i, double v) override { sqlite3_bind_double(s_, i, v); }
    void Bind(int i, std::string_view v) override {
        sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    }
    void BindNull(int i) override { sqlite3_bind_null(s_, i); }
    void BindBlob(int i, std::span<const std::uint8_t> b) override {
        sqlite3_bind_blob(s_, i, b.data(), int(b.size()), SQLITE_TRANSIENT);
    }
    bool Step(Status& status) override {
        if (!err_.ok()) {
            status = err_;
            return false;
        }
        const int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc != SQLITE_DONE) status = Err("step");
        return false;
    }
    void Reset() override { sqlite3_reset(s_); }
    std::int64_t Int(int c) const override { return sqlite3_column_int64(s_, c); }
    double Real(int c) const override { return sqlite3_column_double(s_, c); }
    bool Null(int c) const override { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    std::string Text(int c) const override {
        const auto* p = sqlite3_column_text(s_, c);
        return p ? std::string(reinterpret_cast<const char*>(p), std::size_t(sqlite3_column_bytes(s_, c))) : "";
    }
    std::vector<std::uint8_t> Blob(int c) const override {
        const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s_, c));
        return p ? std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(s_, c)) : std::vector<std::uint8_t>{};
    }

  private:
    Status Err(const char* what) const {
        return Unavailable(std::string("history sqlite ") + what + ": " + sqlite3_errmsg(db_));
    }
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
    Status err_;
};

class SqliteDb final : public Db {
  public:
    SqliteDb(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
    ~SqliteDb() override { sqlite3_close_v2(db_); }
    std::unique_ptr<Stmt> Prepare(const std::string& sql) override { return std::make_unique<SqliteStmt>(db_, sql); }
    Status Exec(const std::string& sql) override { return sqlite::Exec(db_, sql.c_str()); }
    Status Begin(bool) override { return Exec("BEGIN IMMEDIATE"); }  // synchronous=NORMAL for all
    Status Commit() override { return Exec("COMMIT"); }
    Status Rollback() override { return Exec("ROLLBACK"); }
    Result<std::int64_t> NextSightingId() override {
        // AUTOINCREMENT's counter: ids of purged rows are never handed out again.
        SqliteStmt q(db_, "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'history_sightings'), 0) + 1");
        Status st;
        if (!q.Step(st)) return st.ok() ? Unavailable("history: no next id") : st;
        return q.Int(0);
    }
    std::string where() const override { return path_.string(); }

  private:
    sqlite3* db_;
    std::filesystem::path path_;
};

}  // namespace

Result<std::unique_ptr<Db>> OpenSqlite(const std::filesystem::path& path) {
    FG_ASSIGN_OR_RETURN(sqlite3 * raw, sqlite::OpenDatabase(path));
    auto db = std::make_unique<SqliteDb>(raw, path);
    FG_RETURN_IF_ERROR(sqlite::RequireOwnTables(raw, path, "history_", "a history database"));
    FG_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=NORMAL"));
    FG_RETURN_IF_ERROR(db->Exec(kSchema));
    return std::unique_ptr<Db>(std::move(db));
}

}  // namespace fg::history::internal
