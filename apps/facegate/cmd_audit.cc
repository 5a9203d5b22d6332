// SPDX-License-Identifier: Apache-2.0
// facegate audit [--since --until --action --who --after --limit --json] and `audit verify`.
#include "cmd_audit.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "fg/gallery/crypto.h"

namespace fg::cli {

void AuditLocation::AddTo(CLI::App& cmd) {
    cmd.add_option("--audit", file, "Audit log file (default: ~/.config/facegate/audit.db)");
    cmd.add_option("--key-file", key_file,
                   "Gallery key file; the audit key is derived from it (default: $FG_GALLERY_KEY, "
                   "else ~/.config/facegate/gallery.key)");
    cmd.add_option("--old-key-file", old_key_files,
                   "Gallery key file(s) from before `gallery rotate-key` (repeatable): verify needs the "
                   "key of every part of the chain");
}

std::filesystem::path DefaultAuditPath() { return DefaultGalleryKeyPath().parent_path() / "audit.db"; }

namespace {

Result<audit::AuditKey> AuditKeyOfFile(const std::string& file) {
    FG_ASSIGN_OR_RETURN(gallery::TemplateKey k, gallery::LoadKeyFile(file));
    auto key = audit::DeriveAuditKey(k.bytes);
    std::fill(k.bytes.begin(), k.bytes.end(), 0);
    if (!key.ok()) return key.status().WithContext(file);
    return key;
}

/// The audit log under the ring {rotated_to, the gallery key}: the rotate_key record is the
/// first under the new key.
Result<std::unique_ptr<audit::AuditLog>> OpenRotated(const AuditLocation& where, const std::filesystem::path& path) {
    FG_ASSIGN_OR_RETURN(auto bytes, ResolveGalleryKeyBytes({.db = "", .key_file = where.key_file, .key_env = where.key_env}));
    auto old = audit::DeriveAuditKey(bytes);
    std::fill(bytes.begin(), bytes.end(), 0);
    if (!old.ok()) return old.status();
    FG_ASSIGN_OR_RETURN(const audit::AuditKey now, AuditKeyOfFile(where.rotated_to_key_file));
    return audit::AuditLog::Open(path, audit::AuditKeyRing{now, {*old}});
}

}  // namespace

Result<std::unique_ptr<audit::AuditLog>> OpenAudit(const AuditLocation& where) {
    FG_ASSIGN_OR_RETURN(auto bytes, ResolveGalleryKeyBytes({.db = "", .key_file = where.key_file, .key_env = where.key_env}));
    audit::AuditKeyRing ring;
    auto current = audit::DeriveAuditKey(bytes);
    std::fill(bytes.begin(), bytes.end(), 0);
    if (!current.ok()) return current.status();
    ring.current = *current;
    for (const auto& f : where.old_key_files) {
        FG_ASSIGN_OR_RETURN(const audit::AuditKey k, AuditKeyOfFile(f));
        ring.old.push_back(k);
    }
    const std::filesystem::path path = where.file.empty() ? DefaultAuditPath() : std::filesystem::path(where.file);
    return audit::AuditLog::Open(path, std::move(ring));
}

Result<std::unique_ptr<audit::AuditLog>> OpenCliAudit(const AuditLocation& where) {
    AuditLocation w = where;
    if (w.file.empty()) {
        if (const char* env = std::getenv("FG_AUDIT_FILE"); env != nullptr && *env) w.file = env;
    }
    if (!w.file.empty()) return OpenAudit(w);
    std::error_code ec;
    if (!std::filesystem::exists(DefaultAuditPath(), ec)) return std::unique_ptr<audit::AuditLog>();
    auto log = OpenAudit(w);
    if (!log.ok()) {
        std::cerr << "warning: not recorded in the audit log " << DefaultAuditPath().string() << ": "
                  << log.status().message() << " (pass --audit FILE or set FG_AUDIT_FILE)\n";
        return std::unique_ptr<audit::AuditLog>();
    }
    return log;
}

namespace {
std::string g_audit_outcome;  // set by the one command this process runs (SetAuditOutcome)
}  // namespace

void SetAuditOutcome(std::string outcome) { g_audit_outcome = std::move(outcome).substr(0, 512); }

int RunAudited(const AuditLocation& where, const std::string& action, const std::string& target,
               const std::function<int()>& run) {
    auto log = OpenCliAudit(where);
    if (!log.ok()) return Fail(log.status().WithContext("audit log"));
    const int code = run();
    if (*log && code == kExitOk && !where.rotated_to_key_file.empty()) {
        // The gallery is under the new key now: so is the audit log, from this record on.
        auto rotated = OpenRotated(where, (*log)->path());
        if (!rotated.ok()) {
            std::cerr << "error: audit log " << (*log)->path().string() << ": " << rotated.status().message() << "\n";
            return kExitError;
        }
        *log = std::move(*rotated);
    }
    if (*log) {
        audit::Record r;
        r.who = CliActor();
        r.action = action;
        r.target = target.substr(0, 256);
        r.result = code == kExitOk ? "ok" : "FAILED";
        r.details = {{"exit_code", code}};
        if (!g_audit_outcome.empty()) r.details["outcome"] = g_audit_outcome;
        if (auto w = (*log)->Append(std::move(r)); !w.ok()) {
            std::cerr << "error: audit log " << (*log)->path().string() << ": " << w.status().message() << "\n";
            return code == kExitOk ? kExitError : code;
        }
    }
    return code;
}

std::string CliActor() {
    const passwd* pw = ::getpwuid(::geteuid());
    if (pw != nullptr && pw->pw_name != nullptr && *pw->pw_name) return std::string("cli:") + pw->pw_name;
    return "cli:uid" + std::to_string(::geteuid());
}

Status RecordCli(audit::AuditLog& log, const std::string& action, const std::string& target,
                 const Status& outcome, nlohmann::json details) {
    audit::Record r;
    r.who = CliActor();
    r.action = action;
    r.target = target;
    r.result = outcome.ok() ? "ok" : std::string(StatusCodeName(outcome.code()));
    r.details = std::move(details);
    auto written = log.Append(std::move(r));
    return written.ok() ? Status::Ok() : written.status().WithContext("audit log " + log.path().string());
}

namespace {

struct AuditArgs {
    AuditLocation where;
    std::string since, until, action, who;
    std::int64_t after = 0;
    int limit = 100;
    bool json = false;
};

int RunQuery(const AuditArgs& a) {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    audit::Query q{.action = a.action, .who = a.who, .after_seq = a.after, .limit = a.limit};
    if (!a.since.empty()) {
        auto t = audit::ParseTime(a.since, now);
        if (!t.ok()) return Fail(t.status().WithContext("--since"));
        q.since_ms = *t;
    }
    if (!a.until.empty()) {
        auto t = audit::ParseTime(a.until, now);
        if (!t.ok()) return Fail(t.status().WithContext("--until"));
        q.until_ms = *t;
    }
    auto log = OpenAudit(a.where);
    if (!log.ok()) return Fail(log.status());
    auto page = (*log)->Find(q);
    if (!page.ok()) return Fail(page.status());
    if (a.json) {
        nlohmann::json records = nlohmann::json::array();
        for (const auto& r : page->records) records.push_back(audit::ToJson(r));
        PrintJson({{"records", records},
                   {"next_after", page->next_after ? nlohmann::json(*page->next_after) : nlohmann::json(nullptr)}});
    } else {
        for (const auto& r : page->records) {
            std::cout << r.seq << "\t" << audit::FormatTime(r.time_ms) << "\t" << r.who
                      << (r.who_name.empty() ? "" : " (" + r.who_name + ")") << "\t" << r.action << "\t"
                      << (r.target.empty() ? "-" : r.target) << "\t" << r.result << "\t" << r.details.dump() << "\n";
        }
        if (page->next_after) std::cout << "(more: --after " << *page->next_after << ")\n";
    }
    return kExitOk;
}

int RunVerify(const AuditArgs& a) {
    auto log = OpenAudit(a.where);
    if (!log.ok()) return Fail(log.status());
    auto v = (*log)->Verify();
    if (!v.ok()) {
        if (a.json) PrintJson({{"ok", false}, {"error", v.status().message()}});
        return Fail(v.status());
    }
    if (a.json) {
        PrintJson({{"ok", true}, {"records", v->records}, {"last_seq", v->last_seq}, {"key_ids", v->key_ids}});
    } else {
        std::cout << "audit log intact: " << v->records << " record(s)";
        if (v->key_ids.size() > 1) std::cout << " under " << v->key_ids.size() << " keys (gallery key rotations)";
        std::cout << "\n";
    }
    return kExitOk;
}

}  // namespace

void RegisterAuditCommands(CLI::App& app, Action& action) {
    auto a = std::make_shared<AuditArgs>();
    CLI::App* cmd = app.add_subcommand("audit", "Who did what, when: query the audit log, or verify its chain");
    cmd->require_subcommand(0, 1);
    auto common = [a](CLI::App* c) {
        a->where.AddTo(*c);
        c->add_flag("--json", a->json, "JSON output");
    };
    common(cmd);
    cmd->add_option("--since", a->since, "From this time: RFC 3339, unix seconds, or 15m/2h/7d ago");
    cmd->add_option("--until", a->until, "Before this time (same forms)");
    cmd->add_option("--action", a->action, "Only this action (identify, enroll, key_create, ...)");
    cmd->add_option("--who", a->who, "Only this actor (a key id or cli:<user>)");
    cmd->add_option("--after", a->after, "Cursor: records after this seq (from next_after)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--limit", a->limit, "Records per page (1..1000)")->check(CLI::Range(1, 1000))->capture_default_str();
    CLI::App* verify = cmd->add_subcommand("verify", "Check the HMAC chain: exit 1 naming the first bad record");
    common(verify);
    verify->callback([a, &action] { action = [a] { return RunVerify(*a); }; });
    cmd->callback([a, cmd, &action] {
        if (cmd->got_subcommand("verify")) return;
        action = [a] { return RunQuery(*a); };
    });
}

}  // namespace fg::cli
