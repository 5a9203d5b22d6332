// SPDX-License-Identifier: Apache-2.0
// The server's Authenticator over a KeyStore: reads `Authorization: Bearer <key>` or
// `X-API-Key: <key>`. No key: the anonymous principal (public routes only; the server answers
// 401 on a route that needs a scope). A wrong, malformed or revoked key: UNAUTHENTICATED.
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

/// Thread-safe (the store is). The store must outlive the returned function's last call; it is
/// held by shared_ptr so it does.
server::Authenticator MakeAuthenticator(std::shared_ptr<KeyStore> store);

}  // namespace fg::auth
