// SPDX-License-Identifier: Apache-2.0
// facegate models list | verify
#include <iostream>
#include <memory>

#include "common.h"
#include "fg/base/paths.h"
#include "fg/infer/model_pack.h"

namespace fg::cli {
namespace {

struct ModelsArgs {
    std::vector<std::string> packs;
    bool json = false;
};

std::vector<std::string> PacksOrAll(const ModelsArgs& a) {
    return a.packs.empty() ? infer::BuiltinPackNames() : a.packs;
}

/// list: which packs and models exist and whether their files are installed.
/// verify: the same, and a non-zero exit when any file is missing or its hash differs.
int Run(const ModelsArgs& args, bool verify) {
    nlohmann::json out{{"models_dir", ModelsDir().string()}, {"shared_dir", SharedDir().string()}};
    out["packs"] = nlohmann::json::array();
    bool all_ok = true;
    for (const std::string& name : PacksOrAll(args)) {
        auto pack = infer::ResolvePack(name);
        if (!pack.ok()) {
            all_ok = false;
            out["packs"].push_back({{"name", name}, {"error", pack.status().ToString()}});
            std::cerr << "error: " << pack.status().ToString() << "\n";
            continue;
        }
        nlohmann::json jp{{"name", pack->name}, {"description", pack->description}};
        jp["models"] = nlohmann::json::array();
        bool pack_ok = true;
        const std::vector<infer::ModelCheck> checks =
            verify ? infer::VerifyPack(*pack) : std::vector<infer::ModelCheck>{};
        for (size_t i = 0; i < pack->models.size(); ++i) {
            const infer::PackModel& m = pack->models[i];
            nlohmann::json jm{{"id", m.id},
                              {"role", infer::ModelRoleName(m.role)},
                              {"decoder", m.decoder},
                              {"path", m.path.string()},
                              {"installed", std::filesystem::exists(m.path)},
                              {"license", m.license}};
            if (verify) {
                const infer::ModelCheck& c = checks[i];
                jm["sha256_expected"] = c.expected_sha256;
                jm["sha256_actual"] = c.actual_sha256;
                jm["ok"] = c.present && c.hash_ok;
                pack_ok = pack_ok && c.present && c.hash_ok;
            }
            jp["models"].push_back(std::move(jm));
        }
        if (verify) jp["ok"] = pack_ok;
        all_ok = all_ok && pack_ok;
        out["packs"].push_back(std::move(jp));
    }
    if (args.json) {
        PrintJson(out);
    } else {
        for (const auto& jp : out["packs"]) {
            std::cout << jp.value("name", "?");
            if (jp.contains("error")) {
                std::cout << ": " << jp["error"].get<std::string>() << "\n";
                continue;
            }
            if (verify) std::cout << (jp["ok"].get<bool>() ? "  OK" : "  FAILED");
            std::cout << "\n";
            for (const auto& jm : jp["models"]) {
                std::string state = jm["installed"].get<bool>() ? "installed" : "MISSING";
                if (verify && jm["installed"].get<bool>()) state = jm["ok"].get<bool>() ? "sha256 ok" : "SHA256 MISMATCH";
                std::printf("  %-22s %-10s %-16s %s\n", jm["id"].get<std::string>().c_str(),
                            jm["role"].get<std::string>().c_str(), state.c_str(),
                            jm["path"].get<std::string>().c_str());
            }
        }
    }
    return (verify && !all_ok) ? kExitError : kExitOk;
}

}  // namespace

void RegisterModelsCommands(CLI::App& app, Action& action) {
    CLI::App* models = app.add_subcommand("models", "Model packs: list, verify");
    models->require_subcommand(1);
    auto args = std::make_shared<ModelsArgs>();
    for (const char* verb : {"list", "verify"}) {
        const bool verify = std::string(verb) == "verify";
        CLI::App* c = models->add_subcommand(
            verb, verify ? "Check that every model file is installed and matches its sha256"
                         : "List packs and their models");
        c->add_option("packs", args->packs, "Pack names or manifest files (default: all built-in packs)");
        c->add_flag("--json", args->json, "JSON output");
        c->callback([args, verify, &action] { action = [args, verify] { return Run(*args, verify); }; });
    }
}

}  // namespace fg::cli
