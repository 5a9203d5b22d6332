// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL back end of the history: tables fg_history_* in the gallery's database (or any
// database a URL names), through libpq. The statements are history_store.cc's, rewritten from
// SQLite's syntax (?N -> $N, history_ -> fg_history_); parameters are sent typed (int8, float8,
// text, bytea) so a numbered parameter a query does not use is no error. Every round trip has a
// deadline (statement_timeout + 2 s, client side, like the gallery's PostgreSQL store): a hung
// server or network makes the call fail with Unavailable and the connection is re-dialled on the
// next call, never a thread blocked for good.
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdlib>

#include "history_db.h"

namespace fg::history::internal {
namespace {

constexpr const char* kSchema = R"sql(
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS fg_history_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fg_history_sightings (
  id BIGSERIAL PRIMARY KEY,
  time_ms BIGINT NOT NULL, stream TEXT NOT NULL, track BIGINT NOT NULL, outcome BIGINT NOT NULL,
  subject_id TEXT, display_name TEXT, score DOUBLE PRECISION NOT NULL, margin DOUBLE PRECISION NOT NULL,
  liveness DOUBLE PRECISION, quality DOUBLE PRECISION NOT NULL, stranger_id BIGINT, model_id TEXT NOT NULL,
  key_id TEXT NOT NULL, embedding BYTEA, crop BYTEA);
CREATE INDEX IF NOT EXISTS fg_history_by_time ON fg_history_sightings (time_ms, id);
CREATE INDEX IF NOT EXISTS fg_history_by_stream ON fg_history_sightings (stream, time_ms, id);
CREATE INDEX IF NOT EXISTS fg_history_by_subject ON fg_history_sightings (subject_id, time_ms, id) WHERE subject_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS fg_history_by_outcome ON fg_history_sightings (outcome, time_ms, id);
CREATE INDEX IF NOT EXISTS fg_history_by_stream_outcome ON fg_history_sightings (stream, outcome, time_ms, id);
CREATE INDEX IF NOT EXISTS fg_history_by_stranger ON fg_history_sightings (stranger_id, time_ms) WHERE stranger_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS fg_history_stranger_streams ON fg_history_sightings (stranger_id, stream) WHERE stranger_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS fg_history_strangers (
  id BIGINT PRIMARY KEY, first_seen_ms BIGINT NOT NULL, last_seen_ms BIGINT NOT NULL,
  sightings BIGINT NOT NULL, best_sighting_id BIGINT NOT NULL, best_quality DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS fg_history_strangers_by_last ON fg_history_strangers (last_seen_ms, id);
)sql";
// The list indexes end with id: pages are ordered (time_ms, id) and, unlike SQLite's, a
// PostgreSQL index does not carry the row id, so without it ties on time_ms are sorted.
constexpr std::int64_t kSchemaLock = 0x4647'4849'5354LL;  // "FGHIST"
// Type OIDs of the parameters we send (pg_type.h).
constexpr Oid kInt8 = 20, kText = 25, kFloat8 = 701, kBytea = 17;

using Clock = std::chrono::steady_clock;

struct ResultFree {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Res = std::unique_ptr<PGresult, ResultFree>;

bool Good(const PGresult* r) {
    const auto st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

bool WaitFd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, int(std::min<long long>(left, INT_MAX)));
        if (r > 0 || (r < 0 && errno != EINTR)) return true;  // libpq reports socket errors
    }
}

/// SQLite's statement text as PostgreSQL's: ?N -> $N and the history_ tables and indexes
/// prefixed fg_ (outside quoted literals).
std::string Rewrite(const std::string& sql) {
    std::string out;
    out.reserve(sql.size() + 32);
    bool quoted = false;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c == '\'') quoted = !quoted;
        if (!quoted && c == '?' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
            out += '$';
            continue;
        }
        if (!quoted && sql.compare(i, 8, "history_") == 0 &&
            (i == 0 || !(std::isalnum(static_cast<unsigned char>(sql[i - 1])) || sql[i - 1] == '_'))) {
            out += "fg_";
        }
        out += c;
    }
    return out;
}

class PgDb;

class PgStmt final : public Stmt {
  public:
    PgStmt(PgDb& db, std::string sql) : db_(db), sql_(std::move(sql)) {}
    void Bind(int i, std::int64_t v) override { Set(i, std::to_string(v), kInt8, 0); }
    void Bind(int i, double v) override {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form
        Set(i, std::string(buf, r.ptr), kFloat8, 0);
    }
    void Bind(int i, std::string_view v) override { Set(i, std::string(v), kText, 0); }
    void BindNull(int i) override {
        At(i) = Slot{.type = 0};  // the server infers the type from where the NULL goes
    }
    void BindBlob(int i, std::span<const std::uint8_t> b) override {
        Set(i, std::string(reinterpret_cast<const char*>(b.data()), b.size()), kBytea, 1);
    }
    bool Step(Status& status) override;
    void Reset() override {
        res_.reset();
        row_ = -1;
    }
    std::int64_t Int(int c) const override {
        const char* v = Value(c);
        if (v[0] == 't' || v[0] == 'f') return v[0] == 't';  // booleans
        return std::strtoll(v, nullptr, 10);
    }
    double Real(int c) const override { return std::strtod(Value(c), nullptr); }
    bool Null(int c) const override { return PQgetisnull(res_.get(), row_, c) != 0; }
    std::string Text(int c) const override {
        return std::string(Value(c), std::size_t(PQgetlength(res_.get(), row_, c)));
    }
    std::vector<std::uint8_t> Blob(int c) const override {
        if (Null(c)) return {};
        std::size_t n = 0;
        unsigned char* p = PQunescapeBytea(reinterpret_cast<const unsigned char*>(Value(c)), &n);
        if (!p) return {};
        std::vector<std::uint8_t> out(p, p + n);
        PQfreemem(p);
        return out;
    }

