// SPDX-License-Identifier: Apache-2.0
// The per-request costs of access control and auditing in `facegate serve`: authenticating a
// key (the cached hot path, and a wrong key) and appending durable audit records from 1 or 8
// threads, one transaction each vs group commit.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "fg/audit/audit_log.h"
#include "fg/auth/key_store.h"

namespace {

std::filesystem::path BenchDir() {
    auto dir = std::filesystem::temp_directory_path() / ("fg_auth_audit_bench_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return dir;
}

void BM_AuthenticateCached(benchmark::State& state) {
    const auto dir = BenchDir();
    auto store = fg::auth::KeyStore::Open(dir / "keys.db");
    auto key = (*store)->Create("bench", {"recognize"});
    for (auto _ : state) benchmark::DoNotOptimize((*store)->Authenticate(key->secret).ok());
    store->reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}
BENCHMARK(BM_AuthenticateCached);

void BM_AuthenticateWrongKey(benchmark::State& state) {
    const auto dir = BenchDir();
    auto store = fg::auth::KeyStore::Open(dir / "keys.db");
    auto key = (*store)->Create("bench", {"recognize"});
    std::string wrong = key->secret;
    wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
    for (auto _ : state) benchmark::DoNotOptimize((*store)->Authenticate(wrong).ok());
    store->reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}
BENCHMARK(BM_AuthenticateWrongKey);

// Appends from 1 or 8 threads to one log. arg 0 = "before": the appends are serialised outside
// the log, so every record is its own transaction and fsync (what Append did before group
// commit); arg 1 = "after": concurrent appends share transactions (group commit). With one
// thread both are one record per fsync. The figure depends on the disk, not the CPU.
std::unique_ptr<fg::audit::AuditLog> g_log;
std::filesystem::path g_log_dir;
std::mutex g_serialise;

void BM_AuditAppend(benchmark::State& state) {
    const bool group = state.range(0) == 1;
    if (state.thread_index() == 0) {
        g_log_dir = BenchDir() / ("audit_" + std::to_string(state.threads()) + "_" + std::to_string(group));
        std::filesystem::create_directories(g_log_dir);
        fg::audit::AuditKey k{};
        auto opened = fg::audit::AuditLog::Open(g_log_dir / "audit.db", k);
        if (!opened.ok()) std::abort();
        g_log = std::move(*opened);
    }
    fg::audit::Record r;
    r.who = "a1b2c3d4e5f6";
    r.who_name = "door-1";
    r.action = "identify";
    r.details = {{"faces", 2}, {"known", 1}};
    for (auto _ : state) {  // the loop starts and ends with a barrier of all threads
        if (group) {
            benchmark::DoNotOptimize(g_log->Append(r).ok());
        } else {
            std::lock_guard lock(g_serialise);
            benchmark::DoNotOptimize(g_log->Append(r).ok());
        }
    }
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) {
        g_log.reset();
        std::error_code ec;
        std::filesystem::remove_all(g_log_dir.parent_path(), ec);
    }
}
BENCHMARK(BM_AuditAppend)->ArgName("group")->Arg(0)->Arg(1)->Threads(1)->Threads(8)->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
