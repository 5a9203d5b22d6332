// SPDX-License-Identifier: Apache-2.0
// facegate bench models: per-model inference latency of one backend (p50/p90 over timed runs
// after warm-up), load time and memory, for comparing backends and thread counts on the same
// machine. facegate bench frame: the engine end to end (detect, landmarks, align, embed) on one
// 1280x720 frame with one face, decode excluded.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <set>

#include <opencv2/imgproc.hpp>

#include "common.h"
#include "fg/base/paths.h"
#include "fg/image/image_io.h"
#include "fg/infer/backend.h"
#include "fg/infer/model_pack.h"
#include "fg/infer/onnx_graph.h"

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

/// Memory in use by this process: the malloc heap (every arena and mmapped chunk: oneDNN's and
/// OpenCV's buffers come from malloc) and the resident set. A delta of the heap around a
/// CreateSession/CreateWorker plus its first run is what one more worker thread costs; the RSS
/// delta also counts code and JIT pages touched for the first time.
struct MemUse {
    std::int64_t heap = 0;
    std::int64_t rss = 0;
};

MemUse MemNow() {
    MemUse m;
    const struct mallinfo2 mi = mallinfo2();
    m.heap = static_cast<std::int64_t>(mi.uordblks + mi.hblkhd);
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    if (statm >> size >> resident) m.rss = resident * sysconf(_SC_PAGESIZE);
    return m;
}

double Percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const double pos = p * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

/// Every installed model of the built-in packs, once per file.
std::vector<infer::ModelSpec> PackSpecs() {
    std::vector<infer::ModelSpec> specs;
    std::set<std::filesystem::path> seen;
    for (const auto& name : infer::BuiltinPackNames()) {
        auto pack = infer::ResolvePack(name);
        if (!pack.ok()) continue;
        for (const auto& pm : pack->models) {
            std::error_code ec;
            const auto canonical = std::filesystem::weakly_canonical(pm.path, ec);
            if (!std::filesystem::exists(pm.path) || !seen.insert(canonical).second) continue;
            specs.push_back(pm.ToSpec());
        }
    }
    return specs;
}

/// Models to time: the files given, else every installed model of the built-in packs. A file
/// of a built-in pack is loaded as that pack loads it (fixed input, batch rewrite), so timing
/// it alone gives the same figure as the default list; another file with dynamic spatial dims
/// is fixed to 640x640, as tools/ort_bench does.
std::vector<infer::ModelSpec> Specs(const BenchArgs& args) {
    if (args.models.empty()) return PackSpecs();
    const std::vector<infer::ModelSpec> known = PackSpecs();
    std::vector<infer::ModelSpec> specs;
    for (const auto& m : args.models) {
        std::error_code ec;
        const auto canonical = std::filesystem::weakly_canonical(m, ec);
        auto it = std::find_if(known.begin(), known.end(), [&](const infer::ModelSpec& k) {
            std::error_code ec2;
            return std::filesystem::weakly_canonical(k.path, ec2) == canonical;
        });
        infer::ModelSpec s;
        if (it != known.end()) {
            s = *it;
            s.path = m;
        } else {
            s.id = std::filesystem::path(m).stem().string();
            s.path = m;
            auto bytes = infer::ReadFileBytes(m);
            auto summary = bytes.ok() ? infer::SummarizeOnnx(*bytes) : Result<infer::OnnxGraphSummary>(bytes.status());
            if (summary.ok() && summary->input_shapes.size() == 1 &&
                summary->input_shapes[0].size() == 4) {
                const auto& d = summary->input_shapes[0];
                if (d[2] <= 0 || d[3] <= 0) s.input_shape = {1, d[1] > 0 ? d[1] : 3, 640, 640};
            }
        }
        s.dynamic_batch = s.dynamic_batch || args.batch > 1;
        specs.push_back(std::move(s));
    }
    return specs;
}

