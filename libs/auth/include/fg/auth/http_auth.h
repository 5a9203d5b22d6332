// SPDX-License-Identifier: Apache-2.0
// The server's Authenticator over a KeyStore: reads `Authorization: Bearer <key>`,
// `X-API-Key: <key>` or, for the console (EventSource and <img> cannot send headers), the
// `fg_session=<key>` cookie set by POST /v1/session. No key: the anonymous principal (public
// routes only; the server answers 401 on a route that needs a scope). A wrong, malformed or
// revoked key: UNAUTHENTICATED.
//
// CSRF: a browser attaches the cookie to any request to our host, including one a hostile page
// makes. The cookie is SameSite=Strict, but "site" ignores the port, so another service on the
// same host name (localhost:3000) is same-site. So a state-changing request (not GET/HEAD/
// OPTIONS) authenticated by the cookie alone must also carry `X-Requested-With:
// facegate-console`: a page of another origin cannot add a custom header without a CORS
// preflight, which the server only grants to configured origins. Headers-authenticated requests
// (curl, scripts) need nothing extra: no browser adds those headers on its own.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "fg/auth/key_store.h"
#include "fg/server/http.h"

namespace fg::auth {

/// The key carried by a request: the Bearer token or the X-API-Key header ("" = none). Both
/// present and different is an error (which one was meant is ambiguous).
Result<std::string> KeyFromRequest(const server::Request& request);

inline constexpr std::string_view kSessionCookie = "fg_session";
inline constexpr std::string_view kCsrfHeader = "X-Requested-With";
inline constexpr std::string_view kCsrfValue = "facegate-console";

/// The value of cookie `fg_session` in the request's Cookie header(s) ("" = none).
std::string SessionKeyFromCookies(const server::Request& request);

/// The key to authenticate with: the headers' key (KeyFromRequest) when there is one, else the
/// session cookie's. A state-changing request authenticated by the cookie alone without the CSRF
/// header is PERMISSION_DENIED (403) whatever the key.
Result<std::string> KeyFromRequestOrCookie(const server::Request& request);

/// Thread-safe (the store is). The store must outlive the returned function's last call; it is
/// held by shared_ptr so it does.
server::Authenticator MakeAuthenticator(std::shared_ptr<KeyStore> store);

}  // namespace fg::auth
