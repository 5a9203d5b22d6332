// SPDX-License-Identifier: Apache-2.0
// The operator console (docs/console.md): the console/ files compiled into the binary, served
// at /console/ without a key, and the browser session (/v1/session) whose HttpOnly cookie lets
// EventSource and <img> (which cannot send headers) call the API with the key logged in.
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "console_files.h"
#include "http_util.h"
#include "routes.h"

namespace fg::api {
namespace {

using nlohmann::json;
using server::Request;
using server::Response;

constexpr std::string_view kSessionCookie = "fg_session";  // = fg::auth::kSessionCookie (read there)

// Scripts and styles only from the console itself (no inline script, no eval), images from the
// API (MJPEG, crops) and blob: (photo previews), no framing (clickjacking), no plugins.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

void SecurityHeaders(Response& r) {
    r.headers.emplace_back("Content-Security-Policy", kCsp);
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("X-Frame-Options", "DENY");
}

const EmbeddedFile* FindFile(std::string_view name) {
    for (std::size_t i = 0; i < kConsoleFileCount; ++i) {
        if (name == kConsoleFiles[i].name) return &kConsoleFiles[i];
    }
    return nullptr;
}

/// A strong validator from the bytes (FNV-1a 64): the files change only with the binary.
std::string Etag(const EmbeddedFile& f) {
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < f.size; ++i) h = (h ^ f.data[i]) * 1099511628211ull;
    char buf[24];
    std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
    return buf;
}

Response ServeFile(const Request& r, std::string_view name) {
    const EmbeddedFile* f = FindFile(name);
    if (!f) Throw(404, "not_found", "no console file '" + std::string(name) + "'");
    const std::string etag = Etag(*f);
    Response resp;
    resp.content_type = f->content_type;
    // Revalidate every time (cheap: 304 with no body): a new binary must never mix with stale
    // cached scripts.
    resp.headers.emplace_back("Cache-Control", "no-cache");
    resp.headers.emplace_back("ETag", etag);
    SecurityHeaders(resp);
    if (r.Header("If-None-Match") == etag) {
        resp.status = 304;
        return resp;
    }
    resp.body.assign(reinterpret_cast<const char*>(f->data), f->size);
    return resp;
}

std::string SessionCookie(const ApiContext& ctx, const std::string& value, bool clear) {
    std::string c = std::string(kSessionCookie) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict";
    if (clear) c += "; Max-Age=0";
    if (ctx.secure_cookies) c += "; Secure";
    return c;
}

json PrincipalJson(const server::Principal& p) {
    return {{"key_id", p.key_id}, {"name", p.name}, {"scopes", p.scopes}};
}

Response CreateSession(ApiContext& ctx, Request& r) {
    if (!ctx.authenticate) Throw(409, "no_auth", "the service runs without API keys");
    const json body = JsonBody(r);
    if (!body.is_object() || !body.contains("key") || !body["key"].is_string() || body["key"].get<std::string>().empty()) {
        Throw(400, "bad_request", "body must be {\"key\": \"<API key>\"}", "key");
    }
    const std::string key = body["key"];
    // The cookie value travels in a header: refuse what would break it (the key format is
    // fgk_<hex>_<base64url>, so a valid key never has these).
    if (key.size() > 256 || key.find_first_of(";, \t\r\n\"") != std::string::npos) {
        Throw(401, "unauthorized", "invalid API key", "key");
    }
    Request probe;
    probe.method = "GET";
    probe.path = "/v1/session";
    probe.headers.emplace_back("X-API-Key", key);
    Result<server::Principal> who = ctx.authenticate(probe);
    if (!who.ok() || who->key_id.empty()) {
        if (who.ok() || who.status().code() == StatusCode::kUnauthenticated) {
            if (ctx.audit) ctx.audit(server::Principal{}, "session_create", "", "unauthorized");
            Throw(401, "unauthorized", "invalid API key", "key");
        }
        ThrowStatus(who.status());
    }
    if (ctx.audit) ctx.audit(*who, "session_create", who->key_id, "ok");
    Response resp = Response::Json(200, PrincipalJson(*who));
    resp.headers.emplace_back("Set-Cookie", SessionCookie(ctx, key, false));
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
}

}  // namespace

void AddConsoleRoutes(server::Router& router, ApiContext& ctx) {
    // Public routes: the handler decides (a cookie of a revoked key reaches it anonymously).
    router.Add("POST", "/v1/session", {}, Guard([&ctx](Request& r) { return CreateSession(ctx, r); }));
    router.Add("GET", "/v1/session", {}, Guard([](Request& r) {
                   if (r.principal.key_id.empty()) Throw(401, "unauthorized", "no session: log in with an API key");
                   Response resp = Response::Json(200, PrincipalJson(r.principal));
                   resp.headers.emplace_back("Cache-Control", "no-store");
                   return resp;
               }));
    router.Add("DELETE", "/v1/session", {}, Guard([&ctx](Request& r) {
                   if (ctx.audit && !r.principal.key_id.empty()) {
                       ctx.audit(r.principal, "session_delete", r.principal.key_id, "ok");
                   }
                   Response resp;
                   resp.status = 204;
                   resp.content_type.clear();
                   resp.headers.emplace_back("Set-Cookie", SessionCookie(ctx, "", true));
                   return resp;
               }));
    router.Add("GET", "/console", {}, Guard([](Request&) {
                   Response resp;
                   resp.status = 301;
                   resp.content_type = "text/plain; charset=utf-8";
                   resp.headers.emplace_back("Location", "/console/");
                   resp.body = "moved to /console/\n";
                   return resp;
               }));
    router.Add("GET", "/console/", {}, Guard([](Request& r) { return ServeFile(r, "index.html"); }));
    router.Add("GET", "/console/{file}", {}, Guard([](Request& r) { return ServeFile(r, r.params.at("file")); }));
}

}  // namespace fg::api
