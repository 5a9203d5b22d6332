// SPDX-License-Identifier: Apache-2.0
// Recognition history at scale (issue 15, BENCHMARKS.md "History"): fills a SQLite history with
// FG_HISTORY_BENCH_N sightings (default 1M; 16 streams, 10k subjects, 10% unknown from 1k
// strangers, 2% spoof, over 7 days, 512-d sealed embeddings, no crops) through
// HistoryStore::Record, then times inserts, the queries of GET /v1/history, reopening, and the
// retention purge of one day. The file lives in FG_HISTORY_BENCH_DIR (default /tmp).
// --db=postgres://... (or FG_HISTORY_BENCH_DB): the same on the PostgreSQL back end, in that
// database's fg_history_* tables (dropped first unless FG_HISTORY_BENCH_REUSE=1).
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <random>
#include <string>

#include "fg/history/history.h"

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
    o.keep_crops = false;
    o.stranger_threshold = 0.4f;
    return o;
}

struct World {
    std::unique_ptr<HistoryStore> store;
    std::vector<std::vector<float>> strangers;  // 1k unknown people
    std::mt19937 rng{42};
    double fill_seconds = 0;
    bool reuse = false;
    std::int64_t n = 0;

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
        return in;
    }
};

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
        auto s = HistoryStore::Open(Options());
        if (!s.ok()) {
            std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
            std::exit(1);
        }
        w->store = std::move(*s);
        const auto t0 = std::chrono::steady_clock::now();
        for (std::int64_t i = 0; i < w->n && !w->reuse; ++i) {
            if (auto r = w->store->Record(w->Make(i)); !r.ok()) {
                std::fprintf(stderr, "record: %s\n", r.status().ToString().c_str());
                std::exit(1);
            }
        }
        w->fill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