Result<nlohmann::json> BenchOne(const infer::Backend& backend, const infer::ModelSpec& spec,
                                const BenchArgs& args) {
    const MemUse before_load = MemNow();
    const auto t0 = std::chrono::steady_clock::now();
    FG_ASSIGN_OR_RETURN(auto model, backend.Load(spec));
    const double load_ms = Ms(std::chrono::steady_clock::now() - t0);
    const MemUse before_session = MemNow();
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
    // The first run allocates the session's buffers (both backends do it lazily).
    for (int c = 0; c < calls; ++c) FG_RETURN_IF_ERROR(session->Run(views, outs));
    const MemUse after_session = MemNow();
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
                          {"load_ms", load_ms},
                          // Load (weights, plans) includes the load-time warm-up session.
                          {"model_heap_bytes", before_session.heap - before_load.heap},
                          {"session_heap_bytes", after_session.heap - before_session.heap},
                          {"session_rss_bytes", after_session.rss - before_session.rss}};
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
            std::printf(
                "%-34s %-7s t=%d b=%d  p50 %8.3f ms  p90 %8.3f ms  load %7.1f ms  session %6.1f MB\n",
                (*r)["file"].get<std::string>().c_str(), args.backend.c_str(), args.threads,
                args.batch, (*r)["p50_ms"].get<double>(), (*r)["p90_ms"].get<double>(),
                (*r)["load_ms"].get<double>(), (*r)["session_heap_bytes"].get<double>() / 1e6);
        }
        out.push_back(std::move(r).value());
    }
    if (args.json) PrintJson(out);
    return ok ? kExitOk : kExitError;
}

struct FrameArgs {
    std::string image;
    std::string pack = "default";
    std::string backend = "both";
    int threads = 1;
    int runs = 30;
    int warmup = 5;
    bool no_flip = false;
    bool json = false;
};

