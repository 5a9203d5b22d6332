// SPDX-License-Identifier: Apache-2.0
// The per-request costs of access control and auditing in `facegate serve`: authenticating a
// key (the cached hot path, and a wrong key) and appending one durable audit record.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
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

// One fsync per record (synchronous=FULL): the figure depends on the disk, not the CPU.
void BM_AuditAppend(benchmark::State& state) {
    const auto dir = BenchDir();
    fg::audit::AuditKey k{};
    auto log = fg::audit::AuditLog::Open(dir / "audit.db", k);
    fg::audit::Record r;
    r.who = "a1b2c3d4e5f6";
    r.who_name = "door-1";
    r.action = "identify";
    r.details = {{"faces", 2}, {"known", 1}};
    for (auto _ : state) benchmark::DoNotOptimize((*log)->Append(r).ok());
    state.SetItemsProcessed(state.iterations());
    log->reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}
BENCHMARK(BM_AuditAppend)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
