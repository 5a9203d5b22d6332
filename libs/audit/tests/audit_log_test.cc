// SPDX-License-Identifier: Apache-2.0
#include "fg/audit/audit_log.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "fg/testing/testing.h"

namespace fg::audit {
namespace {

AuditKey TestKey(std::uint8_t fill = 7) {
    AuditKey k{};
    k.fill(fill);
    return k;
}

std::unique_ptr<AuditLog> OpenOrDie(const std::filesystem::path& p, const AuditKey& key = TestKey()) {
    auto log = AuditLog::Open(p, key);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(*log) : nullptr;
}

Record Rec(std::string action, std::string target = "alice") {
    Record r;
    r.who = "a1b2c3d4e5f6";
    r.who_name = "door-1";
    r.action = std::move(action);
    r.target = std::move(target);
    r.details = {{"faces", 2}, {"decision", "known"}};
    return r;
}

/// Runs SQL on the file behind the log's back, as an attacker with file access would; the
/// append-only triggers are dropped first (they only stop accidents).
void Tamper(const std::filesystem::path& p, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const std::string all = "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;" + sql;
    EXPECT_EQ(sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
}

class AuditTamper : public ::testing::Test {
  protected:
    void SetUp() override {
        auto log = OpenOrDie(path_);
        ASSERT_TRUE(log);
        for (int i = 0; i < 6; ++i) ASSERT_TRUE(log->Append(Rec(i % 2 ? "identify" : "enroll", "s" + std::to_string(i))).ok());
        auto v = log->Verify();
        ASSERT_TRUE(v.ok()) << v.status().ToString();
        EXPECT_EQ(v->records, 6);
    }
    Status VerifyAfter(const std::string& sql) {
        Tamper(path_, sql);
        auto log = OpenOrDie(path_);
        if (!log) return Internal("cannot open");
        return log->Verify().status();
    }
    testing::TmpDir tmp_;
    std::filesystem::path path_ = tmp_ / "audit.db";
};

TEST_F(AuditTamper, ChangedRowIsDetected) {
    Status s = VerifyAfter("UPDATE audit SET target = 'mallory' WHERE seq = 3");
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("seq 3 "), std::string::npos) << s.ToString();
}

TEST_F(AuditTamper, ChangedResultOrDetailsIsDetected) {
    Status s = VerifyAfter("UPDATE audit SET details = '{\"faces\":1}' WHERE seq = 5");
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("seq 5 "), std::string::npos) << s.ToString();
}

TEST_F(AuditTamper, DeletedRowIsDetected) {
    Status s = VerifyAfter("DELETE FROM audit WHERE seq = 4");
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("seq 4 is missing"), std::string::npos) << s.ToString();
}

TEST_F(AuditTamper, SwappedRowsAreDetected) {
    // Swap everything but seq between rows 2 and 3 (MACs travel with their rows).
    Status s = VerifyAfter(
        "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3;"
        "UPDATE audit SET seq = 3 WHERE seq = -2;");
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("seq 2 "), std::string::npos) << s.ToString();
}

TEST_F(AuditTamper, CutTailIsDetected) {
    Status s = VerifyAfter("DELETE FROM audit WHERE seq >= 5");
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("cut after seq 4"), std::string::npos) << s.ToString();
}

TEST_F(AuditTamper, ForgedRecordWithoutTheKeyIsDetected) {
    Status s = VerifyAfter(
        "INSERT INTO audit SELECT 7, time_ms, who, who_name, action, target, result, details, mac, key_id FROM audit WHERE seq = 6");
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("seq 7 "), std::string::npos) << s.ToString();
}

TEST_F(AuditTamper, AccidentalUpdatesAreRefused) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_NE(sqlite3_exec(db, "UPDATE audit SET result = 'ok'", nullptr, nullptr, nullptr), SQLITE_OK);
    EXPECT_NE(sqlite3_exec(db, "DELETE FROM audit", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
}

TEST(AuditLog, AnotherProgramsDatabaseIsRefused) {
    testing::TmpDir tmp;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmp / "gallery.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE faces (id INTEGER)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    auto log = AuditLog::Open(tmp / "gallery.db", TestKey());
    EXPECT_EQ(log.status().code(), StatusCode::kFailedPrecondition) << log.status().ToString();
}

TEST(AuditLog, WrongKeyIsRefusedAtOpen) {
    testing::TmpDir tmp;
    { ASSERT_TRUE(OpenOrDie(tmp / "a.db")); }
    auto other = AuditLog::Open(tmp / "a.db", TestKey(8));
    EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition) << other.status().ToString();
}

