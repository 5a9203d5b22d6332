// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for the session cookie parser and the key/CSRF decision of the server's
// authenticator (http_auth.cc): any Cookie / X-Requested-With header bytes, GET or POST. Must
// never crash, hang or read out of bounds; the key found is always a substring of the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fg/auth/http_auth.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
    fg::server::Request r;
    r.method = (data[0] & 1) ? "POST" : "GET";
    // Byte 0 bit 1: split the rest into a second Cookie header at the first newline.
    const std::size_t nl = input.find('\n');
    if ((data[0] & 2) && nl != std::string::npos) {
        r.headers.emplace_back("Cookie", input.substr(0, nl));
        r.headers.emplace_back("cookie", input.substr(nl + 1));
    } else {
        r.headers.emplace_back("Cookie", input);
    }
    if (data[0] & 4) r.headers.emplace_back("X-Requested-With", "facegate-console");
    const std::string key = fg::auth::SessionKeyFromCookies(r);
    if (!key.empty() && input.find(key) == std::string::npos) std::abort();
    (void)fg::auth::KeyFromRequestOrCookie(r);
    return 0;
}
