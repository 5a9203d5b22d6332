// SPDX-License-Identifier: Apache-2.0
// The storage seam of HistoryStore: one connection (SQLite file or PostgreSQL database) and its
// prepared statements. history_store.cc writes every statement once, in SQLite's syntax with
// numbered parameters (?1) and the table names history_*; the PostgreSQL connection rewrites
// them ($1, fg_history_*), so the query, paging and sealing logic is shared by both back ends.
// Private to fg::history.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fg/base/status.h"

namespace fg::history::internal {

/// One statement. Bindings survive Reset (as in SQLite); a parameter never bound is NULL.
/// Thread-safety: none; used under the store's mutex.
class Stmt {
  public:
    virtual ~Stmt() = default;
    virtual void Bind(int i, std::int64_t v) = 0;
    virtual void Bind(int i, double v) = 0;
    virtual void Bind(int i, std::string_view v) = 0;
    virtual void BindNull(int i) = 0;
    virtual void BindBlob(int i, std::span<const std::uint8_t> b) = 0;
    /// Runs the statement on the first call; true while there is a row, false when done or on
    /// error (then `status` says which).
    virtual bool Step(Status& status) = 0;
    /// Ready to run again with the same (or re-bound) parameters.
    virtual void Reset() = 0;
    virtual std::int64_t Int(int c) const = 0;
    virtual double Real(int c) const = 0;
    virtual bool Null(int c) const = 0;
    virtual std::string Text(int c) const = 0;
    virtual std::vector<std::uint8_t> Blob(int c) const = 0;
};

/// One connection. Thread-safety: none; the store's mutex serialises it.
class Db {
  public:
    virtual ~Db() = default;
    virtual std::unique_ptr<Stmt> Prepare(const std::string& sql) = 0;
    /// Statements without parameters (the schema, BEGIN ...).
    virtual Status Exec(const std::string& sql) = 0;
    /// A write transaction (SQLite: BEGIN IMMEDIATE, so the next id is ours until COMMIT).
    /// `durable` false: the commit may be lost in a crash, never half applied (PostgreSQL's
    /// synchronous_commit off, as SQLite's synchronous=NORMAL): for recording sightings, whose
    /// rate matters more than the last second of them; erasure and purge stay durable.
    virtual Status Begin(bool durable) = 0;
    virtual Status Commit() = 0;
    virtual Status Rollback() = 0;
    /// The id the next sighting gets (inside Begin/Commit): never reused, even after a purge.
    virtual Result<std::int64_t> NextSightingId() = 0;
    /// For logs: the file, or "PostgreSQL <host>/<db>" (never a password).
    virtual std::string where() const = 0;
};

/// `<path>`: created 0600, WAL, synchronous=NORMAL; refuses a file holding other tables.
Result<std::unique_ptr<Db>> OpenSqlite(const std::filesystem::path& path);
/// `url` (postgres:// or postgresql://, the gallery's URL syntax with statement_timeout=MS,
/// default 10000): tables fg_history_* created under an advisory lock, or NotFound when they
/// are missing and `create` is false.
Result<std::unique_ptr<Db>> OpenPostgres(const std::string& url, bool create);

}  // namespace fg::history::internal
