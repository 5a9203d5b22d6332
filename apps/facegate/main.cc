// SPDX-License-Identifier: Apache-2.0
// facegate: the command-line front end of libfacegate.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "common.h"
#include "fg/base/log.h"

namespace {

/// Two settings that only take effect when a process starts, so the binary sets them and
/// starts itself again, once (the new process finds them set and goes on; a user's own
/// values are kept; if exec fails we carry on without them):
///  - OMP_WAIT_POLICY=passive: oneDNN's OpenMP threads spin at every barrier by default (GNU
///    OpenMP), and with 2 threads on a busy machine one frame took 2.9 s instead of 28 ms
///    (BENCHMARKS.md, "Inference backends"). libgomp reads it before main.
///  - GLIBC_TUNABLES=glibc.malloc.hugetlb=1: large buffers (a 1M-template index is 2 GB) get
///    transparent huge pages. On VMs a 4 KiB page fault is expensive: opening a 1M gallery
///    took 29-45 s with 4 KiB pages and 2-4 s with huge pages, bulk enrollment went from
///    15k to 28k templates/s (BENCHMARKS.md, "Gallery"). glibc reads it before main.
void ReexecWithRuntimeDefaults(char** argv) {
    bool changed = false;
    if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
        if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
        changed = true;
    }
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (tunables == nullptr || std::strstr(tunables, "glibc.malloc.hugetlb") == nullptr) {
        std::string t = tunables && *tunables ? std::string(tunables) + ":" : std::string();
        t += "glibc.malloc.hugetlb=1";
        if (setenv("GLIBC_TUNABLES", t.c_str(), 1) != 0) return;
        changed = true;
    }
    // No loop is possible: the exec'ed process finds both set and returns above.
    if (changed) execv("/proc/self/exe", argv);
    // Still here: exec failed (no /proc?); the runtime started with its defaults.
}

}   // namespace

int main(int argc, char** argv) {
    // A reader that goes away (`facegate run | head -1`, a webhook receiver closing a kept-alive
    // socket, an SSE client) must cost a failed write (EPIPE), never the process.
    std::signal(SIGPIPE, SIG_IGN);
    ReexecWithRuntimeDefaults(argv);
    CLI::App app{"facegate: real-time face recognition engine", "facegate"};
    app.set_version_flag("--version", "facegate 0.1.0");
    app.require_subcommand(1);
    std::string log_level = "warn";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
        ->capture_default_str();

    fg::cli::Action action;
    // Any order: commands reach their group (`eval`, `bench`) through SubcommandOf.
    fg::cli::RegisterImageCommands(app, action);
    fg::cli::RegisterModelsCommands(app, action);
    fg::cli::RegisterEvalCommands(app, action);
    fg::cli::RegisterOpenSetCommand(app, action);
    fg::cli::RegisterDemoCommand(app, action);
    fg::cli::RegisterBenchCommands(app, action);
    fg::cli::RegisterGalleryCommands(app, action);
    fg::cli::RegisterBenchGalleryCommand(app, action);
    fg::cli::RegisterStreamCommands(app, action);
    fg::cli::RegisterLivenessCommands(app, action);
    fg::cli::RegisterKeysCommands(app, action);
    fg::cli::RegisterAuditCommands(app, action);
    fg::cli::RegisterServeCommands(app, action);
    fg::cli::RegisterHistoryCommands(app, action);
    fg::cli::RegisterEdgeCommands(app, action);
    fg::cli::RegisterWorkerCommands(app, action);
    fg::cli::RegisterClusterCommands(app, action);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : fg::cli::kExitUsage;
    }
    fg::SetLogLevel(log_level);
    const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    spdlog::debug("OMP_WAIT_POLICY={} GLIBC_TUNABLES={}", wait_policy ? wait_policy : "(unset)",
                  tunables ? tunables : "(unset)");
    if (!action) return fg::cli::kExitUsage;
    try {
        return action();
    } catch (const std::exception& e) {
        // Libraries return Status; this is the last line of defence against a third-party throw.
        std::cerr << "error: internal: " << e.what() << "\n";
        return fg::cli::kExitError;
    }
}
