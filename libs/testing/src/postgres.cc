// SPDX-License-Identifier: Apache-2.0
#include "fg/testing/postgres.h"

#include <libpq-fe.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace fg::testing {
namespace {

std::filesystem::path PgBinDir() {
    std::error_code ec;
    for (const auto& d : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
        if (std::filesystem::exists(d.path() / "bin" / "pg_ctl")) return d.path() / "bin";
    }
    return {};
}

std::mutex& DbMutex() {
    static std::mutex m;
    return m;
}

}  // namespace

PostgresServer* PostgresServer::Shared() {
    // Destroyed (server stopped) at exit; a failed start is not retried.
    static const std::unique_ptr<PostgresServer> server = [] {
        auto s = std::make_unique<PostgresServer>();
        if (Status st = s->Start(); !st.ok()) {
            std::fprintf(stderr, "postgres: %s\n", st.ToString().c_str());
            return std::unique_ptr<PostgresServer>();
        }
        return s;
    }();
    return server.get();
}

PostgresServer::~PostgresServer() {
    if (!started_) return;
    Thaw();  // after a "hung server" test
    Down();
}

int PostgresServer::Sh(const std::string& cmd) const { return std::system((as_ + cmd).c_str()); }

Status PostgresServer::Start() {
    const auto bin = PgBinDir();
    if (bin.empty()) {
        return Unavailable("PostgreSQL server binaries not found under /usr/lib/postgresql "
                           "(Debian package postgresql)");
    }
    bin_ = bin.string();
    port_ = FreeLoopbackPort();
    const std::string dir = dir_.path().string();
    as_ = geteuid() == 0 ? "runuser -u postgres -- " : "";
    if (geteuid() == 0 && std::system(("chown -R postgres " + dir).c_str()) != 0) {
        return Internal("chown postgres " + dir + " failed");
    }
    if (Sh(bin_ + "/initdb -D " + DataDir() + " -A trust -U fg -E UTF8 > " + dir +
           "/initdb.log 2>&1") != 0) {
        return Internal("initdb failed (see " + dir + "/initdb.log)");
    }
    started_ = true;
    return Up();
}

Status PostgresServer::Up() {
    const std::string dir = dir_.path().string();
    if (Sh(bin_ + "/pg_ctl -D " + DataDir() + " -l " + dir + "/server.log -w -t 60 -o \"-p " +
           std::to_string(port_) + " -k " + dir + " -c listen_addresses=127.0.0.1\" start > " +
           "/dev/null") != 0) {
        return Internal("pg_ctl start failed (see " + dir + "/server.log)");
    }
    return Status();
}

void PostgresServer::Down() {
    Sh(bin_ + "/pg_ctl -D " + DataDir() + " -m fast -w -t 60 stop > /dev/null 2>&1");
}

void PostgresServer::Signal(int sig) const {
    const pid_t root = PostmasterPid();
    if (root <= 0) return;
    kill(root, sig);
    // The backends are the postmaster's children: field 4 of /proc/PID/stat is the parent.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(e.path() / "stat");
        std::string line;
        if (!std::getline(in, line)) continue;
        const size_t close = line.rfind(')');  // the command name may hold spaces
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 1));
        std::string state;
        long ppid = 0;
        if (rest >> state >> ppid && ppid == root) kill(pid_t(std::stol(name)), sig);
    }
}

pid_t PostgresServer::PostmasterPid() const {
    std::ifstream in(DataDir() + "/postmaster.pid");
    long pid = -1;
    if (!(in >> pid)) return -1;
    return static_cast<pid_t>(pid);
}

std::string PostgresServer::Url(const std::string& db) const {
    return "postgresql://fg@127.0.0.1:" + std::to_string(port_) + "/" + db + "?connect_timeout=5";
}

bool PostgresServer::Exec(const std::string& sql) const {
    PGconn* c = PQconnectdb(Url("postgres").c_str());
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult* r = PQexec(c, sql.c_str());
        const auto st = PQresultStatus(r);
        ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        PQclear(r);
    }
    if (!ok) std::fprintf(stderr, "postgres: %s: %s", sql.c_str(), PQerrorMessage(c));
    PQfinish(c);
    return ok;
}

std::string PostgresServer::NewDatabase() {
    static std::atomic<int> n{0};
    std::lock_guard lock(DbMutex());
    const std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(n++);
    return Exec("CREATE DATABASE " + name) ? Url(name) : "";
}

}  // namespace fg::testing