  private:
    struct Slot {
        std::string value;
        Oid type = kText;  // a parameter never bound (unused by the statement): a typed NULL
        int format = 0;
        bool null = true;
    };
    Slot& At(int i) {
        if (int(params_.size()) < i) params_.resize(std::size_t(i));
        return params_[std::size_t(i - 1)];
    }
    void Set(int i, std::string v, Oid type, int format) { At(i) = Slot{std::move(v), type, format, false}; }
    const char* Value(int c) const { return PQgetvalue(res_.get(), row_, c); }

    PgDb& db_;
    std::string sql_;
    std::vector<Slot> params_;
    Res res_;
    int row_ = -1;
};

class PgDb final : public Db {
  public:
    PgDb(std::string conninfo, int statement_timeout_ms, std::string where)
        : conninfo_(std::move(conninfo)), timeout_ms_(statement_timeout_ms), where_(std::move(where)) {}
    ~PgDb() override {
        if (conn_) PQfinish(conn_);
    }
    std::unique_ptr<Stmt> Prepare(const std::string& sql) override { return std::make_unique<PgStmt>(*this, Rewrite(sql)); }
    Status Exec(const std::string& sql) override {
        FG_ASSIGN_OR_RETURN(Res r, Run(sql, {}, {}, {}, {}));
        return Status::Ok();
    }
    Status Begin(bool durable) override {
        // The session's default is synchronous_commit off (see Connect); one round trip either way.
        FG_RETURN_IF_ERROR(Exec(durable ? "BEGIN; SET LOCAL synchronous_commit = on" : "BEGIN"));
        in_tx_ = true;
        return Status::Ok();
    }
    Status Commit() override {
        in_tx_ = false;
        return Exec("COMMIT");
    }
    Status Rollback() override {
        in_tx_ = false;
        if (!conn_) return Status::Ok();  // dropped: the server rolled it back
        return Exec("ROLLBACK");
    }
    Result<std::int64_t> NextSightingId() override {
        FG_ASSIGN_OR_RETURN(Res r, Run("SELECT nextval(pg_get_serial_sequence('fg_history_sightings', 'id'))",
                                       {}, {}, {}, {}));
        return std::int64_t(std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10));
    }
    std::string where() const override { return where_; }

    Status Connect() {
        if (conn_) PQfinish(conn_);
        conn_ = PQconnectdb(conninfo_.c_str());
        std::string error;
        if (PQstatus(conn_) == CONNECTION_OK && PQsetnonblocking(conn_, 1) == 0) {
            Result<Res> r = Run("SET statement_timeout = " + std::to_string(timeout_ms_) +
                                    "; SET synchronous_commit = off; SET client_min_messages = warning",
                                {}, {}, {}, {});
            if (r.ok()) return Status::Ok();
            return r.status();
        }
        error = conn_ ? PQerrorMessage(conn_) : "out of memory";
        while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
        std::replace(error.begin(), error.end(), '\n', ' ');
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
        return Unavailable("history: cannot connect to PostgreSQL: " + error);
    }

    /// One round trip with a deadline. Outside a transaction a dropped connection is dialled
    /// again first (the store recovers by itself once the fault ends).
    Result<Res> Run(const std::string& sql, const std::vector<const char*>& values, const std::vector<int>& lengths,
                    const std::vector<int>& formats, const std::vector<Oid>& types) {
        if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
            if (in_tx_) return Unavailable("history: PostgreSQL connection lost in a transaction");
            FG_RETURN_IF_ERROR(Connect());
        }
        const bool sent = values.empty() && types.empty()
                              ? PQsendQuery(conn_, sql.c_str())
                              : PQsendQueryParams(conn_, sql.c_str(), int(values.size()), types.data(), values.data(),
                                                  lengths.data(), formats.data(), 0);
        if (!sent) return Lost();
        const auto deadline = timeout_ms_ == 0 ? Clock::time_point::max()
                                               : Clock::now() + std::chrono::milliseconds(timeout_ms_) +
                                                     std::chrono::seconds(2);
        for (;;) {
            const int f = PQflush(conn_);
            if (f == 0) break;
            if (f < 0) return Lost();
            if (!WaitFd(PQsocket(conn_), POLLIN | POLLOUT, deadline)) return Abandon();
            if (!PQconsumeInput(conn_)) return Lost();
        }
        Res keep;
        for (;;) {
            while (PQisBusy(conn_)) {
                if (!WaitFd(PQsocket(conn_), POLLIN, deadline)) return Abandon();
                if (!PQconsumeInput(conn_)) return Lost();
            }
            PGresult* r = PQgetResult(conn_);
            if (!r) break;
            Res cur(r);
            if (!keep || Good(keep.get())) keep = std::move(cur);  // the first failure wins
        }
        if (!keep) return Lost();
        if (!Good(keep.get())) {
            std::string msg = PQresultErrorMessage(keep.get());
            while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
            std::replace(msg.begin(), msg.end(), '\n', ' ');
            return Unavailable("history postgres: " + msg);
        }
        return keep;
    }

  private:
    Status Lost() {
        std::string m = conn_ ? PQerrorMessage(conn_) : "no connection";
        while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
        return Unavailable("history: PostgreSQL connection lost (" + m + ")");
    }
    Status Abandon() {
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
        return Unavailable("history: PostgreSQL did not answer within statement_timeout + 2 s; connection dropped");
    }

    std::string conninfo_;
    int timeout_ms_;
    std::string where_;
    PGconn* conn_ = nullptr;
    bool in_tx_ = false;
};

