// SPDX-License-Identifier: Apache-2.0
// Private to the commands that write or read the audit log (cmd_audit.cc, cmd_keys.cc): where
// the log is, how its key is found, and who "I" am.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common.h"
#include "fg/audit/audit_log.h"

namespace fg::cli {

/// --audit FILE plus the gallery key options (--key-file, $FG_GALLERY_KEY) of the audit key.
struct AuditLocation {
    std::string file;  ///< "" = DefaultAuditPath()
    std::string key_file;
    std::string key_env = "FG_GALLERY_KEY";
    void AddTo(CLI::App& cmd);
};

/// $XDG_CONFIG_HOME/facegate/audit.db, else ~/.config/facegate/audit.db.
std::filesystem::path DefaultAuditPath();
/// Opens the log with the key derived from the gallery key (DeriveAuditKey).
Result<std::unique_ptr<audit::AuditLog>> OpenAudit(const AuditLocation& where);
/// "cli:<login name>" of the effective user.
std::string CliActor();
/// Appends one record for a CLI action; result "ok" or the status code's name.
Status RecordCli(audit::AuditLog& log, const std::string& action, const std::string& target,
                 const Status& outcome, nlohmann::json details = nlohmann::json::object());

}  // namespace fg::cli
