// SPDX-License-Identifier: Apache-2.0
// Only the types of fg/server/http.h are used (no out-of-line member of fg::server), so this
// links with or without the server library.
#include "fg/auth/http_auth.h"

#include <strings.h>

namespace fg::auth {

namespace {

/// The value of header `name` (case-insensitive); nullopt when absent. Request::Header would
/// do, but it lives in the server library.
std::optional<std::string_view> FindHeader(const server::Request& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
        if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
    }
    return std::nullopt;
}

std::string_view Trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

Result<std::string> KeyFromRequest(const server::Request& request) {
    std::string bearer, api_key;
    if (auto auth = FindHeader(request, "Authorization")) {
        const std::string_view v = Trim(*auth);
        constexpr std::string_view kBearer = "bearer ";
        if (v.size() <= kBearer.size() || ::strncasecmp(v.data(), kBearer.data(), kBearer.size()) != 0) {
            return Unauthenticated("Authorization must be 'Bearer <API key>'");
        }
        bearer = std::string(Trim(v.substr(kBearer.size())));
    }
    if (auto h = FindHeader(request, "X-API-Key")) api_key = std::string(Trim(*h));
    if (!bearer.empty() && !api_key.empty() && bearer != api_key) {
        return Unauthenticated("Authorization and X-API-Key carry different keys");
    }
    return bearer.empty() ? api_key : bearer;
}

std::string SessionKeyFromCookies(const server::Request& request) {
    // Cookie: a=b; fg_session=KEY; c=d  (several Cookie headers are allowed too)
    for (const auto& [k, v] : request.headers) {
        if (k.size() != 6 || ::strncasecmp(k.data(), "cookie", 6) != 0) continue;
        std::string_view rest = v;
        while (!rest.empty()) {
            const std::size_t semi = rest.find(';');
            std::string_view pair = Trim(rest.substr(0, semi));
            rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
            const std::size_t eq = pair.find('=');
            if (eq == std::string_view::npos || Trim(pair.substr(0, eq)) != kSessionCookie) continue;
            std::string_view value = Trim(pair.substr(eq + 1));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
            return std::string(value);
        }
    }
    return "";
}

Result<std::string> KeyFromRequestOrCookie(const server::Request& request) {
    FG_ASSIGN_OR_RETURN(std::string key, KeyFromRequest(request));
    if (!key.empty()) return key;
    key = SessionKeyFromCookies(request);
    if (key.empty()) return key;
    const std::string_view m = request.method;
    const bool safe = m == "GET" || m == "HEAD" || m == "OPTIONS";
    if (!safe) {
        const auto h = FindHeader(request, kCsrfHeader);
        if (!h || Trim(*h) != kCsrfValue) {
            return PermissionDenied("a request authenticated by the session cookie must send 'X-Requested-With: "
                                    "facegate-console' (CSRF protection)");
        }
    }
    return key;
}

server::Authenticator MakeAuthenticator(std::shared_ptr<KeyStore> store) {
    return [store = std::move(store)](const server::Request& request) -> Result<server::Principal> {
        FG_ASSIGN_OR_RETURN(const std::string key, KeyFromRequestOrCookie(request));
        if (key.empty()) return server::Principal{};  // anonymous: public routes only
        FG_ASSIGN_OR_RETURN(const KeyInfo info, store->Authenticate(key));
        return server::Principal{.key_id = info.id, .name = info.name, .scopes = info.scopes};
    };
}

}  // namespace fg::auth