bool PgStmt::Step(Status& status) {
    if (!res_) {
        std::vector<const char*> values;
        std::vector<int> lengths, formats;
        std::vector<Oid> types;
        for (const Slot& s : params_) {
            values.push_back(s.null ? nullptr : s.value.data());
            lengths.push_back(int(s.value.size()));
            formats.push_back(s.format);
            types.push_back(s.type);
        }
        Result<Res> r = db_.Run(sql_, values, lengths, formats, types);
        if (!r.ok()) {
            status = r.status();
            return false;
        }
        res_ = std::move(*r);
        row_ = -1;
    }
    return ++row_ < PQntuples(res_.get());
}

/// The gallery's URL syntax: statement_timeout=MS is ours (libpq rejects parameters it does not
/// know), connect_timeout defaults to 5 s.
struct Url {
    std::string conninfo;
    int statement_timeout_ms = 10000;
    std::string where;
};

Result<Url> ParseUrl(const std::string& url) {
    Url o;
    const std::size_t q = url.find('?');
    const std::string query = q == std::string::npos ? "" : url.substr(q + 1);
    std::string kept;
    bool has_connect_timeout = false;
    for (std::size_t at = 0; at <= query.size();) {
        std::size_t end = query.find('&', at);
        if (end == std::string::npos) end = query.size();
        const std::string item = query.substr(at, end - at);
        at = end + 1;
        if (item.empty()) continue;
        const std::size_t eq = item.find('=');
        const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (key == "statement_timeout") {
            if (value.empty() || value.size() > 8 || value.find_first_not_of("0123456789") != std::string::npos) {
                return InvalidArgument("PostgreSQL URL parameter statement_timeout='" + value +
                                       "' must be milliseconds (a whole number)");
            }
            o.statement_timeout_ms = std::atoi(value.c_str());
            continue;
        }
        if (key == "connect_timeout") has_connect_timeout = true;
        kept += (kept.empty() ? "" : "&") + item;
    }
    if (!has_connect_timeout) kept += std::string(kept.empty() ? "" : "&") + "connect_timeout=5";
    o.conninfo = url.substr(0, q) + "?" + kept;
    // For logs: scheme://host/db without the user's password or the parameters.
    std::string rest = url.substr(0, q);
    const std::size_t scheme = rest.find("://");
    std::string tail = scheme == std::string::npos ? rest : rest.substr(scheme + 3);
    if (const std::size_t at_sign = tail.rfind('@'); at_sign != std::string::npos) tail = tail.substr(at_sign + 1);
    o.where = "PostgreSQL " + tail;
    return o;
}

}  // namespace

Result<std::unique_ptr<Db>> OpenPostgres(const std::string& url, bool create) {
    FG_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
    auto db = std::make_unique<PgDb>(u.conninfo, u.statement_timeout_ms, u.where);
    FG_RETURN_IF_ERROR(db->Connect());
    if (!create) {
        FG_ASSIGN_OR_RETURN(Res r, db->Run("SELECT to_regclass('fg_history_sightings') IS NULL", {}, {}, {}, {}));
        if (PQgetvalue(r.get(), 0, 0)[0] == 't') return NotFound("no history in " + u.where);
    }
    // Nodes starting together create the tables once (CREATE ... IF NOT EXISTS races otherwise).
    FG_RETURN_IF_ERROR(db->Begin(true));
    Status st = db->Exec("SELECT pg_advisory_xact_lock(" + std::to_string(kSchemaLock) + ")");
    if (st.ok()) st = db->Exec(kSchema);
    if (!st.ok()) {
        (void)db->Rollback();
        return st;
    }
    FG_RETURN_IF_ERROR(db->Commit());
    return std::unique_ptr<Db>(std::move(db));
}

}  // namespace fg::history::internal
