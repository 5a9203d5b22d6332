// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for what the server does with untrusted bytes before a handler runs:
// Beast's parser with the server's limits, target checks, percent-decoding, the query string,
// then routing with path parameters. Build and run with scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fg/server/http.h"
#include "parse.h"

namespace {
const fg::server::Router& TestRouter() {
    static const fg::server::Router router = [] {
        fg::server::Router r;
        auto ok = [](fg::server::Request&) { return fg::server::Response{}; };
        r.Add("GET", "/v1/subjects/{id}", {.scope = "read"}, ok);
        r.Add("GET", "/v1/subjects/{id}/faces/{face}", {.scope = "read"}, ok);
        r.Add("POST", "/v1/identify", {.scope = "recognize", .compute = true}, ok);
        r.Add("GET", "/v1/streams/state", {}, ok);
        return r;
    }();
    return router;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto request = fg::server::detail::ParseRequestBytes(bytes, 16 * 1024, 64 * 1024);
    if (!request.ok()) return 0;
    auto match = TestRouter().Find(request->method, request->path);
    if (match.handler) request->params = std::move(match.params);
    (void)request->Header("authorization");
    (void)TestRouter().AllowedMethods(request->path);
    return 0;
}
