// SPDX-License-Identifier: Apache-2.0
// PostgreSQL store through libpq, for several nodes sharing one gallery. Same schema and
// semantics as the SQLite store; every mutation is one transaction; migrations run on open
// under an advisory lock so nodes starting together do not race. Every round trip has a
// deadline (statement_timeout + 2 s, client side), so a hung server or network makes calls fail
// with Unavailable instead of blocking their thread (docs/gallery.md, "PostgreSQL").
// Over 600 lines on purpose: one class holding every SQL statement of this back end (with its
// change log), which reads best in one place next to the schema.
#include <libpq-fe.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "change_log.h"
#include "fg/gallery/store.h"

namespace fg::gallery {
namespace {

const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE subjects (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE faces (
        id BIGSERIAL PRIMARY KEY,
        subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE ON UPDATE CASCADE,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        sealed BYTEA NOT NULL,
        quality REAL NOT NULL,
        source TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX faces_subject ON faces(subject_id);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
    INSERT INTO meta(key, value) VALUES ('generation', 0);
    )sql",
    // 2: opt-in sealed aligned crops, for re-embedding with another model.
    "ALTER TABLE faces ADD COLUMN crop BYTEA;",
    // 3: the change log every node tails (docs/gallery.md, "Change log").
    R"sql(
    CREATE TABLE changes (
        seq BIGSERIAL PRIMARY KEY,
        time BIGINT NOT NULL,
        kind TEXT NOT NULL,
        subject_id TEXT NOT NULL DEFAULT '',
        into_subject TEXT NOT NULL DEFAULT '',
        face_ids TEXT NOT NULL DEFAULT ''
    );
    )sql",
};
constexpr const char* kChannel = "fg_gallery_changes";
constexpr int kSchemaVersion = int(std::size(kMigrations));
constexpr std::int64_t kMigrationLock = 0x4647'4741'4c4cLL;  // "FGGALL"

using Clock = std::chrono::steady_clock;

/// What a gallery URL configures beyond libpq (docs/gallery.md, "PostgreSQL"): libpq's own
/// connect_timeout (seconds, added when absent) and statement_timeout (milliseconds, 0 = none),
/// which is taken out of the URL because libpq rejects parameters it does not know.
struct PgOptions {
    std::string conninfo;
    int connect_timeout_s = 5;
    int statement_timeout_ms = 10000;
    /// Identify's name lookup waits at most this long, then identify uses its name cache.
    int lookup_timeout_ms = 2000;
};

Result<int> ParseCount(const std::string& key, const std::string& value, int max) {
    if (value.empty() || value.size() > 9 ||
        value.find_first_not_of("0123456789") != std::string::npos || std::stoi(value) > max) {
        return InvalidArgument("PostgreSQL URL parameter " + key + "='" + value +
                               "' must be a whole number up to " + std::to_string(max));
    }
    return std::stoi(value);
}

Result<PgOptions> ParseOptions(const std::string& url) {
    PgOptions o;
    const size_t q = url.find('?');
    std::string query = q == std::string::npos ? "" : url.substr(q + 1);
    std::string kept;
    bool has_connect_timeout = false;
    for (size_t at = 0; at <= query.size();) {
        size_t end = query.find('&', at);
        if (end == std::string::npos) end = query.size();
        const std::string item = query.substr(at, end - at);
        at = end + 1;
        if (item.empty()) continue;
        const size_t eq = item.find('=');
        const std::string key = item.substr(0, eq);
        const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (key == "statement_timeout") {
            FG_ASSIGN_OR_RETURN(o.statement_timeout_ms, ParseCount(key, value, 86'400'000));
            continue;  // ours, not libpq's
        }
        if (key == "connect_timeout") {
            FG_ASSIGN_OR_RETURN(o.connect_timeout_s, ParseCount(key, value, 86'400));
            if (o.connect_timeout_s == 0) {
                return InvalidArgument("PostgreSQL URL parameter connect_timeout=0 would wait "
                                       "forever for an unreachable server; give seconds (>= 2)");
            }
            has_connect_timeout = true;
        }
        kept += (kept.empty() ? "" : "&") + item;
    }
    if (!has_connect_timeout) {
        kept += (kept.empty() ? "" : "&") + std::string("connect_timeout=") +
                std::to_string(o.connect_timeout_s);
    }
    o.conninfo = url.substr(0, q) + "?" + kept;
    if (o.statement_timeout_ms > 0) {
        o.lookup_timeout_ms = std::min(o.lookup_timeout_ms, o.statement_timeout_ms);
    }
    return o;
}

/// Waits until `fd` is ready for `events` or `deadline` passes (false).
bool WaitFd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, int(std::min<long long>(left, INT_MAX)));
        if (r > 0 || (r < 0 && errno != EINTR)) return true;  // libpq reports socket errors
    }
}

