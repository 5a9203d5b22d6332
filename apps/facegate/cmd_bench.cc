// SPDX-License-Identifier: Apache-2.0
// facegate bench models: per-model inference latency of one backend (p50/p90 over timed runs
// after warm-up), for comparing backends and thread counts on the same machine.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <set>

#include "common.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"

namespace fg::cli {
namespace {

struct BenchArgs {
    std::string backend = "onednn";
    int threads = 1;
    int batch = 1;
    int runs = 30;
    int warmup = 5;
    std::vector<std::string> models;
    bool json = false;
};

double Ms(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

double Percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const double pos = p * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

/// Models to time: the files given, else every installed model of the built-in packs.
std::vector<infer::ModelSpec> Specs(const BenchArgs& args) {
    std::vector<infer::ModelSpec> specs;
    if (!args.models.empty()) {
        for (const auto& m : args.models) {
            infer::ModelSpec s;
            s.id = std::filesystem::path(m).stem().string();
            s.path = m;
            s.dynamic_batch = args.batch > 1;
            specs.push_back(std::move(s));
        }
        return specs;
    }
    std::set<std::filesystem::path> seen;
    for (const auto& name : infer::BuiltinPackNames()) {
        auto pack = infer::ResolvePack(name);
        if (!pack.ok()) continue;
        for (const auto& pm : pack->models) {
            if (!std::filesystem::exists(pm.path) || !seen.insert(pm.path).second) continue;
            specs.push_back(pm.ToSpec());
        }
    }
    return specs;
}

Result<nlohmann::json> BenchOne(const infer::Backend& backend, const infer::ModelSpec& spec,
                                const BenchArgs& args) {
    const auto t0 = std::chrono::steady_clock::now();
    FG_ASSIGN_OR_RETURN(auto model, backend.Load(spec));
    const double load_ms = Ms(std::chrono::steady_clock::now() - t0);
    FG_ASSIGN_OR_RETURN(auto session, model->CreateSession());
    const infer::ModelInfo& info = model->info();
    // A graph fixed at batch 1 runs the batch item by item, as the engine does.
    const bool batched = info.max_batch == 0 || info.max_batch >= args.batch;
    const int per_call = batched ? args.batch : 1;
    const int calls = batched ? 1 : args.batch;
    std::vector<infer::Tensor> inputs;
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (auto shape : info.input_shapes) {
        if (shape.empty()) return InvalidArgument("input of unknown rank");
        shape[0] = per_call;
        for (auto& d : shape) d = d > 0 ? d : 1;
        infer::Tensor t;
        t.shape = shape;
        t.data.resize(static_cast<std::size_t>(t.View().numel()));
        for (auto& v : t.data) v = dist(rng);
        inputs.push_back(std::move(t));
    }
    std::vector<infer::TensorView> views, outs;
    for (const auto& t : inputs) views.push_back(t.View());
    std::vector<double> times;
    for (int r = 0; r < args.warmup + args.runs; ++r) {
        const auto start = std::chrono::steady_clock::now();
        for (int c = 0; c < calls; ++c) FG_RETURN_IF_ERROR(session->Run(views, outs));
        if (r >= args.warmup) times.push_back(Ms(std::chrono::steady_clock::now() - start));
    }
    return nlohmann::json{{"file", spec.path.filename().string()},
                          {"id", spec.id},
                          {"path", spec.path.string()},
                          {"backend", std::string(backend.name())},
                          {"threads", args.threads},
                          {"batch", args.batch},
                          {"batched", batched},
                          {"runs", args.runs},
                          {"p50_ms", Percentile(times, 0.5)},
                          {"p90_ms", Percentile(times, 0.9)},
                          {"load_ms", load_ms}};
}

int RunBench(const BenchArgs& args) {
    auto backend = infer::MakeBackend({.name = args.backend, .threads = args.threads});
    if (!backend.ok()) return Fail(backend.status());
    const auto specs = Specs(args);
    if (specs.empty())
        return Fail(NotFound("no models to benchmark (install a pack or pass --model)"));
    nlohmann::json out = nlohmann::json::array();
    bool ok = true;
    for (const auto& spec : specs) {
        auto r = BenchOne(**backend, spec, args);
        if (!r.ok()) {
            ok = false;
            std::cerr << "error: " << spec.path.filename().string() << ": " << r.status().ToString()
                      << "\n";
            out.push_back({{"file", spec.path.filename().string()},
                           {"backend", args.backend},
                           {"error", r.status().ToString()}});
            continue;
        }
        if (!args.json) {
            std::printf("%-34s %-7s t=%d b=%d  p50 %8.3f ms  p90 %8.3f ms  load %7.1f ms\n",
                        (*r)["file"].get<std::string>().c_str(), args.backend.c_str(), args.threads,
                        args.batch, (*r)["p50_ms"].get<double>(), (*r)["p90_ms"].get<double>(),
                        (*r)["load_ms"].get<double>());
        }
        out.push_back(std::move(r).value());
    }
    if (args.json) PrintJson(out);
    return ok ? kExitOk : kExitError;
}

}   // namespace

void RegisterBenchCommands(CLI::App& app, Action& action) {
    auto* bench = app.add_subcommand("bench", "Benchmarks");
    bench->require_subcommand(1);
    auto args = std::make_shared<BenchArgs>();
    auto* models = bench->add_subcommand("models", "Time each model on one inference backend");
    models->add_option("--backend", args->backend, "Inference backend")
        ->check(CLI::IsMember(infer::AvailableBackends()))
        ->capture_default_str();
    models->add_option("--threads", args->threads, "Threads per inference")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    models->add_option("--batch", args->batch, "Items per inference")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    models->add_option("--runs", args->runs, "Timed runs (after warm-up)")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    models->add_option("--warmup", args->warmup, "Untimed runs first")->capture_default_str();
    models
        ->add_option("--model", args->models,
                     "ONNX file(s) to time (default: every installed built-in pack model)")
        ->check(CLI::ExistingFile);
    models->add_flag("--json", args->json, "Print JSON");
    models->callback([args, &action] { action = [args] { return RunBench(*args); }; });
}

}   // namespace fg::cli
