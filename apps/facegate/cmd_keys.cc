// SPDX-License-Identifier: Apache-2.0
// facegate keys create|list|revoke: the API keys of `facegate serve` (libs/auth). Every change
// is recorded in the audit log (key_create, key_revoke), never the secret.
#include <iostream>

#include "cmd_audit.h"
#include "fg/auth/key_store.h"

namespace fg::cli {

namespace {

struct KeysArgs {
    std::string keys_file;  // "" = auth::DefaultKeyStorePath()
    AuditLocation audit;
    std::string name;
    std::string scopes;
    std::string id;
    bool json = false;
};

Result<std::unique_ptr<auth::KeyStore>> OpenKeys(const KeysArgs& a) {
    return auth::KeyStore::Open(a.keys_file.empty() ? auth::DefaultKeyStorePath() : std::filesystem::path(a.keys_file));
}

nlohmann::json KeyJson(const auth::KeyInfo& k) {
    auto opt_time = [](const std::optional<std::int64_t>& t) {
        return t ? nlohmann::json(audit::FormatTime(*t * 1000)) : nlohmann::json(nullptr);
    };
    return {{"id", k.id},
            {"name", k.name},
            {"scopes", k.scopes},
            {"created_at", audit::FormatTime(k.created_at * 1000)},
            {"last_used_at", opt_time(k.last_used_at)},
            {"revoked", k.revoked()},
            {"revoked_at", opt_time(k.revoked_at)}};
}

/// Runs a key change with its audit record. The audit log is opened first: a change that
/// cannot be recorded is not made.
int Audited(const KeysArgs& a, const std::string& action, const std::function<Status(auth::KeyStore&, std::string& target, nlohmann::json& details)>& change) {
    auto log = OpenAudit(a.audit);
    if (!log.ok()) return Fail(log.status().WithContext("audit log (key changes are recorded)"));
    auto store = OpenKeys(a);
    if (!store.ok()) return Fail(store.status());
    std::string target;
    nlohmann::json details = nlohmann::json::object();
    const Status outcome = change(**store, target, details);
    const Status recorded = RecordCli(**log, action, target, outcome, details);
    if (!outcome.ok()) return Fail(outcome);
    if (!recorded.ok()) return Fail(recorded);
    return kExitOk;
}

int RunCreate(const KeysArgs& a) {
    auto scopes = auth::ParseScopes(a.scopes);
    if (!scopes.ok()) return Fail(scopes.status().WithContext("--scope"));
    return Audited(a, "key_create", [&](auth::KeyStore& store, std::string& target, nlohmann::json& details) {
        details = {{"name", a.name}, {"scopes", *scopes}};
        auto key = store.Create(a.name, *scopes);
        if (!key.ok()) return key.status();
        target = key->info.id;
        if (a.json) {
            nlohmann::json j = KeyJson(key->info);
            j["secret"] = key->secret;
            PrintJson(j);
        } else {
            std::cout << key->secret << "\n";
            std::cerr << "created key " << key->info.id << " (" << a.name << ", " << a.scopes
                      << "): the secret above is shown once; send it as 'Authorization: Bearer <key>'\n";
        }
        return Status::Ok();
    });
}

int RunRevoke(const KeysArgs& a) {
    return Audited(a, "key_revoke", [&](auth::KeyStore& store, std::string& target, nlohmann::json&) {
        target = a.id;
        FG_RETURN_IF_ERROR(store.Revoke(a.id));
        if (a.json) {
            PrintJson({{"ok", true}, {"id", a.id}});
        } else {
            std::cout << "revoked " << a.id << "\n";
        }
        return Status::Ok();
    });
}

int RunList(const KeysArgs& a) {
    auto store = OpenKeys(a);
    if (!store.ok()) return Fail(store.status());
    auto keys = (*store)->List();
    if (!keys.ok()) return Fail(keys.status());
    if (a.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& k : *keys) arr.push_back(KeyJson(k));
        PrintJson({{"keys", arr}});
        return kExitOk;
    }
    for (const auto& k : *keys) {
        std::string scopes;
        for (const auto& s : k.scopes) scopes += (scopes.empty() ? "" : ",") + s;
        std::cout << k.id << "\t" << k.name << "\t" << scopes << "\t" << audit::FormatTime(k.created_at * 1000)
                  << "\t" << (k.revoked() ? "revoked" : "active") << "\n";
    }
    return kExitOk;
}

}  // namespace

void RegisterKeysCommands(CLI::App& app, Action& action) {
    auto a = std::make_shared<KeysArgs>();
    CLI::App* keys = app.add_subcommand("keys", "API keys of `facegate serve`: create, list, revoke");
    keys->require_subcommand(1);
    auto common = [a](CLI::App* c) {
        c->add_option("--keys", a->keys_file, "Key store (default: ~/.config/facegate/keys.db)");
        c->add_flag("--json", a->json, "JSON output");
    };
    CLI::App* create = keys->add_subcommand("create", "Create a key; its secret is printed once");
    common(create);
    a->audit.AddTo(*create);
    create->add_option("--name", a->name, "A label for logs and the audit log")->required();
    create->add_option("--scope", a->scopes, "Comma-separated: admin, enroll, recognize, events, read")->required();
    create->callback([a, &action] { action = [a] { return RunCreate(*a); }; });

    CLI::App* list = keys->add_subcommand("list", "Every key (never the secrets)");
    common(list);
    list->callback([a, &action] { action = [a] { return RunList(*a); }; });

    CLI::App* revoke = keys->add_subcommand("revoke", "Revoke a key at once (a running serve: within seconds)");
    common(revoke);
    a->audit.AddTo(*revoke);
    revoke->add_option("id", a->id, "Key id (from keys list)")->required();
    revoke->callback([a, &action] { action = [a] { return RunRevoke(*a); }; });
}

}  // namespace fg::cli
