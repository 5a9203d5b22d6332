// SPDX-License-Identifier: Apache-2.0
// Over ~600 lines on purpose: the chain (MACs, key epochs), the group commit (sync leaders and
// the async commit thread) and Verify share one Impl and one transaction discipline; split,
// each part would need the other's internals.
#include "fg/audit/audit_log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <exception>
#include <mutex>
#include <thread>

#include "fg/sqlite/sqlite_db.h"

namespace fg::audit {
namespace internal {
using namespace ::fg::sqlite;  // the shared SQLite helpers (libs/sqlite)
}

using internal::Stmt;

namespace {

using Mac = std::array<std::uint8_t, 32>;

constexpr std::size_t kMaxDetailsBytes = 2048;
constexpr std::size_t kMaxArray = 16;
constexpr int kMaxDepth = 2;

Mac Hmac(const AuditKey& key, std::string_view data) {
    Mac out{};
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out.data(), &n);
    return out;
}

std::string AsString(const Mac& m) { return std::string(reinterpret_cast<const char*>(m.data()), m.size()); }

void AppendField(std::string& out, std::string_view field) {
    const std::uint64_t n = field.size();
    for (int i = 7; i >= 0; --i) out.push_back(char((n >> (8 * i)) & 0xff));
    out.append(field);
}

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Status CheckText(std::string_view what, std::string_view s, std::size_t max, bool required) {
    if (required && s.empty()) return InvalidArgument("audit record: " + std::string(what) + " is empty");
    if (s.size() > max) return InvalidArgument("audit record: " + std::string(what) + " is longer than " + std::to_string(max));
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) return InvalidArgument("audit record: " + std::string(what) + " holds a control character");
    }
    return Status::Ok();
}

Status CheckDetails(const nlohmann::json& j, int depth) {
    if (j.is_array() && j.size() > kMaxArray) {
        return InvalidArgument("audit details: an array of more than 16 elements (never images, embeddings or score vectors)");
    }
    if (j.is_binary()) return InvalidArgument("audit details: binary values are not allowed");
    if (j.is_structured()) {
        if (depth > kMaxDepth) return InvalidArgument("audit details: nested deeper than 3 levels");
        for (const auto& v : j) FG_RETURN_IF_ERROR(CheckDetails(v, depth + 1));
    }
    return Status::Ok();
}

Status Validate(const Record& r) {
    if (r.action.empty() || r.action.size() > 64) return InvalidArgument("audit record: action must be 1 to 64 characters");
    for (char c : r.action) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return InvalidArgument("audit record: action '" + r.action + "' must match [a-z0-9_.]+");
    }
    FG_RETURN_IF_ERROR(CheckText("who", r.who, 128, true));
    FG_RETURN_IF_ERROR(CheckText("who_name", r.who_name, 128, false));
    FG_RETURN_IF_ERROR(CheckText("target", r.target, 256, false));
    FG_RETURN_IF_ERROR(CheckText("result", r.result, 64, true));
    if (!r.details.is_object()) return InvalidArgument("audit details must be a JSON object");
    return CheckDetails(r.details, 0);
}

std::string HeadBytes(std::int64_t seq, const Mac& last) {
    std::string s = "head";
    AppendField(s, std::to_string(seq));
    s.append(AsString(last));
    return s;
}

}  // namespace

Result<AuditKey> DeriveAuditKey(std::span<const std::uint8_t> gallery_key) {
    if (gallery_key.size() != 32) return InvalidArgument("the gallery key must be 32 bytes to derive the audit key");
    static constexpr std::string_view kInfo = "facegate-audit-v1";
    AuditKey out{};
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
    std::size_t n = out.size();
    const bool ok = ctx != nullptr && EVP_PKEY_derive_init(ctx) > 0 &&
                    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
                    EVP_PKEY_CTX_set1_hkdf_key(ctx, gallery_key.data(), int(gallery_key.size())) > 0 &&
                    EVP_PKEY_CTX_add1_hkdf_info(ctx, reinterpret_cast<const unsigned char*>(kInfo.data()),
                                                int(kInfo.size())) > 0 &&
                    EVP_PKEY_derive(ctx, out.data(), &n) > 0 && n == out.size();
    EVP_PKEY_CTX_free(ctx);
    if (!ok) return Internal("HKDF-SHA256 failed");
    return out;
}