struct ResultFree {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Res = std::unique_ptr<PGresult, ResultFree>;

bool Good(const PGresult* r) {
    const auto st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/// The outcome of the query just sent on `c` (the first failed result, else the last one),
/// waiting at most until `deadline`. A null result means the connection failed (see
/// PQerrorMessage); `timed_out` means the deadline passed and `c` is unusable (its protocol
/// state is unknown: the caller drops it).
Res Collect(PGconn* c, Clock::time_point deadline, bool& timed_out) {
    timed_out = false;
    for (;;) {  // a non-blocking connection may hold unsent bytes
        const int f = PQflush(c);
        if (f == 0) break;
        if (f < 0) return Res();
        if (!WaitFd(PQsocket(c), POLLIN | POLLOUT, deadline)) {
            timed_out = true;
            return Res();
        }
        if (!PQconsumeInput(c)) return Res();
    }
    Res keep;
    for (;;) {
        while (PQisBusy(c)) {
            if (!WaitFd(PQsocket(c), POLLIN, deadline)) {
                timed_out = true;
                return Res();
            }
            if (!PQconsumeInput(c)) return Res();
        }
        PGresult* r = PQgetResult(c);
        if (!r) return keep;
        Res cur(r);
        if (!keep || Good(keep.get())) keep = std::move(cur);
    }
}

/// "($k+1, ..., $k+n)" for row `row` of a multi-row VALUES list (with a leading comma).
std::string Placeholders(size_t row, int n) {
    std::string out = row ? ",(" : "(";
    for (int j = 0; j < n; ++j) {
        if (j) out += ',';
        out += '$' + std::to_string(row * size_t(n) + size_t(j) + 1);
    }
    return out + ')';
}

/// Parameters for PQexecParams; text unless given as bytes (binary).
class Params {
  public:
    Params& Text(std::string s) {
        store_.push_back(std::move(s));
        formats_.push_back(0);
        nulls_.push_back(false);
        return *this;
    }
    Params& Int(std::int64_t v) { return Text(std::to_string(v)); }
    Params& Real(double v) { return Text(std::to_string(v)); }
    Params& Bytes(const std::vector<std::uint8_t>& b) {
        store_.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
        formats_.push_back(1);
        nulls_.push_back(false);
        return *this;
    }
    /// An empty blob becomes SQL NULL (no crop kept).
    Params& BytesOrNull(const std::vector<std::uint8_t>& b) {
        Bytes(b);
        nulls_.back() = b.empty();
        return *this;
    }
    int size() const { return int(store_.size()); }
    void Fill(std::vector<const char*>& v, std::vector<int>& len) const {
        for (size_t i = 0; i < store_.size(); ++i) {
            v.push_back(nulls_[i] ? nullptr : store_[i].data());
            len.push_back(int(store_[i].size()));
        }
    }
    const int* formats() const { return formats_.data(); }

  private:
    std::vector<std::string> store_;
    std::vector<int> formats_;
    std::vector<bool> nulls_;
};

class PostgresStore final : public Store {
  public:
    explicit PostgresStore(PgOptions options) : opts_(std::move(options)) {}
    ~PostgresStore() override {
        if (conn_) PQfinish(conn_);
        if (listen_) PQfinish(listen_);
        if (names_) PQfinish(names_);
    }

    Status Open() {
        FG_RETURN_IF_ERROR(Connect());
        return Tx([&]() -> Status {
            FG_RETURN_IF_ERROR(
                Run("SELECT pg_advisory_xact_lock($1)", Params().Int(kMigrationLock)).status());
            FG_RETURN_IF_ERROR(
                Run("CREATE TABLE IF NOT EXISTS fg_schema (version INTEGER NOT NULL)", Params())
                    .status());
            FG_ASSIGN_OR_RETURN(Res r, Run("SELECT version FROM fg_schema", Params()));
            int version = 0;
            if (PQntuples(r.get()) == 0) {
                FG_RETURN_IF_ERROR(
                    Run("INSERT INTO fg_schema(version) VALUES (0)", Params()).status());
            } else {
                version = std::atoi(PQgetvalue(r.get(), 0, 0));
            }
            if (version > kSchemaVersion) {
                return FailedPrecondition(
                    "the gallery database has schema version " + std::to_string(version) +
                    ", newer than this facegate understands; upgrade facegate");
            }
            for (int v = version; v < kSchemaVersion; ++v) {
                FG_RETURN_IF_ERROR(Simple(kMigrations[v], "schema migration"));
            }
            return Run("UPDATE fg_schema SET version = $1", Params().Int(kSchemaVersion)).status();
        });
    }

    std::string kind() const override { return "postgres"; }
    int schema_version() const override { return kSchemaVersion; }

    Result<std::int64_t> Generation() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT value FROM meta WHERE key = 'generation'", Params());
    }

    Result<std::int64_t> LastChange() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT coalesce(max(seq), 0) FROM changes", Params());
    }

    Result<std::vector<Change>> ChangesSince(std::int64_t after, int limit) override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        FG_ASSIGN_OR_RETURN(Res r, Run("SELECT seq, time, kind, subject_id, into_subject, face_ids"
                                       " FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                                       Params().Int(after).Int(limit)));
        std::vector<Change> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            out.push_back(Change{std::atoll(PQgetvalue(r.get(), i, 0)),
                                 std::atoll(PQgetvalue(r.get(), i, 1)), PQgetvalue(r.get(), i, 2),
                                 PQgetvalue(r.get(), i, 3), PQgetvalue(r.get(), i, 4),
                                 internal::SplitIds(PQgetvalue(r.get(), i, 5))});
        }
        return out;
    }