TEST(AuditLog, AppendQueryAndPage) {
    testing::TmpDir tmp;
    auto log = OpenOrDie(tmp / "a.db");
    ASSERT_TRUE(log);
    auto empty = log->Verify();
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->records, 0);
    for (int i = 0; i < 25; ++i) {
        Record r = Rec(i % 5 == 0 ? "key_create" : "identify");
        if (i % 2) r.who = "cli:bob";
        auto w = log->Append(r);
        ASSERT_TRUE(w.ok()) << w.status().ToString();
        EXPECT_EQ(w->seq, i + 1);
        EXPECT_GT(w->time_ms, 1700000000000);
    }
    auto page = log->Find({.limit = 10});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->records.size(), 10u);
    EXPECT_EQ(page->records.front().seq, 1);
    ASSERT_TRUE(page->next_after);
    std::int64_t total = 10, after = *page->next_after;
    while (true) {
        auto next = log->Find({.after_seq = after, .limit = 10});
        ASSERT_TRUE(next.ok());
        total += std::int64_t(next->records.size());
        if (!next->next_after) break;
        after = *next->next_after;
    }
    EXPECT_EQ(total, 25);
    auto keys = log->Find({.action = "key_create", .limit = 100});
    ASSERT_TRUE(keys.ok());
    EXPECT_EQ(keys->records.size(), 5u);
    EXPECT_FALSE(keys->next_after);
    auto bob = log->Find({.who = "cli:bob", .limit = 100});
    ASSERT_TRUE(bob.ok());
    EXPECT_EQ(bob->records.size(), 12u);
    EXPECT_EQ(bob->records[0].details["decision"], "known");
    const std::int64_t t = page->records[0].time_ms;
    auto none = log->Find({.until_ms = t, .limit = 100});
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->records.empty());
    auto all = log->Find({.since_ms = t, .limit = 1000});
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->records.size(), 25u);
    EXPECT_FALSE(log->Find({.limit = 0}).ok());
    EXPECT_FALSE(log->Find({.limit = 1001}).ok());
    EXPECT_TRUE(log->Verify().ok());
}

TEST(AuditLog, RefusesBiometricLookingDetailsAndBadFields) {
    testing::TmpDir tmp;
    auto log = OpenOrDie(tmp / "a.db");
    ASSERT_TRUE(log);
    Record emb = Rec("identify");
    emb.details = {{"embedding", std::vector<float>(512, 0.1f)}};
    EXPECT_EQ(log->Append(emb).status().code(), StatusCode::kInvalidArgument);
    Record big = Rec("identify");
    big.details = {{"image", std::string(4000, 'A')}};
    EXPECT_EQ(log->Append(big).status().code(), StatusCode::kInvalidArgument);
    Record deep = Rec("identify");
    deep.details = {{"a", {{"b", {{"c", {{"d", 1}}}}}}}};
    EXPECT_EQ(log->Append(deep).status().code(), StatusCode::kInvalidArgument);
    Record notobj = Rec("identify");
    notobj.details = 5;
    EXPECT_FALSE(log->Append(notobj).ok());
    EXPECT_FALSE(log->Append(Rec("Bad Action")).ok());
    EXPECT_FALSE(log->Append(Rec("")).ok());
    Record nowho = Rec("identify");
    nowho.who.clear();
    EXPECT_FALSE(log->Append(nowho).ok());
    Record ctl = Rec("identify", "a\nb");
    EXPECT_FALSE(log->Append(ctl).ok());
    // Small facts are fine: a few candidate ids, a decision, counts.
    Record fine = Rec("identify");
    fine.details = {{"faces", {{{"subject", "alice"}, {"decision", "known"}}}}, {"top_k", 3}};
    EXPECT_TRUE(log->Append(fine).ok());
    auto v = log->Verify();
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->records, 1);
}

TEST(AuditLog, FileIsPrivateWhateverTheUmask) {
    testing::TmpDir tmp;
    const mode_t old = ::umask(0);
    {
        auto log = OpenOrDie(tmp / "a.db");
        ASSERT_TRUE(log);
        ASSERT_TRUE(log->Append(Rec("enroll")).ok());
        for (const char* f : {"a.db", "a.db-wal", "a.db-shm"}) {
            struct stat st {};
            ASSERT_EQ(::stat((tmp / f).c_str(), &st), 0) << f;
            EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
        }
    }
    ::umask(old);
}

