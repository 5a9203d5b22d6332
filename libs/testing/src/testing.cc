// SPDX-License-Identifier: Apache-2.0
#include "fg/testing/testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

#include "fg/base/paths.h"

namespace fg::testing {

std::filesystem::path ModelPath(const std::string& name, bool shared) {
    return shared ? SharedDir() / "models" / name : ModelsDir() / name;
}

TmpDir::TmpDir() {
    std::random_device rd;
    auto base = std::filesystem::temp_directory_path();
    for (;;) {
        path_ = base / ("fg-test-" + std::to_string(rd()));
        if (std::filesystem::create_directory(path_)) break;
    }
}

TmpDir::~TmpDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string MissingDataMessage(const std::filesystem::path& path) {
    return "test input missing: " + path.string() +
           " (run scripts/setup to install models; set FG_SHARED_DIR to the shared data folder)";
}

int FreeLoopbackPort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

}  // namespace fg::testing
