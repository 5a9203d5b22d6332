// SPDX-License-Identifier: Apache-2.0
// Private to the commands that write or read the audit log (cmd_audit.cc, cmd_keys.cc): where
// the log is, how its key is found, and who "I" am.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

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
    /// --old-key-file: gallery keys from before a `gallery rotate-key` (verify needs the key of
    /// every epoch of the chain).
    std::vector<std::string> old_key_files;
    /// `gallery rotate-key --new-key-file`: once the rotation succeeded, RunAudited records it
    /// under this key (the log moves to it; the key above becomes an old one).
    std::string rotated_to_key_file;
    void AddTo(CLI::App& cmd);
};

/// $XDG_CONFIG_HOME/facegate/audit.db, else ~/.config/facegate/audit.db.
std::filesystem::path DefaultAuditPath();
/// Opens the log with the key derived from the gallery key (DeriveAuditKey), plus those of
/// --old-key-file as older keys of the ring.
Result<std::unique_ptr<audit::AuditLog>> OpenAudit(const AuditLocation& where);
/// The audit log the CLI's gallery commands write to: `where.file` (--audit), else
/// $FG_AUDIT_FILE, else DefaultAuditPath() when that file exists (serve or `keys` made it).
/// Null when none is configured. An explicit log that cannot be opened is an error; the default
/// one only a warning on stderr (null), so a gallery with another key still works.
Result<std::unique_ptr<audit::AuditLog>> OpenCliAudit(const AuditLocation& where);
/// Runs a CLI command and appends one record for it (principal "cli:<user>", result "ok" or
/// "FAILED" with the exit code in details) to OpenCliAudit's log, if any. The log is opened first:
/// a configured log that cannot be written stops the command before it changes anything.
int RunAudited(const AuditLocation& where, const std::string& action, const std::string& target,
               const std::function<int()>& run);
/// What the audited command decided, in the API's words (identify: "faces=2 known=1 unknown=1
/// spoof=0"; verify: "same" / "different" / "spoof"): RunAudited records it as details.outcome.
/// Ids and counts only, never an image, an embedding or a score. One command per process.
void SetAuditOutcome(std::string outcome);
/// "cli:<login name>" of the effective user.
std::string CliActor();
/// Appends one record for a CLI action; result "ok" or the status code's name.
Status RecordCli(audit::AuditLog& log, const std::string& action, const std::string& target,
                 const Status& outcome, nlohmann::json details = nlohmann::json::object());

}  // namespace fg::cli
