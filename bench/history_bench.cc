// SPDX-License-Identifier: Apache-2.0
// Recognition history at scale (issue 15, BENCHMARKS.md "History"): fills a SQLite history with
// FG_HISTORY_BENCH_N sightings (default 1M; 16 streams, 10k subjects, 10% unknown from 1k
// strangers, 2% spoof, over 7 days, 512-d sealed embeddings, no crops) through
// HistoryStore::Record, then times inserts, the queries of GET /v1/history, reopening, and the
// retention purge of one day. The file lives in FG_HISTORY_BENCH_DIR (default /tmp).
// --db=postgres://... (or FG_HISTORY_BENCH_DB): the same on the PostgreSQL back end, in that
// database's fg_history_* tables (dropped first unless FG_HISTORY_BENCH_REUSE=1).
// FG_HISTORY_BENCH_CROP_BYTES=B: every sighting also carries a best-shot crop of B bytes (sealed
// like a JPEG; default 0, no crops). FG_HISTORY_BENCH_FILL=copy (PostgreSQL only): the fill goes
// through COPY instead of one Record per sighting (1M at ~500 Record/s would take over half an
// hour); see CopyFill for why its rows are the ones Record writes.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "fg/history/history.h"
#include "fg/history/strangers.h"

namespace {

using fg::history::HistoryStore;
using fg::history::Outcome;

constexpr int kDim = 512;
constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kStart = 1'764'892'800'000;  // 2025-12-05T00:00:00Z

std::int64_t N() {
    const char* e = std::getenv("FG_HISTORY_BENCH_N");
    return e && *e ? std::atoll(e) : 1'000'000;
}

std::size_t CropBytes() {
    const char* e = std::getenv("FG_HISTORY_BENCH_CROP_BYTES");
    return e && *e ? std::size_t(std::atoll(e)) : 0;
}

bool CopyFillWanted() {
    const char* e = std::getenv("FG_HISTORY_BENCH_FILL");
    return e && std::string(e) == "copy";
}

std::string& DbUrl() {
    static std::string url = [] {
        const char* e = std::getenv("FG_HISTORY_BENCH_DB");
        return std::string(e ? e : "");
    }();
    return url;
}

// Runs one statement on the PostgreSQL bench database; returns the first value ("" on error).
std::string PgValue(const std::string& sql) {
    PGconn* c = PQconnectdb(DbUrl().c_str());
    PGresult* r = PQexec(c, sql.c_str());
    std::string v;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) v = PQgetvalue(r, 0, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        std::fprintf(stderr, "postgres: %s", PQerrorMessage(c));
    }
    PQclear(r);
    PQfinish(c);
    return v;
}

std::filesystem::path Dir() {
    const char* e = std::getenv("FG_HISTORY_BENCH_DIR");
    return std::filesystem::path(e && *e ? e : "/tmp") / "fg_history_bench";
}

std::vector<float> Unit(std::mt19937& rng) {
    std::normal_distribution<float> d;
    std::vector<float> v(kDim);
    float n = 0;
    for (float& x : v) {
        x = d(rng);
        n += x * x;
    }
    for (float& x : v) x /= std::sqrt(n);
    return v;
}

fg::history::HistoryOptions Options() {
    fg::gallery::TemplateKey k;
    k.bytes.assign(32, 7);
    k.id = "bench";
    fg::history::HistoryOptions o;
    if (DbUrl().empty()) o.path = Dir() / "bench.history.db";
    else o.url = DbUrl();
    o.keys = std::make_shared<fg::gallery::KeyRing>(k);
    o.model_id = "bench-512";
    o.dim = kDim;
    o.retention_days = 6;  // the purge benchmark drops the oldest of the 7 days
    o.keep_crops = CropBytes() > 0;
    o.stranger_threshold = 0.4f;
    return o;
}

struct World {
    std::unique_ptr<HistoryStore> store;
    std::vector<std::vector<float>> strangers;  // 1k unknown people
    std::mt19937 rng{42};
    double fill_seconds = 0, vacuum_seconds = 0, first_open_seconds = 0;
    bool reuse = false;
    std::int64_t n = 0;
    std::vector<std::uint8_t> crop;  // the same best shot for every sighting (content is irrelevant once sealed)