std::string AuditKeyId(const AuditKey& key) {
    const Mac m = Hmac(key, "key-id");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 8; ++i) {
        out.push_back(kHex[m[i] >> 4]);
        out.push_back(kHex[m[i] & 15]);
    }
    return out;
}

std::string Canonical(const Record& r, std::string_view details_text) {
    std::string s = r.key_id.empty() ? "facegate-audit-v1" : "facegate-audit-v2";
    AppendField(s, std::to_string(r.seq));
    AppendField(s, std::to_string(r.time_ms));
    AppendField(s, r.who);
    AppendField(s, r.who_name);
    AppendField(s, r.action);
    AppendField(s, r.target);
    AppendField(s, r.result);
    AppendField(s, details_text);
    if (!r.key_id.empty()) AppendField(s, r.key_id);  // v2: the epoch is under the MAC too
    return s;
}

struct AuditLog::Impl {
    std::filesystem::path path;
    AuditKey key{};         // ring.current: new records are written under it
    std::string key_id;     // AuditKeyId(key)
    std::string first_key;  // the key id of v1 records (key_id ""): the log's first key
    std::vector<std::pair<std::string, AuditKey>> ring;  // id -> key, current first
    std::mutex mu;  // guards db
    sqlite3* db = nullptr;

    // Group commit (see Append). A sync appender's record lives on its stack until `done`; an
    // async one on the heap, owned by the queue until its callback has run.
    struct Pending {
        Record record;
        std::string details_text;
        Status status;
        bool done = false;  // guarded by qmu
        AppendDone callback;  // set: AppendAsync (deleted after the callback)
    };
    std::mutex qmu;  // guards queue, committing, Pending::done, stop; never held while waiting on mu
    std::condition_variable qcv;
    std::vector<Pending*> queue;  // FIFO: seq order
    bool committing = false;      // a leader is writing a batch
    bool stop = false;
    std::thread committer;        // started by the first AppendAsync
    std::atomic<std::int64_t> commits{0};
    /// Writes `batch` in one transaction; sets every entry's status. Takes mu.
    void CommitBatch(const std::vector<Pending*>& batch);
    /// Commits `batch` (qmu not held), then marks it done and wakes the waiters. Async entries
    /// get their callbacks here, outside every lock.
    void RunBatch(std::vector<Pending*> batch);
    void CommitterLoop();

    const AuditKey* Find(const std::string& id) const {
        for (const auto& [i, k] : ring) {
            if (i == id) return &k;
        }
        return nullptr;
    }

    ~Impl() {
        {
            std::lock_guard l(qmu);
            stop = true;
        }
        qcv.notify_all();
        if (committer.joinable()) committer.join();
        sqlite3_close_v2(db);
        OPENSSL_cleanse(key.data(), key.size());
        for (auto& [i, k] : ring) OPENSSL_cleanse(k.data(), k.size());
    }

