// SPDX-License-Identifier: Apache-2.0
// SQLite store: one file, WAL journal, synchronous=FULL so that an acknowledged transaction
// survives kill -9 and power loss; schema migrations tracked in PRAGMA user_version.
// Over 600 lines on purpose: one class holding every SQL statement of this back end (with its
// change log), which reads best in one place next to the schema.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

#include "change_log.h"
#include "fg/gallery/crypto.h"
#include "fg/gallery/store.h"

namespace fg::gallery {

std::int64_t NowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

namespace {

Status CreatePrivate(const std::string& path) {
    if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return Status::Ok();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ::close(fd);
        FsyncParentDir(path);
        return Status::Ok();
    }
    if (errno != EEXIST)
        return Unavailable("cannot create gallery database " + path + ": " + std::strerror(errno));
    // An existing database from an older facegate may be group/world readable: tighten it and
    // its companions (best effort: a file of another owner is left as it is).
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const std::string p = path + suffix;
        struct stat st {};
        if (::stat(p.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(p.c_str(), 0600);
    }
    return Status::Ok();
}

// Each entry upgrades the schema from version i to i + 1; never edit a released entry, append.
const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE subjects (
        id TEXT PRIMARY KEY NOT NULL,
        display_name TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE ON UPDATE CASCADE,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        sealed BLOB NOT NULL,
        quality REAL NOT NULL,
        source TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX faces_subject ON faces(subject_id);
    CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
    INSERT INTO meta(key, value) VALUES ('generation', 0);
    )sql",
    // 2: opt-in sealed aligned crops, for re-embedding with another model.
    "ALTER TABLE faces ADD COLUMN crop BLOB;",
    // 3: the change log every process tails (docs/gallery.md, "Change log"). AUTOINCREMENT so
    // a seq is never reused, even after the newest row is gone.
    R"sql(
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        subject_id TEXT NOT NULL DEFAULT '',
        into_subject TEXT NOT NULL DEFAULT '',
        face_ids TEXT NOT NULL DEFAULT ''
    );
    )sql",
};
constexpr int kSchemaVersion = int(std::size(kMigrations));
constexpr std::uintmax_t kQuickCheckMaxBytes = 256ull << 20;

class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql, Status& status) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
            status = Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
        }
    }
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    sqlite3_stmt* get() const { return stmt_; }
    void Bind(int i, const std::string& s) {
        sqlite3_bind_text(stmt_, i, s.data(), int(s.size()), SQLITE_TRANSIENT);
    }
    void Bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
    void Bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
    void Bind(int i, const std::vector<std::uint8_t>& b) {
        sqlite3_bind_blob(stmt_, i, b.data(), int(b.size()), SQLITE_TRANSIENT);
    }
    /// An empty blob is stored as NULL (no crop kept).
    void BindOrNull(int i, const std::vector<std::uint8_t>& b) {
        if (b.empty()) {
            sqlite3_bind_null(stmt_, i);
        } else {
            Bind(i, b);
        }
    }
    std::string Text(int c) const {
        const auto* p = sqlite3_column_text(stmt_, c);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               size_t(sqlite3_column_bytes(stmt_, c)))
                 : "";
    }
    std::int64_t Int(int c) const { return sqlite3_column_int64(stmt_, c); }
    double Real(int c) const { return sqlite3_column_double(stmt_, c); }
    std::vector<std::uint8_t> Blob(int c) const {
        const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, c));
        return p ? std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(stmt_, c))
                 : std::vector<std::uint8_t>{};
    }
    void Reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

  private:
    sqlite3_stmt* stmt_ = nullptr;
};

/// Columns 0-8 of a template query (face_id, subject_id, model_id, dim, key_id, sealed,
/// quality, source, created_at) into `r`.
void ReadTemplateColumns(Stmt& q, TemplateRecord& r) {
    r.face_id = q.Int(0);
    r.subject_id = q.Text(1);
    r.model_id = q.Text(2);
    r.dim = int(q.Int(3));
    r.key_id = q.Text(4);
    r.sealed = q.Blob(5);
    r.quality = float(q.Real(6));
    r.source = q.Text(7);
    r.created_at = q.Int(8);
}

class SqliteStore final : public Store {
  public:
    explicit SqliteStore(std::string path) : path_(std::move(path)) {}
    ~SqliteStore() override { sqlite3_close_v2(db_); }

