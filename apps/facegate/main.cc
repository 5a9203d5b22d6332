// SPDX-License-Identifier: Apache-2.0
// facegate: the command-line front end of libfacegate.
#include <iostream>

#include "common.h"
#include "fg/base/log.h"

int main(int argc, char** argv) {
    CLI::App app{"facegate: real-time face recognition engine", "facegate"};
    app.set_version_flag("--version", "facegate 0.1.0");
    app.require_subcommand(1);
    std::string log_level = "warn";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
        ->capture_default_str();

    fg::cli::Action action;
    fg::cli::RegisterImageCommands(app, action);
    fg::cli::RegisterModelsCommands(app, action);
    fg::cli::RegisterEvalCommands(app, action);
    fg::cli::RegisterOpenSetCommand(app, action);    // after eval: adds `eval openset`
    fg::cli::RegisterDemoCommand(app, action);
    fg::cli::RegisterBenchCommands(app, action);
    fg::cli::RegisterGalleryCommands(app, action);   // after bench: adds `bench gallery`
    fg::cli::RegisterStreamCommands(app, action);    // after bench: adds `bench stream`
    fg::cli::RegisterLivenessCommands(app, action);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : fg::cli::kExitUsage;
    }
    fg::SetLogLevel(log_level);
    if (!action) return fg::cli::kExitUsage;
    try {
        return action();
    } catch (const std::exception& e) {
        // Libraries return Status; this is the last line of defence against a third-party throw.
        std::cerr << "error: internal: " << e.what() << "\n";
        return fg::cli::kExitError;
    }
}