    static constexpr const char* kColumns = "seq, time_ms, who, who_name, action, target, result, details, mac, key_id";
    static Record Row(const Stmt& q, std::string* details_text, std::vector<std::uint8_t>* mac) {
        Record r;
        r.seq = q.Int(0);
        r.time_ms = q.Int(1);
        r.who = q.Text(2);
        r.who_name = q.Text(3);
        r.action = q.Text(4);
        r.target = q.Text(5);
        r.result = q.Text(6);
        const std::string text = q.Text(7);
        r.details = nlohmann::json::parse(text, nullptr, false);
        if (r.details.is_discarded()) r.details = nlohmann::json::object();
        if (details_text) *details_text = text;
        if (mac) *mac = q.Blob(8);
        r.key_id = q.Text(9);
        return r;
    }
};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::~AuditLog() = default;
const std::filesystem::path& AuditLog::path() const { return impl_->path; }

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::filesystem::path& path, const AuditKey& key) {
    return Open(path, AuditKeyRing{key, {}});
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::filesystem::path& path, AuditKeyRing keys) {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->key = keys.current;
    impl->key_id = AuditKeyId(keys.current);
    impl->ring.emplace_back(impl->key_id, keys.current);
    for (const auto& k : keys.old) impl->ring.emplace_back(AuditKeyId(k), k);
    OPENSSL_cleanse(keys.current.data(), keys.current.size());
    for (auto& k : keys.old) OPENSSL_cleanse(k.data(), k.size());
    FG_ASSIGN_OR_RETURN(impl->db, internal::OpenDatabase(path));
    FG_RETURN_IF_ERROR(internal::RequireOwnTables(impl->db, path, "audit", "an audit log"));
    // The triggers stop accidental edits (a stray UPDATE); the MAC chain is what catches a
    // deliberate one, since whoever can write the file can drop a trigger.
    FG_RETURN_IF_ERROR(internal::Exec(impl->db,
                                      "CREATE TABLE IF NOT EXISTS audit ("
                                      " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, who TEXT NOT NULL,"
                                      " who_name TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
                                      " result TEXT NOT NULL, details TEXT NOT NULL, mac BLOB NOT NULL,"
                                      " key_id TEXT NOT NULL DEFAULT '');"
                                      "CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ms);"
                                      "CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);"
                                      "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
                                      " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
                                      "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
                                      " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;")
                           .WithContext(path.string()));
    {
        // Logs made before key epochs: add the column (old records keep "", the first key).
        Status s;
        Stmt q(impl->db, "SELECT 1 FROM pragma_table_info('audit') WHERE name = 'key_id'");
        const bool has = q.Step(s);
        FG_RETURN_IF_ERROR(s.WithContext(path.string()));
        if (!has) {
            FG_RETURN_IF_ERROR(internal::Exec(impl->db, "ALTER TABLE audit ADD COLUMN key_id TEXT NOT NULL DEFAULT ''")
                                   .WithContext(path.string()));
        }
    }
    {
        // The first key's id (raw 8 bytes, as stored since the first version): whose v1 records are.
        const std::string raw_id = AsString(Hmac(impl->key, "key-id")).substr(0, 8);
        Stmt ins(impl->db, "INSERT OR IGNORE INTO audit_meta (name, value) VALUES ('key_id', ?)");
        ins.BindBlob(1, raw_id.data(), int(raw_id.size()));
        Status s;
        ins.Step(s);
        FG_RETURN_IF_ERROR(s.WithContext(path.string()));
        Stmt q(impl->db, "SELECT value FROM audit_meta WHERE name = 'key_id'");
        std::vector<std::uint8_t> stored;
        if (q.Step(s)) stored = q.Blob(0);
        FG_RETURN_IF_ERROR(s.WithContext(path.string()));
        static constexpr char kHex[] = "0123456789abcdef";
        for (std::uint8_t c : stored) {
            impl->first_key.push_back(kHex[c >> 4]);
            impl->first_key.push_back(kHex[c & 15]);
        }
    }
    {
        // The key of the last record (the log's current epoch) must be in the ring.
        Status s;
        Stmt q(impl->db, "SELECT key_id FROM audit ORDER BY seq DESC LIMIT 1");
        std::string last = impl->first_key;
        if (q.Step(s)) {
            const std::string k = q.Text(0);
            if (!k.empty()) last = k;
        }
        FG_RETURN_IF_ERROR(s.WithContext(path.string()));
        if (impl->Find(last) == nullptr) {
            return FailedPrecondition(path.string() + " was last written under another audit key (" + last +
                                      ") than the one(s) given (is this the right gallery key? after "
                                      "`gallery rotate-key`, give the new one)");
        }
    }
    return std::unique_ptr<AuditLog>(new AuditLog(std::move(impl)));
}