    fg::history::SightingInput Make(std::int64_t i) {
        fg::history::SightingInput in;
        in.time_ms = kStart + i * (7 * kDay) / n;
        in.stream = "cam-" + std::to_string(i % 16);
        in.track = i;
        const int kind = static_cast<int>(i % 50);
        std::normal_distribution<float> noise(0, 0.02f);
        if (kind < 5) {  // 10% unknown: a noisy view of one of 1k strangers
            in.outcome = Outcome::kUnknown;
            in.embedding = strangers[(i * 7919) % strangers.size()];
            float s = 0;
            for (float& x : in.embedding) {
                x += noise(rng);
                s += x * x;
            }
            for (float& x : in.embedding) x /= std::sqrt(s);
        } else if (kind == 5) {  // 2% spoof: no embedding
            in.outcome = Outcome::kSpoof;
        } else {
            in.outcome = Outcome::kKnown;
            in.subject_id = "s" + std::to_string((i * 104729) % 10000);
            in.display_name = "Subject " + in.subject_id;
            in.embedding = Unit(rng);
        }
        in.score = 0.6f;
        in.margin = 0.2f;
        in.quality = 0.7f;
        in.crop_jpeg = crop;
        return in;
    }
};

// Binary COPY (PostgreSQL's documented format): big-endian fields, -1 length for NULL.
class CopyBuf {
  public:
    void Header() { Raw("PGCOPY\n\377\r\n\0", 11), U32(0), U32(0); }
    void Row(int fields) { U16(std::uint16_t(fields)); }
    void Int(std::int64_t v) { U32(8), U64(std::uint64_t(v)); }
    void Real(double v) { U32(8), U64(std::bit_cast<std::uint64_t>(v)); }
    void Text(const std::string& v) { U32(std::uint32_t(v.size())), Raw(v.data(), v.size()); }
    void TextOrNull(const std::string& v) { v.empty() ? Null() : Text(v); }
    void Blob(const std::vector<std::uint8_t>& b) {
        U32(std::uint32_t(b.size())), Raw(reinterpret_cast<const char*>(b.data()), b.size());
    }
    void Null() { U32(0xffffffffu); }
    void Trailer() { U16(0xffff); }
    std::string& data() { return buf_; }

  private:
    void Raw(const char* p, std::size_t n) { buf_.append(p, n); }
    void U16(std::uint16_t v) { for (int s = 8; s >= 0; s -= 8) buf_ += char(v >> s); }
    void U32(std::uint32_t v) { for (int s = 24; s >= 0; s -= 8) buf_ += char(v >> s); }
    void U64(std::uint64_t v) { for (int s = 56; s >= 0; s -= 8) buf_ += char(v >> s); }
    std::string buf_;
};

[[noreturn]] void Die(const std::string& what, PGconn* c) {
    std::fprintf(stderr, "copy fill: %s: %s\n", what.c_str(), c ? PQerrorMessage(c) : "");
    std::exit(1);
}

void Exec(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok) Die(sql, c);
}

void Copy(PGconn* c, const std::string& sql, std::string& data) {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COPY_IN) Die(sql, c);
    PQclear(r);
    for (std::size_t at = 0; at < data.size(); at += 1 << 20) {
        if (PQputCopyData(c, data.data() + at, int(std::min<std::size_t>(1 << 20, data.size() - at))) != 1) Die("put", c);
    }
    if (PQputCopyEnd(c, nullptr) != 1) Die("end", c);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) Die("copy", c);
    PQclear(r);
    while ((r = PQgetResult(c))) PQclear(r);
    data.clear();
}

// The AAD HistoryStore binds each sealed blob to (history_store.cc's Aad). Duplicated here, and
// checked after the fill: the store opens every embedding at reopen (any mismatch is
// "unreadable") and W() opens sample crops and embeddings through the store's own API.
std::string Aad(std::int64_t id, const std::string& stream, std::int64_t time_ms, const char* what) {
    return "fg-history/v1|" + std::to_string(id) + "|" + stream + "|" + std::to_string(time_ms) + "|" +
           Options().model_id + "|" + what;
}

