// SPDX-License-Identifier: Apache-2.0
// A throw-away PostgreSQL server for tests: initdb into a temporary directory, pg_ctl start on a
// free loopback port (as the "postgres" user when running as root, since initdb refuses root),
// a fresh database per test, stopped and removed by the destructor. Every wait is bounded.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>

#include <gtest/gtest.h>

#include "fg/base/paths.h"
#include "fg/base/status.h"
#include "fg/testing/testing.h"

namespace fg::testing {

/// Thread-safety: not thread-safe except NewDatabase()/Url() (serialised internally); tests drive
/// one server from the main thread.
class PostgresServer {
  public:
    PostgresServer() = default;
    ~PostgresServer();  ///< Resumes a stopped postmaster (SIGCONT), stops the server, removes it.
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

    /// One server per test process, started on first use and stopped at exit; nullptr when it
    /// cannot start (the reason went to stderr once). Use with FG_REQUIRE_POSTGRES().
    static PostgresServer* Shared();

    /// initdb + start (user "fg", trust authentication on 127.0.0.1 only). Unavailable when
    /// the server binaries are missing (Debian package postgresql), Internal on other failures.
    Status Start();
    /// Starts the stopped server again (same data, same port); waits at most 60 s.
    Status Up();
    /// Stops the server (fast shutdown: sessions are terminated); waits at most 60 s.
    void Down();

    /// Process id of the postmaster, or -1.
    pid_t PostmasterPid() const;
    /// A hung server: SIGSTOP to the postmaster and every backend (open connections stop
    /// answering too, new ones are accepted by the kernel but never served). Thaw() (SIGCONT)
    /// undoes it; the destructor thaws before stopping.
    void Freeze() { Signal(SIGSTOP); }
    void Thaw() { Signal(SIGCONT); }
    int port() const { return port_; }
    /// libpq URL of database `db` ("postgres" always exists), with a 5 s connect timeout.
    std::string Url(const std::string& db) const;
    /// Creates a fresh, empty database and returns its URL ("" on failure, logged to stderr), so
    /// tests do not see each other's rows.
    std::string NewDatabase();
    /// Runs one SQL command in database "postgres" (e.g. pg_terminate_backend); false + stderr
    /// message on failure.
    bool Exec(const std::string& sql) const;

  private:
    int Sh(const std::string& cmd) const;
    void Signal(int sig) const;
    std::string DataDir() const { return (dir_.path() / "data").string(); }

    TmpDir dir_;
    std::string bin_, as_;
    int port_ = 0;
    bool started_ = false;
};

}  // namespace fg::testing

/// Skips the test (fails it under CI=true) when the shared PostgreSQL server cannot start.
#define FG_REQUIRE_POSTGRES()                                                     \
    do {                                                                          \
        if (::fg::testing::PostgresServer::Shared() == nullptr) {                 \
            if (::fg::InCi()) FAIL() << "cannot start PostgreSQL (see stderr)";   \
            GTEST_SKIP() << "cannot start PostgreSQL (see stderr)";               \
        }                                                                         \
    } while (0)