    Status Open() {
        // Created 0600 before SQLite sees it, whatever the umask: the -wal and -shm files take
        // the database's mode, and a gallery must not be readable by other local users (the
        // templates are sealed, but subject ids, names and metadata are not).
        FG_RETURN_IF_ERROR(CreatePrivate(path_));
        const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
        if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
            return Unavailable("cannot open gallery database " + path_ + ": " +
                               (db_ ? sqlite3_errmsg(db_) : "out of memory"));
        }
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_busy_timeout(db_, 10000);
        // 2 KiB templates waste half of every 4 KiB page; 16 KiB pages hold seven. Only takes
        // effect when the file is created.
        FG_RETURN_IF_ERROR(Exec("PRAGMA page_size=16384").WithContext(path_));
        // A corrupt or non-database file fails here with a clear message rather than later.
        FG_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL").WithContext(path_));
        FG_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
        FG_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON"));
        FG_RETURN_IF_ERROR(Migrate());
        // quick_check reads every page: ~0.1 s per 100 MB, but 30+ s for the 2.4 GB of a
        // 1M-template gallery, whose index opens from its snapshot in about a second. Past
        // kQuickCheckMaxBytes damage is found when the damaged pages are read (a rebuild,
        // an export, a subject's templates) and reported as DataLoss then, never ignored.
        std::error_code ec;
        const auto size = std::filesystem::file_size(path_, ec);
        if (!ec && size > kQuickCheckMaxBytes) return Status::Ok();
        return QuickCheck();
    }

    std::string kind() const override { return "sqlite"; }
    int schema_version() const override { return kSchemaVersion; }

    Result<std::int64_t> Generation() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT value FROM meta WHERE key='generation'");
    }

    Result<std::int64_t> LastChange() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT coalesce(max(seq), 0) FROM changes");
    }

    Result<std::vector<Change>> ChangesSince(std::int64_t after, int limit) override {
        std::lock_guard lock(mu_);
        Status st;
        Stmt q(db_,
               "SELECT seq, time, kind, subject_id, into_subject, face_ids FROM changes"
               " WHERE seq > ? ORDER BY seq LIMIT ?",
               st);
        FG_RETURN_IF_ERROR(st);
        q.Bind(1, after);
        q.Bind(2, std::int64_t(limit));
        std::vector<Change> out;
        int rc;
        while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
            out.push_back(Change{q.Int(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4),
                                 internal::SplitIds(q.Text(5))});
        }
        if (rc != SQLITE_DONE) return Error("read changes");
        return out;
    }

    std::vector<std::int64_t> TakeOwnChanges() override {
        std::lock_guard lock(mu_);
        return std::exchange(own_changes_, {});
    }

    Result<std::vector<TemplateRecord>> GetTemplatesByIds(
        const std::vector<std::int64_t>& face_ids) override {
        std::lock_guard lock(mu_);
        std::vector<std::int64_t> ids = face_ids;
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        Status st;
        Stmt q(db_,
               "SELECT id, subject_id, model_id, dim, key_id, sealed, quality, source, created_at"
               " FROM faces WHERE id = ?",
               st);
        FG_RETURN_IF_ERROR(st);
        std::vector<TemplateRecord> out;
        out.reserve(ids.size());
        for (std::int64_t id : ids) {
            q.Bind(1, id);
            const int rc = sqlite3_step(q.get());
            if (rc == SQLITE_ROW) {
                TemplateRecord r;
                ReadTemplateColumns(q, r);
                out.push_back(std::move(r));
            } else if (rc != SQLITE_DONE) {
                return Error("read templates");
            }
            q.Reset();
        }
        return out;
    }

    Status CreateSubject(const Subject& s) override {
        std::lock_guard lock(mu_);
        return InTransaction([&] { return InsertSubject(s); });
    }

    Result<Subject> GetSubject(const std::string& id) override {
        std::lock_guard lock(mu_);
        Status st;
        Stmt q(db_,
               "SELECT id, display_name, metadata, created_at, updated_at,"
               " (SELECT count(*) FROM faces f WHERE f.subject_id = s.id) FROM subjects s WHERE id "
               "= ?",
               st);
        FG_RETURN_IF_ERROR(st);
        q.Bind(1, id);
        const int rc = sqlite3_step(q.get());
        if (rc == SQLITE_DONE) return NotFound("no subject '" + id + "'");
        if (rc != SQLITE_ROW) return Error("get subject");
        return ReadSubject(q);
    }

    Result<std::unordered_map<std::string, std::string>> GetDisplayNames(
        const std::vector<std::string>& ids) override {
        std::lock_guard lock(mu_);
        std::unordered_map<std::string, std::string> out;
        constexpr size_t kChunk = 500;  // well under SQLITE_MAX_VARIABLE_NUMBER
        for (size_t at = 0; at < ids.size(); at += kChunk) {
            const size_t end = std::min(ids.size(), at + kChunk);
            std::string sql = "SELECT id, display_name FROM subjects WHERE id IN (";
            for (size_t i = at; i < end; ++i) sql += i == at ? "?" : ",?";
            Status st;
            Stmt q(db_, (sql + ")").c_str(), st);
            FG_RETURN_IF_ERROR(st);
            for (size_t i = at; i < end; ++i) q.Bind(int(i - at + 1), ids[i]);
            int rc;
            while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) out[q.Text(0)] = q.Text(1);
            if (rc != SQLITE_DONE) return Error("get display names");
        }
        return out;
    }

    Status RenameSubject(const std::string& id, const std::string& name) override {
        std::lock_guard lock(mu_);
        return InTransaction([&] {
            return UpdateOne("UPDATE subjects SET display_name = ?, updated_at = ? WHERE id = ?",
                             name, id, "rename");
        });
    }

    Status UpdateMetadata(const std::string& id, const std::string& metadata) override {
        std::lock_guard lock(mu_);
        return InTransaction([&] {
            return UpdateOne("UPDATE subjects SET metadata = ?, updated_at = ? WHERE id = ?",
                             metadata, id, "metadata");
        });
    }

    Status MergeSubjects(const std::string& from, const std::string& into,
                         const std::vector<TemplateRecord>* resealed) override {
        std::lock_guard lock(mu_);
        return InTransaction([&]() -> Status {
            FG_RETURN_IF_ERROR(RequireSubject(from));
            FG_RETURN_IF_ERROR(RequireSubject(into));
            Status st;
            std::vector<std::int64_t> moved;
            Stmt ids(db_, "SELECT id FROM faces WHERE subject_id = ? ORDER BY id", st);
            FG_RETURN_IF_ERROR(st);
            ids.Bind(1, from);
            int rc;
            while ((rc = sqlite3_step(ids.get())) == SQLITE_ROW) moved.push_back(ids.Int(0));
            if (rc != SQLITE_DONE) return Error("merge");
            Stmt move(db_, "UPDATE faces SET subject_id = ? WHERE subject_id = ?", st);
            FG_RETURN_IF_ERROR(st);
            move.Bind(1, into);
            move.Bind(2, from);
            if (sqlite3_step(move.get()) != SQLITE_DONE) return Error("merge");
            Stmt del(db_, "DELETE FROM subjects WHERE id = ?", st);
            FG_RETURN_IF_ERROR(st);
            del.Bind(1, from);
            if (sqlite3_step(del.get()) != SQLITE_DONE) return Error("merge");
            Stmt touch(db_, "UPDATE subjects SET updated_at = ? WHERE id = ?", st);
            FG_RETURN_IF_ERROR(st);
            touch.Bind(1, NowSeconds());
            touch.Bind(2, into);
            if (sqlite3_step(touch.get()) != SQLITE_DONE) return Error("merge");
            if (resealed) FG_RETURN_IF_ERROR(ApplyResealed(moved, *resealed));
            return Bump(internal::Note("merge", from, std::move(moved), into));
        });
    }

    Result<std::vector<std::int64_t>> DeleteSubject(const std::string& id) override {
        std::lock_guard lock(mu_);
        std::vector<std::int64_t> ids;
        Status s = InTransaction([&]() -> Status {
            FG_RETURN_IF_ERROR(RequireSubject(id));
            Status st;
            Stmt q(db_, "SELECT id FROM faces WHERE subject_id = ? ORDER BY id", st);
            FG_RETURN_IF_ERROR(st);
            q.Bind(1, id);
            int rc;
            while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) ids.push_back(q.Int(0));
            if (rc != SQLITE_DONE) return Error("delete");
            // Explicit delete of the templates (not only the cascade) so erasure does not depend
            // on the foreign_keys pragma of whoever opens the file.
            Stmt df(db_, "DELETE FROM faces WHERE subject_id = ?", st);
            FG_RETURN_IF_ERROR(st);
            df.Bind(1, id);
            if (sqlite3_step(df.get()) != SQLITE_DONE) return Error("delete");
            Stmt ds(db_, "DELETE FROM subjects WHERE id = ?", st);
            FG_RETURN_IF_ERROR(st);
            ds.Bind(1, id);
            if (sqlite3_step(ds.get()) != SQLITE_DONE) return Error("delete");
            return Bump(internal::Note("delete_subject", id, ids));
        });
        if (!s.ok()) return s;
        // Erased rows may linger in free pages and the WAL; checkpoint so the WAL is truncated
        // (secure_delete zeroes the freed pages).
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
        return ids;
    }

    Result<ListPage> ListSubjects(const std::string& after, int limit) override {
        std::lock_guard lock(mu_);
        Status st;
        Stmt q(db_,
               "SELECT id, display_name, metadata, created_at, updated_at,"
               " (SELECT count(*) FROM faces f WHERE f.subject_id = s.id)"
               " FROM subjects s WHERE id > ? ORDER BY id LIMIT ?",
               st);
        FG_RETURN_IF_ERROR(st);
        q.Bind(1, after);
        q.Bind(2, std::int64_t(limit));
        ListPage page;
        int rc;
        while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) page.subjects.push_back(ReadSubject(q));
        if (rc != SQLITE_DONE) return Error("list subjects");
        if (int(page.subjects.size()) == limit && limit > 0)
            page.next_after = page.subjects.back().id;
        return page;
    }

    Result<std::int64_t> CountSubjects() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT count(*) FROM subjects");
    }

    Result<std::vector<std::int64_t>> AddBulk(const std::vector<Subject>& create,
                                              std::vector<TemplateRecord>& records,
                                              const std::string& change_kind) override {
        std::lock_guard lock(mu_);
        std::vector<std::int64_t> ids;
        ids.reserve(records.size());
        Status s = InTransaction([&]() -> Status {
            Status st;
            Stmt sub(db_,
                     "INSERT INTO subjects(id, display_name, metadata, created_at, updated_at)"
                     " VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                     st);
            FG_RETURN_IF_ERROR(st);
            const std::int64_t now = NowSeconds();
            for (const Subject& c : create) {
                sub.Bind(1, c.id);
                sub.Bind(2, c.display_name.empty() ? c.id : c.display_name);
                sub.Bind(3, c.metadata.empty() ? std::string("{}") : c.metadata);
                sub.Bind(4, c.created_at ? c.created_at : now);
                sub.Bind(5, c.updated_at ? c.updated_at : now);
                if (sqlite3_step(sub.get()) != SQLITE_DONE) return Error("create subject");
                sub.Reset();
            }
            // One prepared statement for the whole batch; the foreign key finds missing
            // subjects without a lookup per record.
            Stmt ins(db_,
                     "INSERT INTO faces(subject_id, model_id, dim, key_id, sealed, quality, "
                     "source, created_at, crop, id)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     st);
            FG_RETURN_IF_ERROR(st);
            for (TemplateRecord& r : records) {
                if (r.created_at == 0) r.created_at = now;
                ins.Bind(1, r.subject_id);
                ins.Bind(2, r.model_id);
                ins.Bind(3, std::int64_t(r.dim));
                ins.Bind(4, r.key_id);
                ins.Bind(5, r.sealed);
                ins.Bind(6, double(r.quality));
                ins.Bind(7, r.source);
                ins.Bind(8, r.created_at);
                ins.BindOrNull(9, r.crop);
                // A reserved id (ReserveFaceIds), else NULL: the next AUTOINCREMENT value.
                if (r.face_id != 0) ins.Bind(10, r.face_id);
                if (sqlite3_step(ins.get()) != SQLITE_DONE) {
                    if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_FOREIGNKEY)
                        return NotFound("no subject '" + r.subject_id + "'");
                    return Error("insert template");
                }
                ins.Reset();
                r.face_id = sqlite3_last_insert_rowid(db_);
                ids.push_back(r.face_id);
            }
            return Bump(internal::Note(change_kind, internal::CommonSubject(records), ids));
        });
        if (!s.ok()) {
            for (TemplateRecord& r : records) r.face_id = 0;
            return s;
        }
        return ids;
    }

    Result<std::vector<std::int64_t>> ReserveFaceIds(std::int64_t n) override {
        if (n < 0) return InvalidArgument("negative face id count");
        std::lock_guard lock(mu_);
        std::int64_t base = 0;
        // No fsync: a reservation lost in a crash had no committed row using it (AddBulk's own
        // durable commit comes after it in the WAL), so its ids may safely be handed out again.
        FG_RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL"));
        Status s = InTransaction([&]() -> Status {
            // AUTOINCREMENT's sqlite_sequence is the high-water mark: moving it reserves the ids
            // for this process and for any later AUTOINCREMENT insert.
            FG_ASSIGN_OR_RETURN(std::int64_t seq,
                                QueryInt("SELECT coalesce(max(seq), 0) FROM sqlite_sequence "
                                         "WHERE name = 'faces'"));
            FG_ASSIGN_OR_RETURN(std::int64_t top, QueryInt("SELECT coalesce(max(id), 0) FROM faces"));
            base = std::max(seq, top);
            FG_RETURN_IF_ERROR(Exec("DELETE FROM sqlite_sequence WHERE name = 'faces'"));
            const std::string sql = "INSERT INTO sqlite_sequence(name, seq) VALUES ('faces', " +
                                    std::to_string(base + n) + ")";
            return Exec(sql.c_str());
        });
        const Status full = Exec("PRAGMA synchronous=FULL");
        if (!s.ok()) return s;
        FG_RETURN_IF_ERROR(full);
        std::vector<std::int64_t> ids(static_cast<size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) ids[size_t(i)] = base + 1 + i;
        return ids;
    }

    Result<std::string> RemoveTemplate(std::int64_t face_id) override {
        std::lock_guard lock(mu_);
        std::string subject;
        Status s = InTransaction([&]() -> Status {
            Status st;
            Stmt q(db_, "SELECT subject_id FROM faces WHERE id = ?", st);
            FG_RETURN_IF_ERROR(st);
            q.Bind(1, face_id);
            const int rc = sqlite3_step(q.get());
            if (rc == SQLITE_DONE) return NotFound("no face " + std::to_string(face_id));
            if (rc != SQLITE_ROW) return Error("remove face");
            subject = q.Text(0);
            Stmt d(db_, "DELETE FROM faces WHERE id = ?", st);
            FG_RETURN_IF_ERROR(st);
            d.Bind(1, face_id);
            if (sqlite3_step(d.get()) != SQLITE_DONE) return Error("remove face");
            return Bump(internal::Note("remove_face", subject, {face_id}));
        });
        if (!s.ok()) return s;
        return subject;
    }

    Result<std::vector<TemplateRecord>> GetTemplates(const std::string& subject_id) override {
        std::lock_guard lock(mu_);
        std::vector<TemplateRecord> out;
        FG_RETURN_IF_ERROR(Scan(
            "WHERE subject_id = ?", subject_id,
            [&](const TemplateRecord& r) {
                out.push_back(r);
                return Status::Ok();
            },
            true));
        return out;
    }

    Status ForEachTemplate(const std::function<Status(const TemplateRecord&)>& fn,
                           bool with_crops) override {
        std::lock_guard lock(mu_);
        return Scan("", "", fn, with_crops);
    }

    Result<std::vector<FaceRef>> ListFaceRefs() override {
        std::lock_guard lock(mu_);
        Status st;
        // Read from the subject index, which holds (subject_id, rowid): a scan of the table
        // itself would read every 2 KB sealed template (2.4 GB at 1M faces, most of the time
        // of opening a large gallery); sorting in memory is far cheaper.
        Stmt q(db_, "SELECT id, subject_id FROM faces INDEXED BY faces_subject", st);
        FG_RETURN_IF_ERROR(st);
        std::vector<FaceRef> out;
        int rc;
        while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) out.push_back({q.Int(0), q.Text(1)});
        if (rc != SQLITE_DONE) return Error("list faces");
        std::sort(out.begin(), out.end(),
                  [](const FaceRef& a, const FaceRef& b) { return a.face_id < b.face_id; });
        return out;
    }

    Result<std::int64_t> CountTemplates() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT count(*) FROM faces");
    }

    Result<std::int64_t> CountTemplatesWithoutCrop() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT count(*) FROM faces WHERE crop IS NULL");
    }

    Status UpdateSealed(const std::vector<TemplateRecord>& records) override {
        std::lock_guard lock(mu_);
        return InTransaction([&]() -> Status {
            Status st;
            Stmt u(db_, "UPDATE faces SET sealed = ?, key_id = ?, crop = ? WHERE id = ?", st);
            FG_RETURN_IF_ERROR(st);
            for (const TemplateRecord& r : records) {
                u.Bind(1, r.sealed);
                u.Bind(2, r.key_id);
                u.BindOrNull(3, r.crop);
                u.Bind(4, r.face_id);
                if (sqlite3_step(u.get()) != SQLITE_DONE) return Error("update template");
                u.Reset();
            }
            return Bump(internal::Note("rotate_key"));
        });
    }

    Status ReplaceTemplates(
        const std::vector<TemplateRecord>& records,
        const std::vector<std::pair<std::string, std::string>>& settings) override {
        std::lock_guard lock(mu_);
        return InTransaction([&]() -> Status {
            Status st;
            Stmt u(db_,
                   "UPDATE faces SET model_id = ?, dim = ?, sealed = ?, key_id = ? WHERE id = ?",
                   st);
            FG_RETURN_IF_ERROR(st);
            for (const TemplateRecord& r : records) {
                u.Bind(1, r.model_id);
                u.Bind(2, std::int64_t(r.dim));
                u.Bind(3, r.sealed);
                u.Bind(4, r.key_id);
                u.Bind(5, r.face_id);
                if (sqlite3_step(u.get()) != SQLITE_DONE) return Error("update template");
                if (sqlite3_changes(db_) != 1)
                    return NotFound("face " + std::to_string(r.face_id) + " vanished");
                u.Reset();
            }
            for (const auto& [k, v] : settings) FG_RETURN_IF_ERROR(PutSettingLocked(k, v));
            return Bump(internal::Note("reembed"));
        });
    }

    Result<std::optional<std::string>> GetSetting(const std::string& key) override {
        std::lock_guard lock(mu_);
        Status st;
        Stmt q(db_, "SELECT value FROM settings WHERE key = ?", st);
        FG_RETURN_IF_ERROR(st);
        q.Bind(1, key);
        const int rc = sqlite3_step(q.get());
        if (rc == SQLITE_DONE) return std::optional<std::string>();
        if (rc != SQLITE_ROW) return Error("get setting");
        return std::optional<std::string>(q.Text(0));
    }

    Status PutSetting(const std::string& key, const std::string& value) override {
        std::lock_guard lock(mu_);
        return InTransaction([&]() -> Status {
            FG_RETURN_IF_ERROR(PutSettingLocked(key, value));
            return Bump(internal::Note("settings"));
        });
    }

  private:
    /// Merge: the moved faces' re-sealed blobs; `resealed` must name exactly `moved`.
    Status ApplyResealed(const std::vector<std::int64_t>& moved,
                         const std::vector<TemplateRecord>& resealed) {
        std::vector<std::int64_t> given;
        for (const TemplateRecord& r : resealed) given.push_back(r.face_id);
        std::sort(given.begin(), given.end());
        if (given != moved) {
            return Unavailable("the subject's templates changed during the merge; retry it");
        }
        Status st;
        Stmt u(db_, "UPDATE faces SET sealed = ?, key_id = ?, crop = ? WHERE id = ?", st);
        FG_RETURN_IF_ERROR(st);
        for (const TemplateRecord& r : resealed) {
            u.Bind(1, r.sealed);
            u.Bind(2, r.key_id);
            u.BindOrNull(3, r.crop);
            u.Bind(4, r.face_id);
            if (sqlite3_step(u.get()) != SQLITE_DONE) return Error("merge: update template");
            u.Reset();
        }
        return Status::Ok();
    }

    Status PutSettingLocked(const std::string& key, const std::string& value) {
        Status st;
        Stmt q(db_,
               "INSERT INTO settings(key, value) VALUES (?, ?)"
               " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
               st);
        FG_RETURN_IF_ERROR(st);
        q.Bind(1, key);
        q.Bind(2, value);
        if (sqlite3_step(q.get()) != SQLITE_DONE) return Error("put setting");
        return Status::Ok();
    }

    Status Error(const std::string& what) const {
        const int code = sqlite3_extended_errcode(db_);
        std::string msg = what + " in " + path_ + ": " + sqlite3_errmsg(db_);
        if ((code & 0xff) == SQLITE_IOERR && OutOfSpace()) {
            return ResourceExhausted(
                msg + " (no space left for the database; nothing of this change was written)");
        }
        switch (code & 0xff) {
            case SQLITE_FULL:
                return ResourceExhausted(msg + " (disk full; nothing of this change was written)");
            case SQLITE_CORRUPT:
            case SQLITE_NOTADB:
                return DataLoss(msg + " (the database file is damaged)");
            case SQLITE_CONSTRAINT:
                return AlreadyExists(msg);
            case SQLITE_BUSY:
            case SQLITE_LOCKED:
            case SQLITE_IOERR:
            case SQLITE_CANTOPEN:
            case SQLITE_READONLY:
                return Unavailable(msg);
            default:
                return Internal(msg);
        }
    }

    // SQLite reports ENOSPC/EFBIG on a WAL append as a generic I/O error whose errno is not
    // reliably kept, so look at the file system and the file-size limit directly.
    bool OutOfSpace() const {
        std::error_code ec;
        const auto dir = std::filesystem::absolute(path_, ec).parent_path();
        struct statvfs vfs {};
        if (::statvfs(dir.c_str(), &vfs) == 0 &&
            std::uint64_t(vfs.f_bavail) * vfs.f_frsize < (16u << 20))
            return true;
        rlimit lim{};
        if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
            std::uintmax_t biggest = std::filesystem::file_size(path_, ec);
            if (ec) biggest = 0;
            const std::uintmax_t wal = std::filesystem::file_size(path_ + "-wal", ec);
            if (!ec) biggest = std::max(biggest, wal);
            if (biggest + (1u << 20) >= lim.rlim_cur) return true;
        }
        return false;
    }

    Status Exec(const char* sql) {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string m = err ? err : "unknown error";
            sqlite3_free(err);
            Status s = Error(std::string("sqlite: ") + m);
            return s;
        }
        return Status::Ok();
    }

    Result<std::int64_t> QueryInt(const char* sql) {
        Status st;
        Stmt q(db_, sql, st);
        FG_RETURN_IF_ERROR(st);
        if (sqlite3_step(q.get()) != SQLITE_ROW) return Error("query");
        return q.Int(0);
    }

    Status Migrate() {
        FG_ASSIGN_OR_RETURN(std::int64_t version, QueryInt("PRAGMA user_version"));
        if (version > kSchemaVersion) {
            return FailedPrecondition(path_ + " has schema version " + std::to_string(version) +
                                      ", newer than this facegate understands (" +
                                      std::to_string(kSchemaVersion) + "); upgrade facegate");
        }
        for (std::int64_t v = version; v < kSchemaVersion; ++v) {
            FG_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
            Status s = Exec(kMigrations[v]);
            if (s.ok()) s = Exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str());
            if (s.ok()) s = Exec("COMMIT");
            if (!s.ok()) {
                Exec("ROLLBACK").ok();
                return s.WithContext("schema migration " + std::to_string(v) + " -> " +
                                     std::to_string(v + 1));
            }
        }
        // Freed pages of erased templates are overwritten, not left readable in the file.
        return Exec("PRAGMA secure_delete=ON");
    }

    Status QuickCheck() {
        Status st;
        Stmt q(db_, "PRAGMA quick_check(1)", st);
        FG_RETURN_IF_ERROR(st);
        if (sqlite3_step(q.get()) != SQLITE_ROW) return Error("integrity check");
        const std::string r = q.Text(0);
        if (r != "ok") return DataLoss(path_ + " failed its integrity check: " + r);
        return Status::Ok();
    }

    template <typename Fn>
    Status InTransaction(Fn&& fn) {
        FG_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
        pending_change_ = 0;
        Status s = fn();
        if (s.ok()) s = Exec("COMMIT");
        if (!s.ok()) Exec("ROLLBACK").ok();
        // Only a committed seq is ours: a rolled-back one may be handed to the next writer.
        if (s.ok() && pending_change_ > 0) own_changes_.push_back(pending_change_);
        pending_change_ = 0;
        return s;
    }

    /// Every mutation ends here, inside its transaction: the generation and the change row
    /// commit (or roll back) together with the mutation itself.
    Status Bump(const Change& c) {
        FG_RETURN_IF_ERROR(Exec("UPDATE meta SET value = value + 1 WHERE key = 'generation'"));
        Status st;
        Stmt q(db_,
               "INSERT INTO changes(time, kind, subject_id, into_subject, face_ids)"
               " VALUES (?, ?, ?, ?, ?)",
               st);
        FG_RETURN_IF_ERROR(st);
        q.Bind(1, NowSeconds());
        q.Bind(2, c.kind);
        q.Bind(3, c.subject_id);
        q.Bind(4, c.into);
        q.Bind(5, internal::JoinIds(c.face_ids));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return Error("write change log");
        pending_change_ = sqlite3_last_insert_rowid(db_);
        return Status::Ok();
    }

    bool SubjectExists(const std::string& id) {
        Status st;
        Stmt q(db_, "SELECT 1 FROM subjects WHERE id = ?", st);
        if (!st.ok()) return false;
        q.Bind(1, id);
        return sqlite3_step(q.get()) == SQLITE_ROW;
    }

    Status RequireSubject(const std::string& id) {
        return SubjectExists(id) ? Status::Ok() : NotFound("no subject '" + id + "'");
    }

    Status InsertSubject(const Subject& s) {
        Status st;
        Stmt q(db_,
               "INSERT INTO subjects(id, display_name, metadata, created_at, updated_at) VALUES "
               "(?, ?, ?, ?, ?)",
               st);
        FG_RETURN_IF_ERROR(st);
        const std::int64_t now = NowSeconds();
        q.Bind(1, s.id);
        q.Bind(2, s.display_name.empty() ? s.id : s.display_name);
        q.Bind(3, s.metadata.empty() ? std::string("{}") : s.metadata);
        q.Bind(4, s.created_at ? s.created_at : now);
        q.Bind(5, s.updated_at ? s.updated_at : now);
        if (sqlite3_step(q.get()) != SQLITE_DONE) {
            if ((sqlite3_extended_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
                return AlreadyExists("subject '" + s.id + "' already exists");
            }
            return Error("create subject");
        }
        return Bump(internal::Note("enroll", s.id));
    }

    Status UpdateOne(const char* sql, const std::string& value, const std::string& id,
                     const char* kind) {
        Status st;
        Stmt q(db_, sql, st);
        FG_RETURN_IF_ERROR(st);
        q.Bind(1, value);
        q.Bind(2, NowSeconds());
        q.Bind(3, id);
        if (sqlite3_step(q.get()) != SQLITE_DONE) return Error("update subject");
        if (sqlite3_changes(db_) == 0) return NotFound("no subject '" + id + "'");
        return Bump(internal::Note(kind, id));
    }

    static Subject ReadSubject(const Stmt& q) {
        return Subject{q.Text(0), q.Text(1), q.Text(2), q.Int(3), q.Int(4), q.Int(5)};
    }

    Status Scan(const std::string& where, const std::string& arg,
                const std::function<Status(const TemplateRecord&)>& fn, bool with_crops) {
        Status st;
        const std::string sql =
            std::string("SELECT id, subject_id, model_id, dim, key_id, sealed, quality, source, "
                        "created_at, ") +
            (with_crops ? "crop" : "NULL") + " FROM faces " + where + " ORDER BY id";
        Stmt q(db_, sql.c_str(), st);
        FG_RETURN_IF_ERROR(st);
        if (!where.empty()) q.Bind(1, arg);
        int rc;
        TemplateRecord r;
        while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
            ReadTemplateColumns(q, r);
            r.crop = q.Blob(9);
            FG_RETURN_IF_ERROR(fn(r));
        }
        if (rc != SQLITE_DONE) return Error("read templates");
        return Status::Ok();
    }

    std::string path_;
    sqlite3* db_ = nullptr;
    std::recursive_mutex mu_;
    std::int64_t pending_change_ = 0;         // seq written by the open transaction
    std::vector<std::int64_t> own_changes_;  // committed by this object, not yet taken
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
    std::error_code ec;
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
        return NotFound("directory of the gallery database does not exist: " + parent.string());
    }
    auto store = std::make_unique<SqliteStore>(path);
    FG_RETURN_IF_ERROR(store->Open());
    return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& location) {
    if (location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0) {
        return OpenPostgresStore(location);
    }
    if (location.empty()) return InvalidArgument("empty gallery location (--db)");
    return OpenSqliteStore(location);
}

}  // namespace fg::gallery