// Group commit (leader/follower): an appender queues its record; whoever finds no commit in
// flight becomes the leader, takes everything queued, writes it in ONE IMMEDIATE transaction (one
// fsync) and wakes the others. Records that arrive during that fsync form the next batch, so
// under load the cost of the fsync is shared by every request waiting on it, while a lone
// appender still commits at once (no timer). A record is on disk when its Append returns, and
// seqs (hence the MAC chain) follow the queue order. AppendAsync queues the same way; its
// records are committed by the commit thread (or by a sync leader that finds them queued).
namespace {
Status Prepare(Record& r, std::string& details_text) {
    FG_RETURN_IF_ERROR(Validate(r));
    details_text = r.details.dump();  // keys sorted: nlohmann objects are ordered maps
    if (details_text.size() > kMaxDetailsBytes) {
        return InvalidArgument("audit details are larger than 2 KiB (never images, embeddings or score vectors)");
    }
    return Status::Ok();
}
}  // namespace

Result<Record> AuditLog::Append(Record r) {
    Impl::Pending me;
    FG_RETURN_IF_ERROR(Prepare(r, me.details_text));
    me.record = std::move(r);
    std::unique_lock ql(impl_->qmu);
    impl_->queue.push_back(&me);
    while (!me.done) {
        if (impl_->committing) {
            impl_->qcv.wait(ql);
            continue;
        }
        impl_->committing = true;
        std::vector<Impl::Pending*> batch;
        batch.swap(impl_->queue);
        ql.unlock();
        impl_->RunBatch(std::move(batch));
        ql.lock();
    }
    if (!me.status.ok()) return me.status;
    return std::move(me.record);
}

void AuditLog::AppendAsync(Record r, AppendDone done) {
    auto p = std::make_unique<Impl::Pending>();
    if (Status s = Prepare(r, p->details_text); !s.ok()) {
        if (done) done(s);
        return;
    }
    p->record = std::move(r);
    p->callback = done ? std::move(done) : [](Result<Record>) {};
    {
        std::lock_guard ql(impl_->qmu);
        impl_->queue.push_back(p.release());
        if (!impl_->committer.joinable()) impl_->committer = std::thread([impl = impl_.get()] { impl->CommitterLoop(); });
    }
    impl_->qcv.notify_all();
}

std::int64_t AuditLog::commits() const { return impl_->commits.load(); }

void AuditLog::Impl::RunBatch(std::vector<Pending*> batch) {
    try {
        CommitBatch(batch);
    } catch (const std::exception& e) {  // e.g. bad_alloc: never leave the followers waiting
        for (auto* p : batch) p->status = Internal(std::string("audit append: ") + e.what());
    }
    std::vector<Pending*> async;
    {
        std::lock_guard ql(qmu);
        for (auto* p : batch) {
            if (p->callback) {
                async.push_back(p);
            } else {
                p->done = true;
            }
        }
        committing = false;
    }
    qcv.notify_all();
    for (auto* p : async) {
        std::unique_ptr<Pending> owned(p);
        Result<Record> out = p->status.ok() ? Result<Record>(std::move(p->record)) : Result<Record>(p->status);
        try {
            p->callback(std::move(out));
        } catch (...) {  // a callback must not take the commit thread down
        }
    }
}

// The commit thread: commits whatever is queued whenever no (sync) leader is at it. On stop it
// drains the queue first, so every AppendAsync gets its callback.
void AuditLog::Impl::CommitterLoop() {
    std::unique_lock ql(qmu);
    for (;;) {
        qcv.wait(ql, [&] { return (!queue.empty() && !committing) || (stop && queue.empty() && !committing); });
        if (queue.empty()) return;  // stopping, nothing left
        committing = true;
        std::vector<Pending*> batch;
        batch.swap(queue);
        ql.unlock();
        RunBatch(std::move(batch));
        ql.lock();
    }
}