// Threads of one process and two handles on one file (two processes) append at once: one
// unbroken chain, no seq twice.
TEST(AuditLog, ConcurrentAppendsFormOneChain) {
    testing::TmpDir tmp;
    auto a = OpenOrDie(tmp / "a.db");
    auto b = OpenOrDie(tmp / "a.db");
    ASSERT_TRUE(a && b);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            AuditLog& log = t % 2 ? *a : *b;
            for (int i = 0; i < 25; ++i) EXPECT_TRUE(log.Append(Rec("verify")).ok());
        });
    }
    for (auto& th : threads) th.join();
    auto v = a->Verify();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->records, 100);
    EXPECT_EQ(v->last_seq, 100);
}

// Group commit: many threads of one process append at once (batched into shared
// transactions); every returned seq is in the file exactly once, holding that thread's record,
// and the chain verifies.
TEST(AuditLog, GroupCommitManyThreadsEverySeqOnce) {
    testing::TmpDir tmp;
    auto log = OpenOrDie(tmp / "a.db");
    ASSERT_TRUE(log);
    constexpr int kThreads = 8, kEach = 40;
    std::vector<std::vector<std::pair<std::int64_t, std::string>>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                const std::string target = "t" + std::to_string(t) + "-" + std::to_string(i);
                auto r = log->Append(Rec("identify", target));
                ASSERT_TRUE(r.ok()) << r.status().ToString();
                EXPECT_EQ(r->target, target);
                got[t].emplace_back(r->seq, target);
            }
        });
    }
    for (auto& th : threads) th.join();
    auto v = log->Verify();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->records, kThreads * kEach);
    EXPECT_EQ(v->last_seq, kThreads * kEach);
    std::map<std::int64_t, std::string> by_seq;
    for (const auto& g : got) {
        std::int64_t last = 0;
        for (const auto& [seq, target] : g) {
            EXPECT_TRUE(by_seq.emplace(seq, target).second) << "seq " << seq << " returned twice";
            EXPECT_GT(seq, last) << "one thread's records keep their order";
            last = seq;
        }
    }
    ASSERT_EQ(by_seq.size(), std::size_t(kThreads * kEach));
    Query q;
    q.limit = 1000;
    auto page = log->Find(q);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->records.size(), by_seq.size());
    for (const auto& rec : page->records) EXPECT_EQ(rec.target, by_seq.at(rec.seq)) << "seq " << rec.seq;
}

// A record refused (bad action, oversized details, or by the database itself) fails alone: the
// others appended at the same time, in the same batch, are written and chained.
TEST(AuditLog, GroupCommitFailureDoesNotPoisonTheBatch) {
    testing::TmpDir tmp;
    const auto path = tmp / "a.db";
    { ASSERT_TRUE(OpenOrDie(path)); }
    // A database-level refusal inside the transaction: RAISE(ABORT) undoes only that INSERT.
    Tamper(path,
           "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit WHEN NEW.target = 'poison'"
           " BEGIN SELECT RAISE(ABORT, 'refused'); END;");
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    constexpr int kThreads = 8, kEach = 30;
    std::atomic<int> ok{0}, invalid{0}, refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                Record r = Rec("enroll", "s" + std::to_string(t));
                const int kind = (t + i) % 4;
                if (kind == 1) r.action = "Bad Action";
                if (kind == 2) r.target = "poison";
                auto res = log->Append(r);
                if (kind == 0 || kind == 3) {
                    EXPECT_TRUE(res.ok()) << res.status().ToString();
                    ok += res.ok();
                } else if (kind == 1) {
                    EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
                    invalid++;
                } else {
                    EXPECT_FALSE(res.ok());
                    refused += !res.ok();
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), kThreads * kEach / 2);
    EXPECT_EQ(refused.load(), kThreads * kEach / 4);
    auto v = log->Verify();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->records, ok.load());
    EXPECT_EQ(v->last_seq, ok.load());
}

/// Collects AppendAsync completions (called on the commit thread).
struct Completions {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Result<Record>> results;
    AppendDone Callback() {
        return [this](Result<Record> r) {
            std::lock_guard l(mu);
            results.push_back(std::move(r));
            cv.notify_all();
        };
    }
    void WaitFor(std::size_t n) {
        std::unique_lock l(mu);
        ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(20), [&] { return results.size() >= n; }))
            << results.size() << " of " << n << " completions";
    }
};

