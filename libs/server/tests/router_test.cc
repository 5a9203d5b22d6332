// SPDX-License-Identifier: Apache-2.0
// Router, request parsing (the fuzzed entry point), value types and config checks: no sockets.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../src/parse.h"
#include "fg/server/http.h"

namespace fg::server {
namespace {

Handler Named(std::string name) {
    return [name](Request&) { return Response::Json(200, {{"route", name}}); };
}

TEST(RouterTest, MatchesLiteralsAndParams) {
    Router router;
    router.Add("GET", "/v1/subjects", {.scope = "read"}, Named("list"));
    router.Add("GET", "/v1/subjects/{id}", {.scope = "read"}, Named("get"));
    router.Add("DELETE", "/v1/subjects/{id}", {.scope = "admin"}, Named("delete"));
    router.Add("GET", "/v1/subjects/{id}/faces/{face}", {}, Named("face"));

    auto m = router.Find("GET", "/v1/subjects/alice");
    ASSERT_NE(m.handler, nullptr);
    EXPECT_EQ(m.pattern, "/v1/subjects/{id}");
    EXPECT_EQ(m.params.at("id"), "alice");
    EXPECT_EQ(m.options->scope, "read");

    m = router.Find("GET", "/v1/subjects/a/faces/7");
    ASSERT_NE(m.handler, nullptr);
    EXPECT_EQ(m.params.at("id"), "a");
    EXPECT_EQ(m.params.at("face"), "7");

    m = router.Find("POST", "/v1/subjects/alice");
    EXPECT_EQ(m.handler, nullptr);
    EXPECT_TRUE(m.path_known);
    EXPECT_EQ(router.AllowedMethods("/v1/subjects/alice"), (std::vector<std::string>{"DELETE", "GET"}));

    m = router.Find("GET", "/v1/nothing");
    EXPECT_EQ(m.handler, nullptr);
    EXPECT_FALSE(m.path_known);
    EXPECT_FALSE(router.Find("GET", "/v1/subjects/").handler);  // empty parameter
    EXPECT_FALSE(router.Find("GET", "/v1/subjects/a/").handler);
    EXPECT_EQ(router.Routes().size(), 4u);
}

TEST(RouterTest, LiteralBeatsParameterWhateverTheOrder) {
    Router router;
    router.Add("GET", "/v1/streams/{id}", {}, Named("one"));
    router.Add("GET", "/v1/streams/state", {}, Named("state"));
    EXPECT_EQ(router.Find("GET", "/v1/streams/state").pattern, "/v1/streams/state");
    EXPECT_EQ(router.Find("GET", "/v1/streams/door").pattern, "/v1/streams/{id}");
}

TEST(PrincipalTest, AdminHasEveryScope) {
    Principal p{.key_id = "k", .name = "n", .scopes = {"read"}};
    EXPECT_TRUE(p.Has("read"));
    EXPECT_FALSE(p.Has("enroll"));
    p.scopes = {"admin"};
    EXPECT_TRUE(p.Has("enroll"));
}

TEST(ResponseTest, ErrorShape) {
    auto r = Response::Error(400, "invalid_json", "bad", "body.image");
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(j["error"]["code"], "invalid_json");
    EXPECT_EQ(j["error"]["field"], "body.image");
    EXPECT_FALSE(nlohmann::json::parse(Response::Error(404, "not_found", "x").body)["error"].contains("field"));
    // Invalid UTF-8 from user input does not throw.
    EXPECT_EQ(Response::Json(200, {{"x", std::string("\xff\xfe")}}).status, 200);
}

TEST(ParseTest, DecodesPathAndQuery) {
    auto r = detail::ParseRequestBytes(
        "GET /v1/subjects/a%20b?limit=10&q=x+y&e=%41%42&flag&limit=20 HTTP/1.1\r\nHost: h\r\nX-Api-Key: k\r\n\r\n",
        16384, 1024);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->method, "GET");
    EXPECT_EQ(r->path, "/v1/subjects/a b");
    EXPECT_EQ(r->query.at("limit"), "20");  // last one wins
    EXPECT_EQ(r->query.at("q"), "x y");
    EXPECT_EQ(r->query.at("e"), "AB");
    EXPECT_EQ(r->query.at("flag"), "");
    EXPECT_EQ(r->Header("x-api-key"), "k");
    EXPECT_EQ(r->Header("missing"), "");
}

TEST(ParseTest, ReadsBody) {
    auto r = detail::ParseRequestBytes("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 16384, 1024);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->body, "hello");
    auto chunked = detail::ParseRequestBytes(
        "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 16384, 1024);
    ASSERT_TRUE(chunked.ok());
    EXPECT_EQ(chunked->body, "abcde");
}

TEST(ParseTest, RejectsBadInput) {
    for (const char* bad : {"GET /a%zz HTTP/1.1\r\n\r\n", "GET /a%2 HTTP/1.1\r\n\r\n", "GET /a%00b HTTP/1.1\r\n\r\n",
                            "GET http://x/a HTTP/1.1\r\n\r\n", "GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                            "GET /?q=%G1 HTTP/1.1\r\n\r\n",
                            "POST /x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"}) {
        EXPECT_FALSE(detail::ParseRequestBytes(bad, 16384, 1024).ok()) << bad;
    }
    EXPECT_FALSE(detail::ParseRequestBytes("GET / HTTP/1.1\r\nHost", 16384, 1024).ok());  // incomplete
    EXPECT_FALSE(detail::ParseRequestBytes("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n", 16384, 1024).ok());
    EXPECT_TRUE(detail::ParseRequestBytes("OPTIONS * HTTP/1.1\r\n\r\n", 16384, 1024).ok());
}

TEST(ConfigTest, Validate) {
    EXPECT_TRUE(ServerConfig{}.Validate().ok());
    EXPECT_FALSE(ServerConfig{.listen_address = "localhost:80"}.Validate().ok());
    EXPECT_FALSE(ServerConfig{.port = 70000}.Validate().ok());
    EXPECT_FALSE(ServerConfig{.io_threads = 0}.Validate().ok());
    EXPECT_FALSE(ServerConfig{.max_header_bytes = 10}.Validate().ok());
    EXPECT_FALSE(ServerConfig{.header_timeout = std::chrono::milliseconds(0)}.Validate().ok());
    EXPECT_FALSE(ServerConfig{.rate_limit_per_key = -1}.Validate().ok());
    EXPECT_FALSE(ServerConfig{.tls = TlsConfig{.cert_file = "c"}}.Validate().ok());
    auto bad = Server::Create(ServerConfig{.io_threads = 0}, Router{});
    EXPECT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("io_threads"), std::string::npos);
}

}  // namespace
}  // namespace fg::server
