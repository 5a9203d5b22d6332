// SPDX-License-Identifier: Apache-2.0
#include "fg/auth/http_auth.h"

#include <gtest/gtest.h>

#include "fg/testing/testing.h"

namespace fg::auth {
namespace {

server::Request WithHeaders(std::vector<std::pair<std::string, std::string>> headers) {
    server::Request r;
    r.method = "GET";
    r.path = "/v1/subjects";
    r.headers = std::move(headers);
    return r;
}

TEST(HttpAuth, BearerApiKeyAnonymousAndWrong) {
    testing::TmpDir tmp;
    auto opened = KeyStore::Open(tmp / "keys.db");
    ASSERT_TRUE(opened.ok());
    std::shared_ptr<KeyStore> store = std::move(*opened);
    auto k = store->Create("door", {"recognize"});
    ASSERT_TRUE(k.ok());
    auto auth = MakeAuthenticator(store);

    auto anon = auth(WithHeaders({}));
    ASSERT_TRUE(anon.ok());
    EXPECT_TRUE(anon->key_id.empty());
    EXPECT_TRUE(anon->scopes.empty());

    auto bearer = auth(WithHeaders({{"authorization", "Bearer " + k->secret}}));
    ASSERT_TRUE(bearer.ok()) << bearer.status().ToString();
    EXPECT_EQ(bearer->key_id, k->info.id);
    EXPECT_EQ(bearer->name, "door");
    EXPECT_EQ(bearer->scopes, std::set<std::string>{"recognize"});

    auto header = auth(WithHeaders({{"X-API-KEY", k->secret}}));
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header->key_id, k->info.id);
    // Both, the same key: fine. Both, different: refused.
    EXPECT_TRUE(auth(WithHeaders({{"Authorization", "bearer " + k->secret}, {"X-Api-Key", k->secret}})).ok());
    EXPECT_EQ(auth(WithHeaders({{"Authorization", "Bearer " + k->secret}, {"X-Api-Key", "other"}})).status().code(),
              StatusCode::kUnauthenticated);

    for (auto h : std::vector<std::pair<std::string, std::string>>{
             {"Authorization", "Basic dXNlcjpwYXNz"},
             {"Authorization", "Bearer"},
             {"Authorization", "Bearer fgk_000000000000_" + std::string(43, 'A')},
             {"X-API-Key", "nonsense"}}) {
        auto r = auth(WithHeaders({h}));
        EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << h.first << ": " << h.second;
        if (h.second.size() > 8) {
            EXPECT_EQ(r.status().message().find(h.second), std::string::npos) << "never echoes the key";
        }
    }

    ASSERT_TRUE(store->Revoke(k->info.id).ok());
    EXPECT_EQ(auth(WithHeaders({{"X-API-Key", k->secret}})).status().code(), StatusCode::kUnauthenticated);
}

TEST(HttpAuth, SessionCookieAndCsrfHeader) {
    testing::TmpDir tmp;
    auto opened = KeyStore::Open(tmp / "keys.db");
    ASSERT_TRUE(opened.ok());
    std::shared_ptr<KeyStore> store = std::move(*opened);
    auto k = store->Create("console", {"read", "enroll"});
    ASSERT_TRUE(k.ok());
    auto other = store->Create("script", {"read"});
    ASSERT_TRUE(other.ok());
    auto auth = MakeAuthenticator(store);

    // GET with the cookie among others (and quoted): authenticated.
    auto get = auth(WithHeaders({{"Cookie", "theme=dark; fg_session=" + k->secret + "; x=1"}}));
    ASSERT_TRUE(get.ok()) << get.status().ToString();
    EXPECT_EQ(get->key_id, k->info.id);
    EXPECT_TRUE(auth(WithHeaders({{"cookie", "fg_session=\"" + k->secret + "\""}})).ok());
    EXPECT_EQ(SessionKeyFromCookies(WithHeaders({{"Cookie", "a=b"}, {"Cookie", "fg_session=zz"}})), "zz");
    EXPECT_EQ(SessionKeyFromCookies(WithHeaders({{"Cookie", "xfg_session=zz; fg_session_2=y"}})), "");

    // A state-changing request by cookie alone needs the CSRF header.
    auto post = WithHeaders({{"Cookie", "fg_session=" + k->secret}});
    post.method = "POST";
    EXPECT_EQ(auth(post).status().code(), StatusCode::kPermissionDenied);
    post.headers.emplace_back("X-Requested-With", "XMLHttpRequest");
    EXPECT_EQ(auth(post).status().code(), StatusCode::kPermissionDenied) << "only our value";
    post.headers.back().second = "facegate-console";
    ASSERT_TRUE(auth(post).ok());
    EXPECT_EQ(auth(post)->key_id, k->info.id);
    auto del = WithHeaders({{"Cookie", "fg_session=" + k->secret}});
    del.method = "DELETE";
    EXPECT_EQ(auth(del).status().code(), StatusCode::kPermissionDenied);

    // A key in the headers wins over the cookie and needs no CSRF header (no browser adds it).
    auto both = WithHeaders({{"Cookie", "fg_session=" + k->secret}, {"X-API-Key", other->secret}});
    both.method = "PATCH";
    ASSERT_TRUE(auth(both).ok());
    EXPECT_EQ(auth(both)->key_id, other->info.id);

    // A bad cookie is a bad key; a revoked one too.
    EXPECT_EQ(auth(WithHeaders({{"Cookie", "fg_session=nonsense"}})).status().code(), StatusCode::kUnauthenticated);
    ASSERT_TRUE(store->Revoke(k->info.id).ok());
    EXPECT_EQ(auth(WithHeaders({{"Cookie", "fg_session=" + k->secret}})).status().code(),
              StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace fg::auth