// 64 requests in flight (serve's identify at 64 connections): their records share a handful of
// transactions (fsyncs), complete in queue order, and the chain verifies.
TEST(AuditLog, AsyncAppendsShareCommits) {
    testing::TmpDir tmp;
    auto log = OpenOrDie(tmp / "a.db");
    ASSERT_TRUE(log);
    Completions done;
    constexpr int kN = 64;
    for (int i = 0; i < kN; ++i) log->AppendAsync(Rec("identify", "s" + std::to_string(i)), done.Callback());
    done.WaitFor(kN);
    std::lock_guard l(done.mu);
    for (int i = 0; i < kN; ++i) {
        ASSERT_TRUE(done.results[i].ok()) << done.results[i].status().ToString();
        EXPECT_EQ(done.results[i]->seq, i + 1);  // queue order = seq order = completion order
        EXPECT_EQ(done.results[i]->target, "s" + std::to_string(i));
        EXPECT_EQ(done.results[i]->key_id, AuditKeyId(TestKey()));
    }
    // The first record commits alone; the rest queue during its fsync. Loose bound: the point
    // is "a few", not one per record.
    EXPECT_LE(log->commits(), kN / 4) << "commits: " << log->commits();
    auto v = log->Verify();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->records, kN);
}

// Sync Appends (the CLI) and AppendAsyncs (serve) from several threads form one chain.
TEST(AuditLog, SyncAndAsyncAppendsFormOneChain) {
    testing::TmpDir tmp;
    auto log = OpenOrDie(tmp / "a.db");
    ASSERT_TRUE(log);
    Completions done;
    constexpr int kThreads = 4, kEach = 25;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                if (t % 2) {
                    log->AppendAsync(Rec("verify"), done.Callback());
                } else {
                    EXPECT_TRUE(log->Append(Rec("enroll")).ok());
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    done.WaitFor(kThreads / 2 * kEach);
    auto v = log->Verify();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->records, kThreads * kEach);
}

// A store that refuses writes fails every AppendAsync through its callback (serve answers 503);
// a refused record is reported on the calling thread; destroying the log completes the queue.
TEST(AuditLog, AsyncFailuresReachTheCallback) {
    testing::TmpDir tmp;
    const auto path = tmp / "a.db";
    { ASSERT_TRUE(OpenOrDie(path)); }
    Tamper(path, "CREATE TRIGGER refuse_all BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk says no'); END;");
    {
        auto log = OpenOrDie(path);
        ASSERT_TRUE(log);
        Completions done;
        for (int i = 0; i < 8; ++i) log->AppendAsync(Rec("identify"), done.Callback());
        done.WaitFor(8);
        for (const auto& r : done.results) EXPECT_FALSE(r.ok());
        Record bad = Rec("Bad Action");
        std::optional<Status> inline_status;
        log->AppendAsync(bad, [&](Result<Record> r) { inline_status = r.status(); });
        ASSERT_TRUE(inline_status.has_value());  // refused before queueing: called at once
        EXPECT_EQ(inline_status->code(), StatusCode::kInvalidArgument);
    }
    Tamper(path, "DROP TRIGGER refuse_all;");
    Completions done;
    {
        auto log = OpenOrDie(path);
        ASSERT_TRUE(log);
        for (int i = 0; i < 5; ++i) log->AppendAsync(Rec("identify"), done.Callback());
    }  // the destructor drains the queue
    ASSERT_EQ(done.results.size(), 5u);
    for (const auto& r : done.results) EXPECT_TRUE(r.ok()) << r.status().ToString();
}

// After a gallery key rotation new records are under the new key; the chain verifies across
// the rotation with both keys, names what is missing with the new key alone, and a change on
// either side of the rotation is caught.
class AuditRotation : public ::testing::Test {
  protected:
    void SetUp() override {
        {
            auto log = OpenOrDie(path_, TestKey(1));
            ASSERT_TRUE(log);
            for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append(Rec("enroll", "before" + std::to_string(i))).ok());
        }
        {
            auto log = AuditLog::Open(path_, Both());
            ASSERT_TRUE(log.ok()) << log.status().ToString();
            auto r = (*log)->Append(Rec("rotate_key", ""));
            ASSERT_TRUE(r.ok());
            EXPECT_EQ(r->key_id, AuditKeyId(TestKey(2)));
        }
        {
            auto log = OpenOrDie(path_, TestKey(2));  // the new key alone opens it from now on
            ASSERT_TRUE(log);
            for (int i = 0; i < 2; ++i) ASSERT_TRUE(log->Append(Rec("identify", "after" + std::to_string(i))).ok());
        }
    }
    static AuditKeyRing Both() { return AuditKeyRing{TestKey(2), {TestKey(1)}}; }
    Result<VerifyReport> VerifyBoth() {
        auto log = AuditLog::Open(path_, Both());
        if (!log.ok()) return log.status();
        return (*log)->Verify();
    }
    testing::TmpDir tmp_;
    std::filesystem::path path_ = tmp_ / "audit.db";
};

