// SPDX-License-Identifier: Apache-2.0
// A minimal RAII layer over SQLite for the service's small private databases (the API key
// store, the audit log) and the 0600 file creation they share.
#pragma once

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "fg/base/status.h"

namespace fg::sqlite {

/// Creates `path` (and its folder, 0700) with mode 0600 whatever the umask, or sets an existing
/// file back to 0600. SQLite then gives its -wal and -shm files the database file's mode.
inline Status CreatePrivateFile(const std::filesystem::path& path) {
    std::error_code ec;
    if (path.has_parent_path() && !std::filesystem::exists(path.parent_path(), ec)) {
        std::filesystem::create_directories(path.parent_path(), ec);
        if (ec) return Unavailable("cannot create folder " + path.parent_path().string() + ": " + ec.message());
        std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all, ec);
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Unavailable("cannot open " + path.string() + ": " + std::strerror(errno));
    struct stat st {};
    Status s;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = InvalidArgument(path.string() + " is not a regular file");
    } else if ((st.st_mode & 0777) != 0600 && ::fchmod(fd, 0600) != 0) {
        s = Unavailable("cannot make " + path.string() + " private (0600): " + std::strerror(errno));
    }
    ::close(fd);
    return s;
}

class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) error_ = Err("prepare");
    }
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    const Status& error() const { return error_; }
    void Bind(int i, std::string_view s) {
        sqlite3_bind_text(stmt_, i, s.data(), int(s.size()), SQLITE_TRANSIENT);
    }
    void Bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
    void BindBlob(int i, const void* p, int n) { sqlite3_bind_blob(stmt_, i, p, n, SQLITE_TRANSIENT); }
    /// True for a row, false when done; errors go to `status`.
    bool Step(Status& status) {
        if (!error_.ok()) {
            status = error_;
            return false;
        }
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc != SQLITE_DONE) status = Err("step");
        return false;
    }
    std::string Text(int c) const {
        const auto* p = sqlite3_column_text(stmt_, c);
        return p ? std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(stmt_, c))) : "";
    }
    std::int64_t Int(int c) const { return sqlite3_column_int64(stmt_, c); }
    std::optional<std::int64_t> OptInt(int c) const {
        if (sqlite3_column_type(stmt_, c) == SQLITE_NULL) return std::nullopt;
        return Int(c);
    }
    std::vector<std::uint8_t> Blob(int c) const {
        const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, c));
        return p ? std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(stmt_, c)) : std::vector<std::uint8_t>{};
    }

  private:
    Status Err(const char* what) const {
        return Unavailable(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
    }
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
    Status error_;
};

/// Opens `path` (created 0600) in WAL mode with synchronous=FULL: a key change or an audit
/// record is on disk when the call returns.
inline Result<sqlite3*> OpenDatabase(const std::filesystem::path& path) {
    FG_RETURN_IF_ERROR(CreatePrivateFile(path));
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
        std::string m = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close_v2(db);
        return Unavailable("cannot open " + path.string() + ": " + m);
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 10000);
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
        char* err = nullptr;
        if (sqlite3_exec(db, pragma, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string m = err ? err : "unknown error";
            sqlite3_free(err);
            sqlite3_close_v2(db);
            // A file that is not a database fails here, with its name.
            return InvalidArgument(path.string() + ": " + m);
        }
    }
    return db;
}

/// FailedPrecondition when the database holds tables other than `own_prefix`*: another
/// program's database (a gallery given as --audit) is refused instead of written into.
inline Status RequireOwnTables(sqlite3* db, const std::filesystem::path& path, const char* own_prefix,
                               const char* what) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                           " AND substr(name, 1, length(?1)) <> ?1 LIMIT 1",
                           -1, &q, nullptr) != SQLITE_OK) {
        return Unavailable(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
    }
    sqlite3_bind_text(q, 1, own_prefix, -1, SQLITE_STATIC);
    std::string other;
    if (sqlite3_step(q) == SQLITE_ROW) other = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (!other.empty()) {
        return FailedPrecondition(path.string() + " is not " + what + " (it holds table '" + other + "')");
    }
    return Status::Ok();
}

inline Status Exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : "unknown error";
        sqlite3_free(err);
        return Unavailable(std::string("sqlite: ") + m);
    }
    return Status::Ok();
}

}  // namespace fg::sqlite