    std::vector<std::int64_t> TakeOwnChanges() override {
        std::lock_guard lock(mu_);
        return std::exchange(own_changes_, {});
    }

    bool notifies() const override { return true; }

    // A second connection that only LISTENs, so waiting never holds the store's lock.
    Result<bool> WaitForChange(std::chrono::milliseconds timeout) override {
        std::lock_guard lock(listen_mu_);
        if (!listen_ || PQstatus(listen_) != CONNECTION_OK) {
            if (listen_) PQfinish(listen_);
            listen_ = PQconnectdb(opts_.conninfo.c_str());
            bool timed_out = false;
            Res r;
            if (PQstatus(listen_) == CONNECTION_OK &&
                PQsendQuery(listen_, (std::string("LISTEN ") + kChannel).c_str())) {
                r = Collect(listen_, Deadline(), timed_out);
            }
            if (!r || !Good(r.get())) {
                PQfinish(listen_);
                listen_ = nullptr;
                return Unavailable(timed_out ? "PostgreSQL did not answer LISTEN in time"
                                             : "cannot connect to PostgreSQL to LISTEN");
            }
        }
        bool got = false;
        auto drain = [&] {
            while (PGnotify* n = PQnotifies(listen_)) {
                got = true;
                PQfreemem(n);
            }
        };
        if (!PQconsumeInput(listen_)) return Unavailable("PostgreSQL LISTEN connection lost");
        drain();
        if (got) return true;
        pollfd p{PQsocket(listen_), POLLIN, 0};
        if (::poll(&p, 1, int(timeout.count())) > 0) {
            if (!PQconsumeInput(listen_)) return Unavailable("PostgreSQL LISTEN connection lost");
            drain();
        }
        return got;
    }