TEST_F(AuditRotation, VerifiesAcrossTheRotation) {
    auto v = VerifyBoth();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->records, 6);
    EXPECT_EQ(v->key_ids, (std::vector<std::string>{AuditKeyId(TestKey(1)), AuditKeyId(TestKey(2))}));
    auto alone = AuditLog::Open(path_, TestKey(2));
    ASSERT_TRUE(alone.ok());
    auto partial = (*alone)->Verify();
    EXPECT_EQ(partial.status().code(), StatusCode::kFailedPrecondition) << partial.status().ToString();
    // The old key alone no longer opens the log: it would fork the chain.
    EXPECT_EQ(AuditLog::Open(path_, TestKey(1)).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(AuditRotation, TamperBeforeTheRotationIsDetected) {
    Tamper(path_, "UPDATE audit SET target = 'mallory' WHERE seq = 2;");
    auto v = VerifyBoth();
    EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(v.status().message().find("seq 2"), std::string::npos) << v.status().ToString();
}

TEST_F(AuditRotation, TamperAfterTheRotationIsDetected) {
    Tamper(path_, "UPDATE audit SET result = 'ERROR' WHERE seq = 5;");
    auto v = VerifyBoth();
    EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(v.status().message().find("seq 5"), std::string::npos) << v.status().ToString();
}

TEST_F(AuditRotation, BackToTheOldKeyIsDetected) {
    // Whoever still holds the old key re-labels a new record as old-key (with a MAC they can
    // make): the epoch cannot go back.
    Tamper(path_, "UPDATE audit SET key_id = '" + AuditKeyId(TestKey(1)) + "' WHERE seq = 6;");
    auto v = VerifyBoth();
    EXPECT_EQ(v.status().code(), StatusCode::kDataLoss) << v.status().ToString();
}

TEST(AuditKeyDerivation, Hkdf) {
    std::vector<std::uint8_t> g(32, 0x0b);
    auto k1 = DeriveAuditKey(g);
    ASSERT_TRUE(k1.ok());
    auto k2 = DeriveAuditKey(g);
    EXPECT_EQ(*k1, *k2);  // deterministic: CLI and service derive the same key
    g[0] ^= 1;
    EXPECT_NE(*DeriveAuditKey(g), *k1);
    EXPECT_NE(std::vector<std::uint8_t>(k1->begin(), k1->end()), std::vector<std::uint8_t>(32, 0x0b));
    EXPECT_FALSE(DeriveAuditKey(std::vector<std::uint8_t>(16, 1)).ok());
}

TEST(AuditTime, ParseAndFormat) {
    const std::int64_t now = 1'800'000'000'000;
    EXPECT_EQ(*ParseTime("2026-12-05T10:00:00Z", now), 1796464800000);
    EXPECT_EQ(*ParseTime("2026-12-05T12:00:00+02:00", now), 1796464800000);
    EXPECT_EQ(*ParseTime("2026-12-05T10:00:00.250Z", now), 1796464800250);
    EXPECT_EQ(*ParseTime("2026-12-05", now), 1796428800000);
    EXPECT_EQ(*ParseTime("1796464800", now), 1796464800000);
    EXPECT_EQ(*ParseTime("15m", now), now - 15 * 60000);
    EXPECT_EQ(*ParseTime("2d", now), now - 2 * 86400000);
    for (const char* bad : {"", "yesterday", "2026-13-01", "2026-12-05T10:00", "2026-12-05T10:00:00",
                            "2026-12-05T10:00:00Zjunk", "5y", "99999999999999999999"}) {
        EXPECT_FALSE(ParseTime(bad, now).ok()) << bad;
    }
    EXPECT_EQ(FormatTime(1796464800250), "2026-12-05T10:00:00.250Z");
}

}  // namespace
}  // namespace fg::audit
