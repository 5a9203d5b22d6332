// SPDX-License-Identifier: Apache-2.0
#include "fg/auth/key_store.h"

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "fg/testing/testing.h"

namespace fg::auth {
namespace {

std::unique_ptr<KeyStore> OpenOrDie(const std::filesystem::path& p, KeyStoreOptions o = {}) {
    auto s = KeyStore::Open(p, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
}

TEST(Scopes, ParseAndImply) {
    auto s = ParseScopes("recognize, read");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(*s, (std::set<std::string>{"recognize", "read"}));
    EXPECT_EQ(ParseScopes("read,root").status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ParseScopes("read,root").status().message().find("root"), std::string::npos);
    EXPECT_FALSE(ParseScopes("").ok());
    EXPECT_FALSE(ParseScopes(" , ").ok());
    EXPECT_TRUE(HasScope({"admin"}, "enroll"));
    EXPECT_TRUE(HasScope({"read"}, "read"));
    EXPECT_FALSE(HasScope({"read"}, "enroll"));
}

TEST(KeyStore, CreateAuthenticateRevoke) {
    testing::TmpDir tmp;
    auto store = OpenOrDie(tmp / "keys.db");
    ASSERT_TRUE(store);
    auto k = store->Create("door-1", {"recognize", "read"});
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    EXPECT_EQ(k->secret.rfind("fgk_" + k->info.id + "_", 0), 0u) << k->secret;
    EXPECT_EQ(k->secret.size(), 60u);

    auto who = store->Authenticate(k->secret);
    ASSERT_TRUE(who.ok()) << who.status().ToString();
    EXPECT_EQ(who->id, k->info.id);
    EXPECT_EQ(who->name, "door-1");
    EXPECT_EQ(who->scopes, (std::set<std::string>{"recognize", "read"}));

    // One changed character of the secret, or a malformed token: UNAUTHENTICATED.
    std::string wrong = k->secret;
    wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
    EXPECT_EQ(store->Authenticate(wrong).status().code(), StatusCode::kUnauthenticated);
    for (std::string bad : {std::string(), std::string("fgk_"), std::string("Bearer x"),
                            std::string(60, 'a'), std::string(100000, 'x'),
                            "fgk_zzzzzzzzzzzz_" + std::string(43, 'a')}) {
        auto r = store->Authenticate(bad);
        EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << bad.substr(0, 20);
    }
    // Unknown id of the right shape.
    std::string unknown = k->secret;
    unknown[4] = unknown[4] == '0' ? '1' : '0';
    EXPECT_EQ(store->Authenticate(unknown).status().code(), StatusCode::kUnauthenticated);

    ASSERT_TRUE(store->Revoke(k->info.id).ok());
    auto after = store->Authenticate(k->secret);
    EXPECT_EQ(after.status().code(), StatusCode::kUnauthenticated);  // at once, cache or not
    EXPECT_NE(after.status().message().find("revoked"), std::string::npos);
    EXPECT_TRUE(store->Revoke(k->info.id).ok());  // idempotent
    EXPECT_EQ(store->Revoke("000000000000").code(), StatusCode::kNotFound);

    auto list = store->List();
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_TRUE((*list)[0].revoked());
    EXPECT_TRUE((*list)[0].last_used_at.has_value());
}

TEST(KeyStore, RefusesBadNamesAndScopes) {
    testing::TmpDir tmp;
    auto store = OpenOrDie(tmp / "keys.db");
    ASSERT_TRUE(store);
    EXPECT_EQ(store->Create("", {"read"}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Create(std::string(65, 'n'), {"read"}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Create("a\nb", {"read"}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Create("x", {}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Create("x", {"superuser"}).status().code(), StatusCode::kInvalidArgument);
}

// Only SHA-256 of the secret is stored: the file never holds the secret or its random part.
TEST(KeyStore, StoresOnlyTheHash) {
    testing::TmpDir tmp;
    std::string secret;
    {
        auto store = OpenOrDie(tmp / "keys.db");
        ASSERT_TRUE(store);
        auto k = store->Create("svc", {"admin"});
        ASSERT_TRUE(k.ok());
        secret = k->secret;
    }
    std::string bytes;
    for (const char* f : {"keys.db", "keys.db-wal"}) {
        std::ifstream in(tmp / f, std::ios::binary);
        bytes.append(std::istreambuf_iterator<char>(in), {});
    }
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(bytes.find(secret.substr(17)), std::string::npos);
    EXPECT_EQ(bytes.find(secret.substr(17, 16)), std::string::npos);
    // A reopened store authenticates from the hash.
    auto store = OpenOrDie(tmp / "keys.db");
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->Authenticate(secret).ok());
}

TEST(KeyStore, FilesArePrivateWhateverTheUmask) {
    testing::TmpDir tmp;
    const mode_t old = ::umask(0);
    {
        auto store = OpenOrDie(tmp / "sub" / "keys.db");
        ASSERT_TRUE(store);
        ASSERT_TRUE(store->Create("k", {"read"}).ok());
        for (const char* f : {"keys.db", "keys.db-wal", "keys.db-shm"}) {
            struct stat st {};
            ASSERT_EQ(::stat((tmp / "sub" / f).c_str(), &st), 0) << f;
            EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
        }
    }
    // An existing file made world-readable is set back to 0600 on open.
    ::chmod((tmp / "sub" / "keys.db").c_str(), 0644);
    {
        auto store = OpenOrDie(tmp / "sub" / "keys.db");
        struct stat st {};
        ASSERT_EQ(::stat((tmp / "sub" / "keys.db").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
    }
    ::umask(old);
}

TEST(KeyStore, NotADatabaseIsAClearError) {
    testing::TmpDir tmp;
    {
        std::ofstream f(tmp / "keys.db");
        f << std::string(5000, 'z');
    }
    auto s = KeyStore::Open(tmp / "keys.db");
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.status().message().find("keys.db"), std::string::npos) << s.status().ToString();
    EXPECT_FALSE(KeyStore::Open(tmp.path()).ok());  // a folder
    // Another program's database (a gallery given as --keys) is refused, not written into.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmp / "gallery.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE subjects (id TEXT)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    auto other = KeyStore::Open(tmp / "gallery.db");
    EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(other.status().message().find("subjects"), std::string::npos) << other.status().ToString();
}

// Another process (here: another store on the same file) revokes: the key fails here once the
// cache entry expires (cache_ttl), not later.
TEST(KeyStore, RevocationElsewhereIsSeenWithinTheCacheTtl) {
    testing::TmpDir tmp;
    auto server = OpenOrDie(tmp / "keys.db", {.cache_ttl = std::chrono::milliseconds(200)});
    auto cli = OpenOrDie(tmp / "keys.db");
    ASSERT_TRUE(server && cli);
    auto k = cli->Create("cam", {"events"});
    ASSERT_TRUE(k.ok());
    ASSERT_TRUE(server->Authenticate(k->secret).ok());
    ASSERT_TRUE(cli->Revoke(k->info.id).ok());
    bool failed = false;
    for (int i = 0; i < 100 && !failed; ++i) {  // bounded: 2 s at most
        failed = !server->Authenticate(k->secret).ok();
        if (!failed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(failed);
}

TEST(KeyStore, ConcurrentAuthenticateAndRevoke) {
    testing::TmpDir tmp;
    auto store = OpenOrDie(tmp / "keys.db");
    ASSERT_TRUE(store);
    std::vector<CreatedKey> keys;
    for (int i = 0; i < 4; ++i) {
        auto k = store->Create("k" + std::to_string(i), {"recognize"});
        ASSERT_TRUE(k.ok());
        keys.push_back(*k);
    }
    std::atomic<int> ok{0}, bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 500; ++i) {
                const auto& k = keys[size_t((t + i) % 3)];  // keys 0..2 stay valid
                if (store->Authenticate(k.secret).ok()) {
                    ++ok;
                } else {
                    ++bad;
                }
                (void)store->Authenticate(keys[3].secret);  // being revoked meanwhile
            }
        });
    }
    ASSERT_TRUE(store->Revoke(keys[3].info.id).ok());
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 8 * 500);
    EXPECT_EQ(bad.load(), 0);
    EXPECT_FALSE(store->Authenticate(keys[3].secret).ok());
}

}  // namespace
}  // namespace fg::auth
