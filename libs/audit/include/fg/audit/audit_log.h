// SPDX-License-Identifier: Apache-2.0
// The audit log: an append-only, tamper-evident record of who did what (identify, verify,
// enroll, delete, merge, rename, export, import, key changes) and with what result, on SQLite
// (its own file, 0600, WAL, synchronous=FULL: a record is on disk when Append returns).
//
// Tamper evidence: record n carries mac_n = HMAC-SHA256(key, mac_{n-1} || canonical(record n))
// (mac_0 = 32 zero bytes), and a head row holds HMAC(key, "head" || last seq || last mac).
// Without the key nobody can change, delete, insert or reorder a record, or cut the tail, and
// go unnoticed by Verify(). The key is the caller's (32 bytes): `facegate` derives it from the
// gallery key with DeriveAuditKey (docs/security.md). After `gallery rotate-key` records are
// written under the new gallery key's audit key: each record names its key (an epoch), and
// Verify takes a key ring (AuditKeyRing) to check the chain across the rotation.
//
// Privacy: a record holds identifiers and small non-biometric details only. Append refuses
// details that could carry an image, an embedding or a score vector (see Record::details).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"

namespace fg::audit {

using AuditKey = std::array<std::uint8_t, 32>;

/// HKDF-SHA256 (RFC 5869, no salt) of the 32 bytes of the gallery key with info
/// "facegate-audit-v1": a key for the audit MACs that reveals nothing about the gallery key.
Result<AuditKey> DeriveAuditKey(std::span<const std::uint8_t> gallery_key);

/// The public id of an audit key: hex of the first 8 bytes of HMAC(key, "key-id").
std::string AuditKeyId(const AuditKey& key);

/// The audit keys of the current gallery key and of older ones (after `gallery rotate-key`),
/// as the gallery's KeyRing holds its keys: records are written under `current`; `old` keys are
/// only needed to verify (or to open a log whose last records are under one of them, which
/// moves the log to `current` with its next record).
struct AuditKeyRing {
    AuditKey current{};
    std::vector<AuditKey> old;
};

struct Record {
    std::int64_t seq = 0;       ///< 1, 2, ...: set by Append
    std::int64_t time_ms = 0;   ///< unix milliseconds: set by Append
    std::string who;            ///< key id, "cli:<user>", or "anonymous"
    std::string who_name;       ///< the key's name ("" for the CLI)
    std::string action;         ///< identify, verify, enroll, delete, merge, rename, export,
                                ///< import, key_create, key_revoke, ... ([a-z0-9_.]+)
    std::string target;         ///< subject id, key id, stream id ("" when none)
    std::string result = "ok";  ///< "ok" or a status code name (NOT_FOUND, ...)
    /// A JSON object of small facts (counts, decision, subject ids, a model id). At most 2 KiB
    /// serialised, 3 levels of objects/arrays (e.g. {"faces": [{...}]}), no array of more than
    /// 16 elements: an image, an embedding or a score vector does not fit, by construction.
    nlohmann::json details = nlohmann::json::object();
    /// The audit key (AuditKeyId) the record's MAC is under: set by Append. "" for records
    /// written before key epochs existed (they are under the log's first key).
    std::string key_id;
};

/// The canonical bytes a record's MAC covers: every field length-prefixed, details as stored
/// ("facegate-audit-v2" with the key id last; "facegate-audit-v1" without it when key_id is "").
std::string Canonical(const Record& r, std::string_view details_text);

struct Query {
    std::optional<std::int64_t> since_ms;  ///< time >= since
    std::optional<std::int64_t> until_ms;  ///< time < until
    std::string action;                    ///< "" = any
    std::string who;                       ///< "" = any
    std::int64_t after_seq = 0;            ///< cursor: records with seq > after_seq
    int limit = 100;                       ///< 1..1000
};

struct Page {
    std::vector<Record> records;          ///< ascending seq
    std::optional<std::int64_t> next_after;  ///< pass as after_seq for the next page
};

struct VerifyReport {
    std::int64_t records = 0;
    std::int64_t last_seq = 0;
    /// The audit keys of the chain, oldest first (one per gallery key epoch).
    std::vector<std::string> key_ids;
};

/// Completion of AppendAsync: the record as written, or why it was not.
using AppendDone = std::function<void(Result<Record>)>;

/// Thread-safety: every method is safe concurrently (one connection behind a mutex). Concurrent
/// Appends and AppendAsyncs are group-committed: those that queue while a commit is in flight
/// are written together in the next IMMEDIATE transaction, one fsync for all. Several processes
/// may append to one file: each transaction reads the previous MAC from the file.
class AuditLog {
  public:
    /// Opens or creates the log (0600 whatever the umask). FailedPrecondition when the log was
    /// created with another key (a key id is stored: the first 8 bytes of HMAC(key, "key-id")).
    static Result<std::unique_ptr<AuditLog>> Open(const std::filesystem::path& path, const AuditKey& key);
    /// Opens with a key ring: FailedPrecondition unless the log's last records are under a key
    /// of the ring. New records are written under `keys.current` (a rotation: the log moves to
    /// the new key with its next record; it never goes back, even from another process).
    static Result<std::unique_ptr<AuditLog>> Open(const std::filesystem::path& path, AuditKeyRing keys);
    ~AuditLog();
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    /// Appends and returns the record as written (seq, time). InvalidArgument for a bad action
    /// or details; durable when it returns.
    Result<Record> Append(Record record);
    /// Appends without blocking: `done` is called exactly once, when the record is durable or
    /// has failed — on the log's commit thread (started on first use; keep `done` short: post
    /// the result somewhere), or on the calling thread when the record is refused before it is
    /// queued (bad fields). Records queued while a commit is in flight share the next one.
    /// The destructor commits what is queued and calls every pending `done`.
    void AppendAsync(Record record, AppendDone done);
    /// Transactions committed by this handle (each is one fsync): for tests and metrics.
    std::int64_t commits() const;
    Result<Page> Find(const Query& query);
    /// Walks the whole chain. DataLoss naming the first bad seq: a changed, deleted, inserted
    /// or reordered record, a cut tail, or a record under an older key after a newer one.
    /// FailedPrecondition when a record is under a key the ring does not hold (a rotation:
    /// give the older gallery key too).
    Result<VerifyReport> Verify();

    const std::filesystem::path& path() const;

  private:
    struct Impl;
    explicit AuditLog(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// "2026-12-05T10:00:00Z" (also with an offset, or fractional seconds), unix seconds, or a
/// span back from `now_ms` ("90s", "15m", "2h", "7d"). Unix milliseconds out.
Result<std::int64_t> ParseTime(std::string_view text, std::int64_t now_ms);
/// RFC 3339 UTC with milliseconds.
std::string FormatTime(std::int64_t unix_ms);
/// A record as JSON: seq, time (RFC 3339), time_ms, who, who_name, action, target, result, details.
nlohmann::json ToJson(const Record& r);

}  // namespace fg::audit