// The fill without Record's four round trips per sighting: the same inputs (World::Make), the
// same ids (the sequence from 1, set to n at the end), the same sealing, the same strangers (the
// store's clusterer with its threshold, ids from 1, summaries updated as Record's UPDATE does),
// sent with COPY in chunks of 50k rows. The store is closed meanwhile and reopened after.
void CopyFill(World& w) {
    const fg::history::HistoryOptions o = Options();
    fg::history::StrangerClusterer clusterer(fg::history::StrangerOptions{.threshold = o.stranger_threshold});
    struct StrangerRow {
        std::int64_t first, last, sightings, best;
        double best_quality;
    };
    std::map<std::int64_t, StrangerRow> strangers;
    std::int64_t next_stranger = 1;
    PGconn* c = PQconnectdb(DbUrl().c_str());
    if (PQstatus(c) != CONNECTION_OK) Die("connect", c);
    Exec(c, "SET synchronous_commit = off");
    const std::string cols = "COPY fg_history_sightings (id, time_ms, stream, track, outcome, subject_id, display_name, "
                             "score, margin, liveness, quality, model_id, key_id, embedding, crop, stranger_id) "
                             "FROM STDIN (FORMAT binary)";
    CopyBuf b;
    b.Header();
    for (std::int64_t i = 0; i < w.n; ++i) {
        const fg::history::SightingInput in = w.Make(i);
        const std::int64_t id = i + 1;
        const bool has_emb = !in.embedding.empty();
        const bool has_crop = o.keep_crops && !in.crop_jpeg.empty();
        std::optional<std::int64_t> stranger;
        if (in.outcome == Outcome::kUnknown && has_emb) {
            const fg::history::StrangerMatch m = clusterer.Assign(id, in.embedding, in.quality, next_stranger);
            if (m.created) {
                strangers[m.stranger_id] = {in.time_ms, in.time_ms, 1, id, double(in.quality)};
                next_stranger = m.stranger_id + 1;
            } else if (m.stranger_id != 0) {
                StrangerRow& r = strangers[m.stranger_id];
                r.first = std::min(r.first, in.time_ms);
                r.last = std::max(r.last, in.time_ms);
                ++r.sightings;
                if (double(in.quality) > r.best_quality) r.best = id, r.best_quality = double(in.quality);
            }
            if (m.stranger_id != 0) stranger = m.stranger_id;
        }
        b.Row(16);
        b.Int(id), b.Int(in.time_ms), b.Text(in.stream), b.Int(in.track), b.Int(std::int64_t(in.outcome));
        b.TextOrNull(in.subject_id), b.TextOrNull(in.display_name);
        b.Real(double(in.score)), b.Real(double(in.margin));
        in.liveness ? b.Real(double(*in.liveness)) : b.Null();
        b.Real(double(in.quality)), b.Text(o.model_id), b.Text(o.keys->current_id());
        if (has_emb) b.Blob(*o.keys->Seal(in.embedding, Aad(id, in.stream, in.time_ms, "embedding")));
        else b.Null();
        if (has_crop) b.Blob(*o.keys->SealBytes(in.crop_jpeg, Aad(id, in.stream, in.time_ms, "crop")));
        else b.Null();
        stranger ? b.Int(*stranger) : b.Null();
        if ((i + 1) % 50'000 == 0 || i + 1 == w.n) {
            b.Trailer();
            Copy(c, cols, b.data());
            b.Header();
            if ((i + 1) % 200'000 == 0) std::fprintf(stderr, "copy fill: %lld rows\n", static_cast<long long>(i + 1));
        }
    }
    b.data().clear();
    b.Header();
    for (const auto& [id, r] : strangers) {
        b.Row(6);
        b.Int(id), b.Int(r.first), b.Int(r.last), b.Int(r.sightings), b.Int(r.best), b.Real(r.best_quality);
    }
    b.Trailer();
    Copy(c, "COPY fg_history_strangers (id, first_seen_ms, last_seen_ms, sightings, best_sighting_id, best_quality) "
            "FROM STDIN (FORMAT binary)", b.data());
    Exec(c, "SELECT setval(pg_get_serial_sequence('fg_history_sightings', 'id'), " + std::to_string(w.n) + ")");
    PQfinish(c);
}

// A store filled for days has been visited by autovacuum (visibility map, statistics); a COPY
// fill minutes ago has not, so the bench runs what autovacuum would before timing.
void VacuumAnalyze() {
    PGconn* c = PQconnectdb(DbUrl().c_str());
    Exec(c, "VACUUM ANALYZE fg_history_sightings");
    Exec(c, "VACUUM ANALYZE fg_history_strangers");
    PQfinish(c);
}

World& W() {
    static World* w = [] {
        auto* w = new World;
        w->n = N();
        // FG_HISTORY_BENCH_REUSE=1: keep the file of the previous run (already purged of its
        // oldest day) and time the rest on it; the purge then drops the next day.
        const bool pg = !DbUrl().empty();
        w->reuse = std::getenv("FG_HISTORY_BENCH_REUSE") != nullptr &&
                   (pg ? !PgValue("SELECT to_regclass('fg_history_sightings')").empty()
                       : std::filesystem::exists(Options().path));
        if (!w->reuse && pg) {
            PgValue("DROP TABLE IF EXISTS fg_history_sightings, fg_history_strangers, fg_history_meta");
        } else if (!w->reuse) {
            std::filesystem::remove_all(Dir());
            std::filesystem::create_directories(Dir());
        }
        for (int i = 0; i < 1000; ++i) w->strangers.push_back(Unit(w->rng));
        if (CropBytes() > 0) {
            std::mt19937 crop_rng(7);  // its own generator: Make's sequence stays the same
            for (std::size_t i = 0; i < CropBytes(); ++i) w->crop.push_back(std::uint8_t(crop_rng()));
        }
        const auto open = [] {
            auto s = HistoryStore::Open(Options());
            if (!s.ok()) {
                std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
                std::exit(1);
            }
            return std::move(*s);
        };
        w->store = open();  // creates the tables
        const bool copy = CopyFillWanted() && pg && !w->reuse;
        if (CopyFillWanted() && !pg) {
            std::fprintf(stderr, "FG_HISTORY_BENCH_FILL=copy needs --db postgresql://...\n");
            std::exit(2);
        }
        const auto t0 = std::chrono::steady_clock::now();
        if (copy) {
            w->store.reset();
            CopyFill(*w);
        }
        for (std::int64_t i = 0; i < w->n && !w->reuse && !copy; ++i) {
            if (auto r = w->store->Record(w->Make(i)); !r.ok()) {
                std::fprintf(stderr, "record: %s\n", r.status().ToString().c_str());
                std::exit(1);
            }
        }
        w->fill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (copy) {
            const auto t1 = std::chrono::steady_clock::now();
            VacuumAnalyze();
            const auto t2 = std::chrono::steady_clock::now();
            w->store = open();  // every embedding opened: one with a wrong AAD is logged unreadable
            w->vacuum_seconds = std::chrono::duration<double>(t2 - t1).count();
            w->first_open_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
            // The store's own API opens what COPY wrote, and it is what Make gave.
            for (std::int64_t i = 0; i < w->n; i += 99'991) {
                auto e = w->store->Embedding(i + 1);
                auto c = w->store->Crop(i + 1);
                const bool emb_ok = i % 50 == 5 ? e.status().code() == fg::StatusCode::kNotFound : e.ok();
                const bool crop_ok = CropBytes() > 0 ? c.ok() && *c == w->crop
                                                     : c.status().code() == fg::StatusCode::kNotFound;
                if (!emb_ok || !crop_ok) {
                    std::fprintf(stderr, "copy fill: sighting %lld does not open as Record's would\n",
                                 static_cast<long long>(i + 1));
                    std::exit(1);
                }
            }
            if (w->store->count() != w->n) {
                std::fprintf(stderr, "copy fill: %lld rows, expected %lld\n",
                             static_cast<long long>(w->store->count()), static_cast<long long>(w->n));
                std::exit(1);
            }
        }
        return w;
    }();
    return *w;
}

void BM_Fill(benchmark::State& state) {
    World& w = W();
    for (auto _ : state) benchmark::DoNotOptimize(w.n);
    state.counters["sightings"] = static_cast<double>(w.n);
    state.counters["fill_s"] = w.fill_seconds;
    state.counters["inserts_per_s"] = static_cast<double>(w.n) / w.fill_seconds;
    if (w.vacuum_seconds > 0) {  // the COPY fill: then VACUUM ANALYZE, then the first open
        state.counters["vacuum_s"] = w.vacuum_seconds;
        state.counters["open_s"] = w.first_open_seconds;
    }
    state.counters["file_MB"] =
        DbUrl().empty() ? static_cast<double>(std::filesystem::file_size(Options().path)) / 1e6
                        : std::atof(PgValue("SELECT pg_total_relation_size('fg_history_sightings') + "
                                            "pg_total_relation_size('fg_history_strangers')").c_str()) / 1e6;
}
BENCHMARK(BM_Fill)->Iterations(1)->Unit(benchmark::kMillisecond);

// One more decision into the full store (known, or unknown through the strangers clusterer).
void BM_Record(benchmark::State& state) {
    World& w = W();
    std::int64_t i = w.n;
    const bool unknown = state.range(0) == 1;
    for (auto _ : state) {
        auto in = w.Make(unknown ? (i / 50) * 50 : (i / 50) * 50 + 10);
        in.time_ms = kStart + 7 * kDay - 1000;
        benchmark::DoNotOptimize(w.store->Record(in));
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record)->Arg(0)->Arg(1)->ArgNames({"unknown"})->Unit(benchmark::kMicrosecond);

void RunQuery(benchmark::State& state, const fg::history::HistoryQuery& q) {
    World& w = W();
    std::size_t rows = 0;
    for (auto _ : state) {
        auto page = w.store->List(q);
        if (!page.ok()) state.SkipWithError(page.status().ToString().c_str());
        rows = page.ok() ? page->items.size() : 0;
    }
    state.counters["rows"] = static_cast<double>(rows);
}

void BM_QueryNewest(benchmark::State& s) { RunQuery(s, {.limit = 100}); }
void BM_QueryTimeRange(benchmark::State& s) {
    RunQuery(s, {.from_ms = kStart + 3 * kDay, .to_ms = kStart + 3 * kDay + 3'600'000, .limit = 100});
}
void BM_QueryStream(benchmark::State& s) {
    RunQuery(s, {.from_ms = kStart + 2 * kDay, .to_ms = kStart + 5 * kDay, .stream = "cam-7", .limit = 100});
}
void BM_QuerySubject(benchmark::State& s) { RunQuery(s, {.subject = "s4242", .limit = 100}); }
void BM_QueryOutcome(benchmark::State& s) { RunQuery(s, {.outcome = Outcome::kSpoof, .limit = 100}); }
void BM_QueryStreamOutcome(benchmark::State& s) {
    RunQuery(s, {.stream = "cam-3", .outcome = Outcome::kUnknown, .limit = 100});
}
void BM_QueryDeepPage(benchmark::State& state) {
    // The 50th page of a stream: cursor paging never re-reads what it skipped.
    World& w = W();
    fg::history::HistoryQuery q{.stream = "cam-9", .limit = 100};
    for (int p = 0; p < 49; ++p) q.cursor = w.store->List(q)->next_cursor;
    RunQuery(state, q);
}
BENCHMARK(BM_QueryNewest)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QueryTimeRange)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QueryStream)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QuerySubject)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QueryOutcome)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QueryStreamOutcome)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QueryDeepPage)->Unit(benchmark::kMicrosecond);