/// The benchmark frame: a 1280x720 image as it is, anything else (a face photo) scaled so its
/// longer side is 360 px and centred on a 1280x720 textured background, as a camera frame with
/// one face. Default photo: a CFP frontal image, else one of dlib's example chips.
Result<cv::Mat> BenchFrame(const std::string& image, std::string& source) {
    std::filesystem::path path = image;
    if (path.empty()) {
        path = SharedDir() / "data/cfp/cfp-dataset/Data/Images/001/frontal/01.jpg";
        if (!std::filesystem::exists(path))
            path = DlibExamplesDir() / "johns/John_Salley/000179_02159509.jpg";
    }
    source = path.string();
    FG_ASSIGN_OR_RETURN(cv::Mat photo, LoadImage(path));
    if (photo.cols == 1280 && photo.rows == 720) return photo;
    cv::Mat frame(720, 1280, CV_8UC3);
    cv::setRNGSeed(7);
    cv::randu(frame, 90, 140);
    cv::GaussianBlur(frame, frame, {0, 0}, 3);
    const double s = 360.0 / std::max(photo.cols, photo.rows);
    cv::Mat scaled;
    cv::resize(photo, scaled, {}, s, s, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    scaled.copyTo(frame(cv::Rect((1280 - scaled.cols) / 2, (720 - scaled.rows) / 2, scaled.cols,
                                 scaled.rows)));
    return frame;
}

Result<nlohmann::json> BenchFrameOn(const std::string& backend, const cv::Mat& frame,
                                    const FrameArgs& args) {
    EngineOptions opt;
    opt.pack = args.pack;
    opt.backend = backend;
    opt.threads = args.threads;
    opt.no_flip = args.no_flip;
    FG_ASSIGN_OR_RETURN(vision::EngineConfig cfg, opt.ToConfig());
    const auto t0 = std::chrono::steady_clock::now();
    FG_ASSIGN_OR_RETURN(auto engine, vision::Engine::Create(cfg));
    const double load_ms = Ms(std::chrono::steady_clock::now() - t0);
    // One more worker thread: its sessions, plus the buffers its first frame allocates.
    const MemUse before = MemNow();
    FG_ASSIGN_OR_RETURN(auto worker, engine->CreateWorker());
    FG_ASSIGN_OR_RETURN(auto faces, worker->Analyze(frame));
    const MemUse after = MemNow();
    if (faces.size() != 1) {
        return FailedPrecondition("the frame must hold exactly one face; found " +
                                  std::to_string(faces.size()));
    }
    std::vector<double> times;
    for (int r = 0; r < args.warmup + args.runs; ++r) {
        const auto start = std::chrono::steady_clock::now();
        FG_ASSIGN_OR_RETURN(faces, worker->Analyze(frame));
        if (r >= args.warmup) times.push_back(Ms(std::chrono::steady_clock::now() - start));
    }
    const auto& box = faces[0].detection.box;
    return nlohmann::json{{"backend", backend},
                          {"pack", engine->pack().name},
                          {"threads", args.threads},
                          {"flip", !args.no_flip},
                          {"runs", args.runs},
                          {"p50_ms", Percentile(times, 0.5)},
                          {"p90_ms", Percentile(times, 0.9)},
                          {"engine_load_ms", load_ms},
                          {"worker_heap_bytes", after.heap - before.heap},
                          {"worker_rss_bytes", after.rss - before.rss},
                          {"face_box", ToJson(box)}};
}

int RunFrameBench(const FrameArgs& args) {
    std::string source;
    auto frame = BenchFrame(args.image, source);
    if (!frame.ok()) return Fail(frame.status());
    const std::vector<std::string> backends =
        args.backend == "both" ? std::vector<std::string>{"onednn", "opencv"}
                               : std::vector<std::string>{args.backend};
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : backends) {
        auto r = BenchFrameOn(b, *frame, args);
        if (!r.ok()) return Fail(r.status().WithContext("backend " + b));
        (*r)["image"] = source;
        if (!args.json) {
            std::printf("frame 1280x720 %-7s t=%d flip=%d  p50 %8.2f ms  p90 %8.2f ms  "
                        "load %7.1f ms  worker %6.1f MB heap, %6.1f MB RSS\n",
                        b.c_str(), args.threads, args.no_flip ? 0 : 1,
                        (*r)["p50_ms"].get<double>(), (*r)["p90_ms"].get<double>(),
                        (*r)["engine_load_ms"].get<double>(),
                        (*r)["worker_heap_bytes"].get<double>() / 1e6,
                        (*r)["worker_rss_bytes"].get<double>() / 1e6);
        }
        out.push_back(std::move(r).value());
    }
    if (args.json) PrintJson(out);
    return kExitOk;
}

}   // namespace

void RegisterBenchCommands(CLI::App& app, Action& action) {
    auto* bench = SubcommandOf(app, "bench", "Benchmarks");
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

    auto fargs = std::make_shared<FrameArgs>();
    auto* frame = bench->add_subcommand(
        "frame", "Time the engine end to end (detect, landmarks, align, embed) on a 1280x720 "
                 "frame with one face, decode excluded");
    frame->add_option("--image", fargs->image,
                      "Face photo (placed on a 1280x720 canvas unless it is 1280x720); default: "
                      "a CFP frontal image from the shared data")
        ->check(CLI::ExistingFile);
    frame->add_option("--pack", fargs->pack, "Model pack")->capture_default_str();
    frame->add_option("--backend", fargs->backend, "Inference backend, or both (onednn, opencv)")
        ->check(CLI::IsMember({"onednn", "opencv", "auto", "both"}))
        ->capture_default_str();
    frame->add_option("--threads", fargs->threads, "Threads per inference")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    frame->add_option("--runs", fargs->runs, "Timed runs (after warm-up)")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    frame->add_option("--warmup", fargs->warmup, "Untimed runs first")->capture_default_str();
    frame->add_flag("--no-flip", fargs->no_flip, "Embed without horizontal-flip fusion");
    frame->add_flag("--json", fargs->json, "Print JSON");
    frame->callback([fargs, &action] { action = [fargs] { return RunFrameBench(*fargs); }; });
}

}   // namespace fg::cli