    Result<std::vector<TemplateRecord>> GetTemplatesByIds(
        const std::vector<std::int64_t>& face_ids) override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        std::vector<TemplateRecord> out;
        constexpr size_t kChunk = 10000;
        for (size_t at = 0; at < face_ids.size(); at += kChunk) {
            const std::vector<std::int64_t> part(
                face_ids.begin() + std::ptrdiff_t(at),
                face_ids.begin() + std::ptrdiff_t(std::min(face_ids.size(), at + kChunk)));
            FG_ASSIGN_OR_RETURN(
                Res r, Run(std::string(kTemplateSelectNoCrop) +
                               " WHERE id = ANY($1::bigint[]) ORDER BY id",
                           Params().Text("{" + internal::JoinIds(part) + "}"), true));
            for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(ReadTemplate(r.get(), i));
        }
        std::sort(out.begin(), out.end(), [](const TemplateRecord& a, const TemplateRecord& b) {
            return a.face_id < b.face_id;
        });
        return out;
    }

    Status CreateSubject(const Subject& s) override {
        std::lock_guard lock(mu_);
        return Tx([&] { return InsertSubject(s); });
    }

    Result<Subject> GetSubject(const std::string& id) override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        FG_ASSIGN_OR_RETURN(
            Res r, Run(kSubjectSelect + std::string(" WHERE s.id = $1"), Params().Text(id)));
        if (PQntuples(r.get()) == 0) return NotFound("no subject '" + id + "'");
        return ReadSubject(r.get(), 0);
    }

    // Its own connection and lock: identification must not queue behind a bulk write on the
    // main connection, and waits at most lookup_timeout (then identify uses its name cache).
    Result<std::unordered_map<std::string, std::string>> GetDisplayNames(
        const std::vector<std::string>& ids) override {
        const auto budget = std::chrono::milliseconds(opts_.lookup_timeout_ms);
        std::unique_lock lock(names_mu_, std::defer_lock);
        if (!lock.try_lock_for(budget)) return Unavailable("PostgreSQL name lookup busy");
        std::unordered_map<std::string, std::string> out;
        if (ids.empty()) return out;
        if (!names_ || PQstatus(names_) != CONNECTION_OK) {
            if (names_) PQfinish(names_);
            std::string error;
            names_ = Dial(error);
            if (!names_) return Unavailable("cannot connect to PostgreSQL: " + error);
        }
        const auto deadline = Clock::now() + budget;
        constexpr size_t kChunk = 1000;
        for (size_t at = 0; at < ids.size(); at += kChunk) {
            const size_t end = std::min(ids.size(), at + kChunk);
            std::string sql = "SELECT id, display_name FROM subjects WHERE id IN (";
            Params p;
            for (size_t i = at; i < end; ++i) {
                sql += (i == at ? "$" : ",$") + std::to_string(i - at + 1);
                p.Text(ids[i]);
            }
            std::vector<const char*> values;
            std::vector<int> lengths;
            p.Fill(values, lengths);
            bool timed_out = false;
            Res r;
            if (PQsendQueryParams(names_, (sql + ")").c_str(), p.size(), nullptr, values.data(),
                                  lengths.data(), p.formats(), 0)) {
                r = Collect(names_, deadline, timed_out);
            }
            if (timed_out) {
                PQfinish(names_);
                names_ = nullptr;
                return Unavailable("PostgreSQL did not answer the name lookup within " +
                                   std::to_string(opts_.lookup_timeout_ms) + " ms");
            }
            if (!r || !Good(r.get())) {
                std::string m = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(names_);
                while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
                return Unavailable("PostgreSQL name lookup failed: " + m);
            }
            for (int i = 0; i < PQntuples(r.get()); ++i)
                out[PQgetvalue(r.get(), i, 0)] = PQgetvalue(r.get(), i, 1);
        }
        return out;
    }

    Status RenameSubject(const std::string& id, const std::string& name) override {
        std::lock_guard lock(mu_);
        return Tx([&] { return UpdateOne("display_name", name, id, "rename"); });
    }

    Status UpdateMetadata(const std::string& id, const std::string& metadata) override {
        std::lock_guard lock(mu_);
        return Tx([&] { return UpdateOne("metadata", metadata, id, "metadata"); });
    }

    Status MergeSubjects(const std::string& from, const std::string& into,
                         const std::vector<TemplateRecord>* resealed) override {
        std::lock_guard lock(mu_);
        return Tx([&]() -> Status {
            FG_RETURN_IF_ERROR(RequireSubject(from));
            FG_RETURN_IF_ERROR(RequireSubject(into));
            FG_ASSIGN_OR_RETURN(
                Res moved, Run("UPDATE faces SET subject_id = $1 WHERE subject_id = $2 RETURNING id",
                               Params().Text(into).Text(from)));
            std::vector<std::int64_t> ids;
            for (int i = 0; i < PQntuples(moved.get()); ++i)
                ids.push_back(std::atoll(PQgetvalue(moved.get(), i, 0)));
            std::sort(ids.begin(), ids.end());
            FG_RETURN_IF_ERROR(
                Run("DELETE FROM subjects WHERE id = $1", Params().Text(from)).status());
            FG_RETURN_IF_ERROR(Run("UPDATE subjects SET updated_at = $1 WHERE id = $2",
                                   Params().Int(NowSeconds()).Text(into))
                                   .status());
            if (resealed) {
                // The subject id is in the templates' associated data: their re-sealed blobs
                // commit with the move, and must be exactly the moved faces.
                std::vector<std::int64_t> given;
                for (const TemplateRecord& r : *resealed) given.push_back(r.face_id);
                std::sort(given.begin(), given.end());
                if (given != ids)
                    return Unavailable("the subject's templates changed during the merge; retry it");
                for (const TemplateRecord& r : *resealed) {
                    FG_RETURN_IF_ERROR(
                        Run("UPDATE faces SET sealed = $1, key_id = $2, crop = $3 WHERE id = $4",
                            Params().Bytes(r.sealed).Text(r.key_id).BytesOrNull(r.crop).Int(
                                r.face_id))
                            .status());
                }
            }
            return Bump(internal::Note("merge", from, std::move(ids), into));
        });
    }

    Result<std::vector<std::int64_t>> DeleteSubject(const std::string& id) override {
        std::lock_guard lock(mu_);
        std::vector<std::int64_t> ids;
        Status s = Tx([&]() -> Status {
            FG_RETURN_IF_ERROR(RequireSubject(id));
            FG_ASSIGN_OR_RETURN(Res r, Run("DELETE FROM faces WHERE subject_id = $1 RETURNING id",
                                           Params().Text(id)));
            for (int i = 0; i < PQntuples(r.get()); ++i)
                ids.push_back(std::atoll(PQgetvalue(r.get(), i, 0)));
            FG_RETURN_IF_ERROR(
                Run("DELETE FROM subjects WHERE id = $1", Params().Text(id)).status());
            std::sort(ids.begin(), ids.end());
            return Bump(internal::Note("delete_subject", id, ids));
        });
        if (!s.ok()) return s;
        return ids;
    }

    Result<ListPage> ListSubjects(const std::string& after, int limit) override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        FG_ASSIGN_OR_RETURN(
            Res r, Run(kSubjectSelect + std::string(" WHERE s.id > $1 ORDER BY s.id LIMIT $2"),
                       Params().Text(after).Int(limit)));
        ListPage page;
        for (int i = 0; i < PQntuples(r.get()); ++i)
            page.subjects.push_back(ReadSubject(r.get(), i));
        if (int(page.subjects.size()) == limit && limit > 0)
            page.next_after = page.subjects.back().id;
        return page;
    }

    Result<std::int64_t> CountSubjects() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT count(*) FROM subjects", Params());
    }

    Result<std::vector<std::int64_t>> AddBulk(const std::vector<Subject>& create,
                                              std::vector<TemplateRecord>& records,
                                              const std::string& change_kind) override {
        std::lock_guard lock(mu_);
        std::vector<std::int64_t> ids;
        ids.reserve(records.size());
        // A row per round trip made bulk enrollment latency-bound (one INSERT and one subject
        // check per template); multi-row statements carry up to kRows rows each, ids come
        // from the sequence in one query, and a missing subject surfaces as the foreign key's
        // violation (23503) instead of a lookup per template.
        constexpr size_t kRows = 500;
        Status s = Tx([&]() -> Status {
            const std::int64_t now = NowSeconds();
            for (size_t at = 0; at < create.size(); at += kRows) {
                const size_t end = std::min(create.size(), at + kRows);
                std::string sql =
                    "INSERT INTO subjects(id, display_name, metadata, created_at, updated_at) "
                    "VALUES ";
                Params p;
                for (size_t i = at; i < end; ++i) {
                    const Subject& c = create[i];
                    sql += Placeholders(i - at, 5);
                    p.Text(c.id)
                        .Text(c.display_name.empty() ? c.id : c.display_name)
                        .Text(c.metadata.empty() ? "{}" : c.metadata)
                        .Int(c.created_at ? c.created_at : now)
                        .Int(c.updated_at ? c.updated_at : now);
                }
                FG_RETURN_IF_ERROR(Run(sql + " ON CONFLICT (id) DO NOTHING", p).status());
            }
            if (records.empty()) return Bump(internal::Note(change_kind));
            ids.clear();
            if (records.front().face_id != 0) {
                // Reserved by ReserveFaceIds (the ids are sealed into the templates).
                for (const TemplateRecord& r : records) ids.push_back(r.face_id);
            } else {
                FG_ASSIGN_OR_RETURN(ids, NextFaceIds(std::int64_t(records.size())));
            }
            for (size_t at = 0; at < records.size(); at += kRows) {
                const size_t end = std::min(records.size(), at + kRows);
                std::string sql =
                    "INSERT INTO faces(id, subject_id, model_id, dim, key_id, sealed, quality, "
                    "source, created_at, crop) VALUES ";
                Params p;
                for (size_t i = at; i < end; ++i) {
                    TemplateRecord& r = records[i];
                    if (r.created_at == 0) r.created_at = now;
                    r.face_id = ids[i];
                    sql += Placeholders(i - at, 10);
                    p.Int(r.face_id)
                        .Text(r.subject_id)
                        .Text(r.model_id)
                        .Int(r.dim)
                        .Text(r.key_id)
                        .Bytes(r.sealed)
                        .Real(r.quality)
                        .Text(r.source)
                        .Int(r.created_at)
                        .BytesOrNull(r.crop);
                }
                auto res = Run(sql, p);
                if (!res.ok()) {
                    if (res.status().message().find("faces_subject_id_fkey") != std::string::npos)
                        return NotFound("no subject for a template (" +
                                        res.status().message() + ")");
                    return res.status();
                }
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
        FG_RETURN_IF_ERROR(Ready());
        return NextFaceIds(n);
    }

    /// `n` ids from the faces sequence, ascending (never reused, even when rolled back).
    Result<std::vector<std::int64_t>> NextFaceIds(std::int64_t n) {
        std::vector<std::int64_t> ids;
        if (n == 0) return ids;
        FG_ASSIGN_OR_RETURN(Res seq, Run("SELECT nextval(pg_get_serial_sequence('faces', 'id')) "
                                         "FROM generate_series(1, $1)",
                                         Params().Int(n)));
        if (PQntuples(seq.get()) != n)
            return Internal("postgres: the face id sequence returned too few values");
        for (int i = 0; i < PQntuples(seq.get()); ++i)
            ids.push_back(std::atoll(PQgetvalue(seq.get(), i, 0)));
        std::sort(ids.begin(), ids.end());
        return ids;
    }

    Result<std::string> RemoveTemplate(std::int64_t face_id) override {
        std::lock_guard lock(mu_);
        std::string subject;
        Status s = Tx([&]() -> Status {
            FG_ASSIGN_OR_RETURN(Res r, Run("DELETE FROM faces WHERE id = $1 RETURNING subject_id",
                                           Params().Int(face_id)));
            if (PQntuples(r.get()) == 0) return NotFound("no face " + std::to_string(face_id));
            subject = PQgetvalue(r.get(), 0, 0);
            return Bump(internal::Note("remove_face", subject, {face_id}));
        });
        if (!s.ok()) return s;
        return subject;
    }

    Result<std::vector<TemplateRecord>> GetTemplates(const std::string& subject_id) override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        std::vector<TemplateRecord> out;
        FG_ASSIGN_OR_RETURN(Res r,
                            Run(std::string(kTemplateSelect) + " WHERE subject_id = $1 ORDER BY id",
                                Params().Text(subject_id), true));
        for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(ReadTemplate(r.get(), i));
        return out;
    }

    Status ForEachTemplate(const std::function<Status(const TemplateRecord&)>& fn,
                           bool with_crops) override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        // Keyset pages keep memory bounded for million-template galleries.
        std::int64_t after = 0;
        const std::string select = with_crops ? kTemplateSelect : kTemplateSelectNoCrop;
        for (;;) {
            FG_ASSIGN_OR_RETURN(Res r, Run(select + " WHERE id > $1 ORDER BY id LIMIT 10000",
                                           Params().Int(after), true));
            const int n = PQntuples(r.get());
            for (int i = 0; i < n; ++i) {
                TemplateRecord t = ReadTemplate(r.get(), i);
                after = t.face_id;
                FG_RETURN_IF_ERROR(fn(t));
            }
            if (n < 10000) return Status::Ok();
        }
    }

    Result<std::vector<FaceRef>> ListFaceRefs() override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        FG_ASSIGN_OR_RETURN(Res r, Run("SELECT id, subject_id FROM faces ORDER BY id", Params()));
        std::vector<FaceRef> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            out.push_back({std::atoll(PQgetvalue(r.get(), i, 0)), PQgetvalue(r.get(), i, 1)});
        }
        return out;
    }

    Result<std::int64_t> CountTemplates() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT count(*) FROM faces", Params());
    }

    Result<std::int64_t> CountTemplatesWithoutCrop() override {
        std::lock_guard lock(mu_);
        return QueryInt("SELECT count(*) FROM faces WHERE crop IS NULL", Params());
    }

    Status UpdateSealed(const std::vector<TemplateRecord>& records) override {
        std::lock_guard lock(mu_);
        return Tx([&]() -> Status {
            for (const TemplateRecord& r : records) {
                FG_RETURN_IF_ERROR(
                    Run("UPDATE faces SET sealed = $1, key_id = $2, crop = $3 WHERE id = $4",
                        Params().Bytes(r.sealed).Text(r.key_id).BytesOrNull(r.crop).Int(r.face_id))
                        .status());
            }
            return Bump(internal::Note("rotate_key"));
        });
    }

    Status ReplaceTemplates(
        const std::vector<TemplateRecord>& records,
        const std::vector<std::pair<std::string, std::string>>& settings) override {
        std::lock_guard lock(mu_);
        return Tx([&]() -> Status {
            for (const TemplateRecord& r : records) {
                FG_ASSIGN_OR_RETURN(
                    Res u, Run("UPDATE faces SET model_id = $1, dim = $2, sealed = $3, key_id = $4"
                               " WHERE id = $5",
                               Params()
                                   .Text(r.model_id)
                                   .Int(r.dim)
                                   .Bytes(r.sealed)
                                   .Text(r.key_id)
                                   .Int(r.face_id)));
                if (std::string(PQcmdTuples(u.get())) != "1")
                    return NotFound("face " + std::to_string(r.face_id) + " vanished");
            }
            for (const auto& [k, v] : settings) {
                FG_RETURN_IF_ERROR(
                    Run("INSERT INTO settings(key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
                        "UPDATE SET value = EXCLUDED.value",
                        Params().Text(k).Text(v))
                        .status());
            }
            return Bump(internal::Note("reembed"));
        });
    }

    Result<std::optional<std::string>> GetSetting(const std::string& key) override {
        std::lock_guard lock(mu_);
        FG_RETURN_IF_ERROR(Ready());
        FG_ASSIGN_OR_RETURN(Res r,
                            Run("SELECT value FROM settings WHERE key = $1", Params().Text(key)));
        if (PQntuples(r.get()) == 0) return std::optional<std::string>();
        return std::optional<std::string>(PQgetvalue(r.get(), 0, 0));
    }

    Status PutSetting(const std::string& key, const std::string& value) override {
        std::lock_guard lock(mu_);
        return Tx([&]() -> Status {
            FG_RETURN_IF_ERROR(
                Run("INSERT INTO settings(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
                    "SET value = EXCLUDED.value",
                    Params().Text(key).Text(value))
                    .status());
            return Bump(internal::Note("settings"));
        });
    }

  private:
    static constexpr const char* kSubjectSelect =
        "SELECT s.id, s.display_name, s.metadata, s.created_at, s.updated_at,"
        " (SELECT count(*) FROM faces f WHERE f.subject_id = s.id) FROM subjects s";
    static constexpr const char* kTemplateSelect =
        "SELECT id, subject_id, model_id, dim, key_id, sealed, quality, source, created_at, crop "
        "FROM faces";
    static constexpr const char* kTemplateSelectNoCrop =
        "SELECT id, subject_id, model_id, dim, key_id, sealed, quality, source, created_at, NULL "
        "FROM faces";

    /// A fresh connection: non-blocking (sends never wait on a stalled peer), quiet, with the
    /// server-side statement timeout. nullptr + message when it fails (bounded by
    /// connect_timeout).
    PGconn* Dial(std::string& error) {
        PGconn* c = PQconnectdb(opts_.conninfo.c_str());
        if (PQstatus(c) == CONNECTION_OK && PQsetnonblocking(c, 1) == 0) {
            const std::string setup = "SET client_min_messages = warning; SET statement_timeout = " +
                                      std::to_string(opts_.statement_timeout_ms);
            bool timed_out = false;
            Res r;
            if (PQsendQuery(c, setup.c_str())) r = Collect(c, Deadline(), timed_out);
            if (r && Good(r.get())) return c;
            error = timed_out ? "no answer to the session set-up in time" : PQerrorMessage(c);
        } else {
            error = PQerrorMessage(c);
        }
        while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
        std::replace(error.begin(), error.end(), '\n', ' ');  // one log line
        PQfinish(c);
        return nullptr;
    }

    Status Connect() {
        if (conn_) PQfinish(conn_);
        std::string error;
        conn_ = Dial(error);
        if (!conn_) return Unavailable("cannot connect to PostgreSQL: " + error);
        return Status::Ok();
    }

    // A dropped connection (server restart, network blip, a missed deadline) is re-established
    // on the next call, so the store recovers by itself once the fault ends.
    Status Ready() {
        if (conn_ && PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
        return Connect();
    }

    /// When a round trip started now must have finished: the server's statement timeout plus
    /// slack for the network, so the server's own (clean) cancel normally comes first.
    Clock::time_point Deadline() const {
        if (opts_.statement_timeout_ms == 0) return Clock::time_point::max();
        return Clock::now() + std::chrono::milliseconds(opts_.statement_timeout_ms) +
               std::chrono::seconds(2);
    }

    /// The deadline passed: the connection is in an unknown state, so it is dropped (the next
    /// call reconnects) and the caller learns the outcome is unknown.
    Status Abandon(PGconn*& c, const std::string& what) {
        if (c) PQfinish(c);
        c = nullptr;
        return Unavailable("PostgreSQL did not answer " + what + " within " +
                           std::to_string(opts_.statement_timeout_ms / 1000 + 2) +
                           " s (statement_timeout + 2 s); connection dropped, the operation "
                           "was not acknowledged");
    }

    Status Error(const std::string& what, const PGresult* r) {
        const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
        std::string msg = what + ": " + (r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        const std::string s = state ? state : "";
        if (PQstatus(conn_) != CONNECTION_OK || s.rfind("08", 0) == 0 || s.rfind("57P", 0) == 0) {
            return Unavailable("PostgreSQL connection lost (" + msg +
                               "); the change was not acknowledged");
        }
        if (s == "57014") return Unavailable(msg + " (statement_timeout)");
        if (s == "23505") return AlreadyExists(msg);
        if (s == "53100") return ResourceExhausted(msg + " (disk full)");
        if (s.rfind("53", 0) == 0) return ResourceExhausted(msg);
        if (s == "XX001" || s == "XX002") return DataLoss(msg);
        return Internal(msg);
    }

    Result<Res> Run(const std::string& sql, const Params& p, bool binary_result = false) {
        if (!conn_) return Unavailable("PostgreSQL connection lost; the change was not acknowledged");
        std::vector<const char*> values;
        std::vector<int> lengths;
        p.Fill(values, lengths);
        if (!PQsendQueryParams(conn_, sql.c_str(), p.size(), nullptr, values.data(),
                               lengths.data(), p.formats(), binary_result ? 1 : 0)) {
            return Error("postgres", nullptr);
        }
        bool timed_out = false;
        Res r = Collect(conn_, Deadline(), timed_out);
        if (timed_out) return Abandon(conn_, "a query");
        if (!r || !Good(r.get())) return Error("postgres", r.get());
        return r;
    }

    /// One or more statements without parameters (transaction control, migrations).
    Status Simple(const char* sql, const char* what) {
        if (!conn_) return Unavailable("PostgreSQL connection lost; the change was not acknowledged");
        if (!PQsendQuery(conn_, sql)) return Error(what, nullptr);
        bool timed_out = false;
        Res r = Collect(conn_, Deadline(), timed_out);
        if (timed_out) return Abandon(conn_, what);
        if (!r || !Good(r.get())) return Error(what, r.get());
        return Status::Ok();
    }

    Result<std::int64_t> QueryInt(const char* sql, const Params& p) {
        FG_RETURN_IF_ERROR(Ready());
        FG_ASSIGN_OR_RETURN(Res r, Run(sql, p));
        if (PQntuples(r.get()) != 1) return Internal(std::string("no row from ") + sql);
        return std::int64_t(std::atoll(PQgetvalue(r.get(), 0, 0)));
    }

    template <typename Fn>
    Status Tx(Fn&& fn) {
        FG_RETURN_IF_ERROR(Ready());
        FG_RETURN_IF_ERROR(Simple("BEGIN", "begin"));
        pending_change_ = 0;
        Status s = fn();
        if (s.ok()) {
            FG_RETURN_IF_ERROR(Simple("COMMIT", "commit"));
            if (pending_change_ > 0) own_changes_.push_back(pending_change_);
            return Status::Ok();
        }
        if (conn_) (void)Simple("ROLLBACK", "rollback");
        return s;
    }

    /// Every mutation ends here, inside its transaction. The exclusive table lock makes
    /// writers take their seq and commit one at a time, so seq order is commit order and a
    /// follower reading "seq > last seen" can never skip a change that commits late (plain
    /// sequences hand out numbers before commit, in any order). Readers are not blocked.
    /// NOTIFY is delivered at commit, and only if the transaction commits.
    Status Bump(const Change& c) {
        FG_RETURN_IF_ERROR(
            Run("UPDATE meta SET value = value + 1 WHERE key = 'generation'", Params()).status());
        FG_RETURN_IF_ERROR(
            Run("LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE", Params()).status());
        FG_ASSIGN_OR_RETURN(
            Res r, Run("INSERT INTO changes(time, kind, subject_id, into_subject, face_ids)"
                       " VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                       Params()
                           .Int(NowSeconds())
                           .Text(c.kind)
                           .Text(c.subject_id)
                           .Text(c.into)
                           .Text(internal::JoinIds(c.face_ids))));
        pending_change_ = std::atoll(PQgetvalue(r.get(), 0, 0));
        return Run(std::string("NOTIFY ") + kChannel, Params()).status();
    }

    Status RequireSubject(const std::string& id) {
        FG_ASSIGN_OR_RETURN(Res r, Run("SELECT 1 FROM subjects WHERE id = $1", Params().Text(id)));
        return PQntuples(r.get()) ? Status::Ok() : NotFound("no subject '" + id + "'");
    }

    Status InsertSubject(const Subject& s) {
        const std::int64_t now = NowSeconds();
        auto r =
            Run("INSERT INTO subjects(id, display_name, metadata, created_at, updated_at) VALUES "
                "($1,$2,$3,$4,$5)",
                Params()
                    .Text(s.id)
                    .Text(s.display_name.empty() ? s.id : s.display_name)
                    .Text(s.metadata.empty() ? "{}" : s.metadata)
                    .Int(s.created_at ? s.created_at : now)
                    .Int(s.updated_at ? s.updated_at : now));
        if (!r.ok()) {
            if (r.status().code() == StatusCode::kAlreadyExists) {
                return AlreadyExists("subject '" + s.id + "' already exists");
            }
            return r.status();
        }
        return Bump(internal::Note("enroll", s.id));
    }

    Status UpdateOne(const char* column, const std::string& value, const std::string& id,
                     const char* kind) {
        FG_ASSIGN_OR_RETURN(Res r, Run("UPDATE subjects SET " + std::string(column) +
                                           " = $1, updated_at = $2 WHERE id = $3",
                                       Params().Text(value).Int(NowSeconds()).Text(id)));
        if (std::string(PQcmdTuples(r.get())) == "0") return NotFound("no subject '" + id + "'");
        return Bump(internal::Note(kind, id));
    }

    static Subject ReadSubject(const PGresult* r, int i) {
        return Subject{PQgetvalue(r, i, 0),
                       PQgetvalue(r, i, 1),
                       PQgetvalue(r, i, 2),
                       std::atoll(PQgetvalue(r, i, 3)),
                       std::atoll(PQgetvalue(r, i, 4)),
                       std::atoll(PQgetvalue(r, i, 5))};
    }

    // Binary result format: integers are big-endian, text is raw bytes.
    static std::int64_t BeInt(const PGresult* r, int i, int c) {
        const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, i, c));
        const int n = PQgetlength(r, i, c);
        std::int64_t v = 0;
        for (int k = 0; k < n; ++k) v = (v << 8) | p[k];
        if (n == 4) v = std::int32_t(std::uint32_t(v));
        return v;
    }

    static TemplateRecord ReadTemplate(const PGresult* r, int i) {
        TemplateRecord t;
        auto text = [&](int c) {
            return std::string(PQgetvalue(r, i, c), size_t(PQgetlength(r, i, c)));
        };
        t.face_id = BeInt(r, i, 0);
        t.subject_id = text(1);
        t.model_id = text(2);
        t.dim = int(BeInt(r, i, 3));
        t.key_id = text(4);
        const auto* b = reinterpret_cast<const std::uint8_t*>(PQgetvalue(r, i, 5));
        t.sealed.assign(b, b + PQgetlength(r, i, 5));
        const auto q = std::uint32_t(BeInt(r, i, 6));
        std::memcpy(&t.quality, &q, 4);
        t.source = text(7);
        t.created_at = BeInt(r, i, 8);
        if (!PQgetisnull(r, i, 9)) {
            const auto* c = reinterpret_cast<const std::uint8_t*>(PQgetvalue(r, i, 9));
            t.crop.assign(c, c + PQgetlength(r, i, 9));
        }
        return t;
    }

    const PgOptions opts_;
    PGconn* conn_ = nullptr;
    std::recursive_mutex mu_;
    std::int64_t pending_change_ = 0;         // seq written by the open transaction
    std::vector<std::int64_t> own_changes_;  // committed by this object, not yet taken
    std::mutex listen_mu_;                    // guards listen_ (WaitForChange)
    PGconn* listen_ = nullptr;
    std::timed_mutex names_mu_;  // guards names_ (GetDisplayNames), apart from mu_
    PGconn* names_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo) {
    FG_ASSIGN_OR_RETURN(PgOptions options, ParseOptions(conninfo));
    auto store = std::make_unique<PostgresStore>(std::move(options));
    FG_RETURN_IF_ERROR(store->Open());
    return std::unique_ptr<Store>(std::move(store));
}

}  // namespace fg::gallery
