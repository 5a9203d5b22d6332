// SPDX-License-Identifier: Apache-2.0
// Serves a trivial JSON route for load tests of the server alone (libs/server/README.md):
//   fg_server_hello PORT SECONDS [IO_THREADS]   then: wrk -t1 -c64 -d10s --latency http://127.0.0.1:PORT/hello
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "fg/server/http.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: fg_server_hello PORT SECONDS [IO_THREADS]\n");
        return 2;
    }
    fg::server::ServerConfig config;
    config.port = std::atoi(argv[1]);
    if (argc > 3) config.io_threads = std::atoi(argv[3]);
    fg::server::Router router;
    router.Add("GET", "/hello", {}, [](fg::server::Request&) {
        return fg::server::Response::Json(200, {{"hello", "world"}});
    });
    auto server = fg::server::Server::Create(config, std::move(router));
    if (!server.ok()) {
        std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
        return 1;
    }
    if (auto s = (*server)->Start(); !s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(std::atoi(argv[2])));
    (*server)->Stop();
    return 0;
}