void BM_StrangersList(benchmark::State& state) {
    World& w = W();
    for (auto _ : state) benchmark::DoNotOptimize(w.store->ListStrangers({.limit = 50}));
}
BENCHMARK(BM_StrangersList)->Unit(benchmark::kMicrosecond);

// Search by face (GET /v1/history/search): one stranger's face over every stored embedding,
// the best 50 read back from the database. Make's unknowns cycle through 100 of the 1k strangers
// (indexes 0, 7, 19, 26, 38 mod 50), so stranger 19 has n/1000 noisy sightings to find.
void BM_SearchByFace(benchmark::State& state) {
    World& w = W();
    std::size_t rows = 0;
    for (auto _ : state) {
        auto r = w.store->Search(w.strangers[19], 50, 0.5f);
        if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
        rows = r.ok() ? r->size() : 0;
    }
    state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_SearchByFace)->Unit(benchmark::kMicrosecond);

// Reopening: every embedding decrypted into the search index, strangers restored.
void BM_Reopen(benchmark::State& state) {
    World& w = W();
    for (auto _ : state) {
        w.store.reset();
        auto s = HistoryStore::Open(Options());
        if (!s.ok()) state.SkipWithError(s.status().ToString().c_str());
        w.store = std::move(*s);
    }
}
BENCHMARK(BM_Reopen)->Iterations(1)->Unit(benchmark::kMillisecond);

// The retention purge of the oldest day (1/7 of the rows), in batches of 5000.
void BM_PurgeOneDay(benchmark::State& state) {
    World& w = W();
    std::int64_t purged = 0;
    for (auto _ : state) {
        auto n = w.store->Purge(kStart + (w.reuse ? 8 : 7) * kDay);
        if (!n.ok()) state.SkipWithError(n.status().ToString().c_str());
        purged = n.ok() ? *n : 0;
    }
    state.counters["purged"] = static_cast<double>(purged);
    state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(purged), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PurgeOneDay)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    // --db=URL / --db URL is ours; the rest goes to Google Benchmark.
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strncmp(argv[i], "--db=", 5) == 0) {
            DbUrl() = argv[i] + 5;
        } else if (std::strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            DbUrl() = argv[++i];
        } else {
            args.push_back(argv[i]);
        }
    }
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