void AuditLog::Impl::CommitBatch(const std::vector<Pending*>& batch) {
    std::lock_guard lock(mu);
    auto fail_all = [&](const Status& s) {
        for (auto* p : batch) p->status = s;
    };
    // IMMEDIATE: the previous MAC is read and the next records written under one write lock, so
    // two processes appending at once still form one chain.
    if (Status b = internal::Exec(db, "BEGIN IMMEDIATE"); !b.ok()) return fail_all(b);
    auto rollback = [&](const Status& s) {
        if (!sqlite3_get_autocommit(db)) (void)internal::Exec(db, "ROLLBACK");
        fail_all(s);
    };
    Status s;
    std::int64_t seq = 0;
    Mac prev{};
    {
        Stmt q(db, "SELECT seq, mac, key_id FROM audit ORDER BY seq DESC LIMIT 1");
        std::string last_key = first_key;
        if (q.Step(s)) {
            seq = q.Int(0);
            const auto m = q.Blob(1);
            if (m.size() == prev.size()) std::copy(m.begin(), m.end(), prev.begin());
            if (const std::string k = q.Text(2); !k.empty()) last_key = k;
        }
        if (!s.ok()) return rollback(s);
        // Another process may have moved the log to a newer key since we opened it (a gallery
        // key rotation): never write under a key older than the log's last one.
        if (last_key != key_id && Find(last_key) == nullptr) {
            return rollback(FailedPrecondition("the audit log moved to audit key " + last_key +
                                               " (gallery rotate-key): restart with the new gallery key"));
        }
    }
    const std::int64_t now = NowMs();
    int written = 0;
    for (auto* p : batch) {
        Record& r = p->record;
        r.seq = seq + 1;
        r.time_ms = now;
        r.key_id = key_id;
        const Mac mac = Hmac(key, AsString(prev) + Canonical(r, p->details_text));
        Stmt ins(db, "INSERT INTO audit (seq, time_ms, who, who_name, action, target, result, details, mac, key_id)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        ins.Bind(1, r.seq);
        ins.Bind(2, r.time_ms);
        ins.Bind(3, r.who);
        ins.Bind(4, r.who_name);
        ins.Bind(5, r.action);
        ins.Bind(6, r.target);
        ins.Bind(7, r.result);
        ins.Bind(8, p->details_text);
        ins.BindBlob(9, mac.data(), int(mac.size()));
        ins.Bind(10, r.key_id);
        Status one;
        ins.Step(one);
        if (!one.ok()) {
            // A failed INSERT undoes only itself: this record fails, the chain does not advance
            // and the others in the batch go on. If SQLite dropped the whole transaction (an IO
            // error), nothing of the batch is written: all of it fails.
            if (sqlite3_get_autocommit(db)) return fail_all(one);
            p->status = one;
            continue;
        }
        p->status = Status::Ok();
        seq = r.seq;
        prev = mac;
        ++written;
    }
    if (written == 0) {  // every record refused on its own: each keeps its own error
        (void)internal::Exec(db, "ROLLBACK");
        return;
    }
    {
        const Mac head = Hmac(key, HeadBytes(seq, prev));
        const std::string value = HeadBytes(seq, prev) + AsString(head);
        Stmt up(db, "INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('head', ?)");
        up.BindBlob(1, value.data(), int(value.size()));
        up.Step(s);
        if (!s.ok()) return rollback(s);
    }
    if (Status c = internal::Exec(db, "COMMIT"); !c.ok()) return rollback(c);
    commits.fetch_add(1);
}

Result<Page> AuditLog::Find(const Query& query) {
    if (query.limit < 1 || query.limit > 1000) return InvalidArgument("limit must be 1 to 1000");
    if (query.after_seq < 0) return InvalidArgument("after must be >= 0");
    std::string sql = std::string("SELECT ") + Impl::kColumns + " FROM audit WHERE seq > ?";
    if (query.since_ms) sql += " AND time_ms >= ?";
    if (query.until_ms) sql += " AND time_ms < ?";
    if (!query.action.empty()) sql += " AND action = ?";
    if (!query.who.empty()) sql += " AND who = ?";
    sql += " ORDER BY seq LIMIT ?";
    std::lock_guard lock(impl_->mu);
    Stmt q(impl_->db, sql.c_str());
    int i = 1;
    q.Bind(i++, query.after_seq);
    if (query.since_ms) q.Bind(i++, *query.since_ms);
    if (query.until_ms) q.Bind(i++, *query.until_ms);
    if (!query.action.empty()) q.Bind(i++, query.action);
    if (!query.who.empty()) q.Bind(i++, query.who);
    q.Bind(i++, std::int64_t(query.limit) + 1);  // one more: is there a next page?
    Page page;
    Status s;
    while (q.Step(s)) page.records.push_back(Impl::Row(q, nullptr, nullptr));
    if (!s.ok()) return s;
    if (page.records.size() > std::size_t(query.limit)) {
        page.records.pop_back();
        page.next_after = page.records.back().seq;
    }
    return page;
}

Result<VerifyReport> AuditLog::Verify() {
    std::lock_guard lock(impl_->mu);
    // One read transaction: a concurrent append (another process) cannot move the head
    // between the walk and the head check.
    FG_RETURN_IF_ERROR(internal::Exec(impl_->db, "BEGIN"));
    struct EndRead {
        sqlite3* db;
        ~EndRead() { (void)internal::Exec(db, "COMMIT"); }
    } end{impl_->db};
    VerifyReport report;
    Mac prev{};
    Status s;
    std::string epoch;              // the key id of the records being walked
    const AuditKey* key = nullptr;  // its key
    {
        Stmt q(impl_->db, (std::string("SELECT ") + Impl::kColumns + " FROM audit ORDER BY seq").c_str());
        std::int64_t expected = 1;
        while (q.Step(s)) {
            std::string details_text;
            std::vector<std::uint8_t> stored;
            const Record r = Impl::Row(q, &details_text, &stored);
            if (r.seq != expected) {
                return DataLoss("audit record seq " + std::to_string(expected) + " is missing (the next is " +
                                std::to_string(r.seq) + ")");
            }
            // Epochs: each record is under the key it names ("" = the log's first key); once the
            // log moved to a key it never returns to an earlier one.
            const std::string kid = r.key_id.empty() ? impl_->first_key : r.key_id;
            if (kid != epoch) {
                for (const auto& k : report.key_ids) {
                    if (k == kid) {
                        return DataLoss("audit record seq " + std::to_string(r.seq) + " goes back to the older audit key " +
                                        kid + ": changed, reordered or inserted");
                    }
                }
                key = impl_->Find(kid);
                if (key == nullptr) {
                    return FailedPrecondition("audit records from seq " + std::to_string(r.seq) + " are under audit key " +
                                              kid + ", which is not in the key ring: give the gallery key of that "
                                              "time too (--old-key-file)");
                }
                epoch = kid;
                report.key_ids.push_back(kid);
            }
            const Mac mac = Hmac(*key, AsString(prev) + Canonical(r, details_text));
            if (stored.size() != mac.size() || CRYPTO_memcmp(stored.data(), mac.data(), mac.size()) != 0) {
                return DataLoss("audit record seq " + std::to_string(r.seq) +
                                " does not match its MAC: changed, reordered or inserted");
            }
            prev = mac;
            report.records++;
            report.last_seq = r.seq;
            expected++;
        }
        FG_RETURN_IF_ERROR(s);
    }
    Stmt h(impl_->db, "SELECT value FROM audit_meta WHERE name = 'head'");
    std::vector<std::uint8_t> head;
    if (h.Step(s)) head = h.Blob(0);
    FG_RETURN_IF_ERROR(s);
    if (head.empty()) {
        if (report.records == 0) return report;  // a new, empty log
        return DataLoss("the audit log's head record is missing (seq " + std::to_string(report.last_seq) + ")");
    }
    if (key == nullptr) return DataLoss("audit record seq 1 and later are missing: the log was cut after seq 0");
    const std::string expected_head = HeadBytes(report.last_seq, prev);
    const Mac head_mac = Hmac(*key, expected_head);  // under the last record's key
    const std::string want = expected_head + AsString(head_mac);
    if (head.size() != want.size() || CRYPTO_memcmp(head.data(), want.data(), want.size()) != 0) {
        return DataLoss("audit record seq " + std::to_string(report.last_seq + 1) +
                        " and later are missing: the log was cut after seq " + std::to_string(report.last_seq));
    }
    return report;
}

Result<std::int64_t> ParseTime(std::string_view text, std::int64_t now_ms) {
    const std::string t(text);
    if (t.empty()) return InvalidArgument("empty time");
    // A span back from now: 90s, 15m, 2h, 7d.
    if (t.size() >= 2 && std::string_view("smhd").find(t.back()) != std::string_view::npos &&
        t.find_first_not_of("0123456789") == t.size() - 1 && t.size() <= 10) {
        const std::int64_t n = std::stoll(t.substr(0, t.size() - 1));
        const std::int64_t unit = t.back() == 's' ? 1000 : t.back() == 'm' ? 60000 : t.back() == 'h' ? 3600000 : 86400000;
        return now_ms - n * unit;
    }
    if (t.find_first_not_of("0123456789") == std::string::npos && t.size() <= 12) {
        return std::stoll(t) * 1000;  // unix seconds
    }
    int Y = 0, M = 0, D = 0, h = 0, m = 0, sec = 0, used = 0;
    if (std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &Y, &M, &D, &used) != 3 || used != 10) {
        return InvalidArgument("time '" + t + "': expected RFC 3339 (2026-12-05T10:00:00Z), unix seconds or 15m/2h/7d");
    }
    std::size_t pos = 10;
    std::int64_t millis = 0, offset_s = 0;
    if (pos < t.size()) {
        int used2 = 0;
        if ((t[pos] != 'T' && t[pos] != 't' && t[pos] != ' ') ||
            std::sscanf(t.c_str() + pos + 1, "%2d:%2d:%2d%n", &h, &m, &sec, &used2) != 3 || used2 != 8) {
            return InvalidArgument("time '" + t + "': expected RFC 3339 (2026-12-05T10:00:00Z)");
        }
        pos += 9;
        if (pos < t.size() && t[pos] == '.') {
            std::size_t digits = 0;
            std::int64_t frac = 0;
            for (++pos; pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos])); ++pos, ++digits) {
                if (digits < 3) frac = frac * 10 + (t[pos] - '0');
            }
            for (; digits < 3; ++digits) frac *= 10;
            millis = frac;
        }
        if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
            pos++;
        } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
            int oh = 0, om = 0, used3 = 0;
            if (std::sscanf(t.c_str() + pos + 1, "%2d:%2d%n", &oh, &om, &used3) != 2 || used3 != 5)
                return InvalidArgument("time '" + t + "': bad UTC offset");
            offset_s = (t[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
            pos += 6;
        } else {
            return InvalidArgument("time '" + t + "': give Z or an offset (+02:00)");
        }
        if (pos != t.size()) return InvalidArgument("time '" + t + "': trailing characters");
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return InvalidArgument("time '" + t + "': out of range");
    std::tm tm{};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    const std::int64_t secs = std::int64_t(timegm(&tm)) - offset_s;
    return secs * 1000 + millis;
}

std::string FormatTime(std::int64_t unix_ms) {
    const std::time_t secs = std::time_t(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[80];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(unix_ms % 1000));
    return buf;
}

nlohmann::json ToJson(const Record& r) {
    return {{"seq", r.seq},           {"time", FormatTime(r.time_ms)}, {"time_ms", r.time_ms},
            {"who", r.who},           {"who_name", r.who_name},        {"action", r.action},
            {"target", r.target},     {"result", r.result},            {"details", r.details}};
}

}  // namespace fg::audit
