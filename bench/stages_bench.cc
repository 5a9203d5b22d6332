// SPDX-License-Identifier: Apache-2.0
// Per-stage timings of the engine on a 1280x720 frame with one face (decode, detect, landmarks,
// align, embed batch 1 and 8), at 1 and 2 threads, next to a plain OpenCV DNN forward of the same
// models so the cost of our own pre/post-processing is visible.
//
//   build/release/bench/fg_stages_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>
#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fg/base/paths.h"
#include "fg/image/align.h"
#include "fg/image/image_io.h"
#include "fg/vision/engine.h"

namespace {

/// A 1280x720 frame: one dlib face chip enlarged to 240 px on a textured background.
const cv::Mat& Frame() {
    static const cv::Mat frame = [] {
        cv::Mat f(720, 1280, CV_8UC3);
        cv::randu(f, 90, 140);
        cv::GaussianBlur(f, f, {0, 0}, 3);
        auto chip = fg::LoadImage(fg::DlibExamplesDir() / "johns/John_Salley/000179_02159509.jpg");
        if (chip.ok()) {
            cv::Mat big;
            cv::resize(*chip, big, {240, 240});
            big.copyTo(f(cv::Rect(620, 200, 240, 240)));
        }
        return f;
    }();
    return frame;
}

const std::vector<uchar>& FrameJpeg() {
    static const std::vector<uchar> jpg = [] {
        std::vector<uchar> b;
        cv::imencode(".jpg", Frame(), b, {cv::IMWRITE_JPEG_QUALITY, 90});
        return b;
    }();
    return jpg;
}

std::shared_ptr<fg::vision::Engine> GetEngine(const std::string& pack) {
    static std::map<std::string, std::shared_ptr<fg::vision::Engine>> engines;
    auto& e = engines[pack];
    if (!e) {
        // OpenCV backend: the plain forwards below are OpenCV DNN, so the overhead stays comparable.
        auto r = fg::vision::Engine::Create({.pack = pack, .backend = {.name = "opencv"}});
        if (!r.ok()) return nullptr;
        e = *r;
    }
    return e;
}

void SetThreads(benchmark::State& state) { cv::setNumThreads(static_cast<int>(state.range(0))); }

void BM_Decode(benchmark::State& state) {
    SetThreads(state);
    for (auto _ : state) benchmark::DoNotOptimize(fg::DecodeImage(FrameJpeg()));
}

void BM_Detect(benchmark::State& state, const std::string& pack) {
    SetThreads(state);
    auto engine = GetEngine(pack);
    if (!engine) return state.SkipWithError("pack not installed");
    auto worker = engine->CreateWorker();
    auto warm = (*worker)->Detect(Frame());
    if (!warm.ok() || warm->size() != 1) return state.SkipWithError("expected exactly one face");
    for (auto _ : state) benchmark::DoNotOptimize((*worker)->Detect(Frame()));
}

void BM_Align(benchmark::State& state) {
    auto engine = GetEngine("default");
    if (!engine) return state.SkipWithError("pack not installed");
    auto worker = engine->CreateWorker();
    auto dets = (*worker)->Detect(Frame());
    if (!dets.ok() || dets->empty()) return state.SkipWithError("no face");
    for (auto _ : state) benchmark::DoNotOptimize(fg::AlignFace(Frame(), dets->front().landmarks));
}

void BM_Embed(benchmark::State& state, bool flip) {
    SetThreads(state);
    const int batch = static_cast<int>(state.range(1));
    auto engine = fg::vision::Engine::Create(
        {.pack = "default", .backend = {.name = "opencv"}, .embedder = {.flip_fusion = flip, .max_batch = 8}});
    if (!engine.ok()) return state.SkipWithError("pack not installed");
    auto worker = (*engine)->CreateWorker();
    auto dets = (*worker)->Detect(Frame());
    if (!dets.ok() || dets->empty()) return state.SkipWithError("no face");
    auto aligned = fg::AlignFace(Frame(), dets->front().landmarks);
    std::vector<cv::Mat> faces(batch, aligned->image);
    std::vector<fg::vision::Embedding> out;
    for (auto _ : state) {
        auto s = (*worker)->EmbedAligned(faces, out);
        benchmark::DoNotOptimize(s);
    }
    state.counters["faces/s"] = benchmark::Counter(double(batch) * state.iterations(), benchmark::Counter::kIsRate);
}

/// Plain OpenCV DNN: readNetFromONNX + setInput + forward on a prepared blob.
void BM_RawForward(benchmark::State& state, const std::string& file, int c, int h, int w) {
    SetThreads(state);
    const auto path = file.starts_with("shared:") ? fg::SharedDir() / "models" / file.substr(7) : fg::ModelsDir() / file;
    if (!std::filesystem::exists(path)) return state.SkipWithError("model not installed");
    cv::dnn::Net net = cv::dnn::readNetFromONNX(path.string());
    const int dims[4] = {1, c, h, w};
    cv::Mat blob(4, dims, CV_32F);
    cv::randu(blob, -1, 1);
    net.setInput(blob);
    net.forward();
    for (auto _ : state) {
        net.setInput(blob);
        std::vector<cv::Mat> outs;
        net.forward(outs, net.getUnconnectedOutLayersNames());
        benchmark::DoNotOptimize(outs);
    }
}

void Threads(benchmark::internal::Benchmark* b) { b->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime(); }

}  // namespace

BENCHMARK(BM_Decode)->Apply(Threads);
BENCHMARK_CAPTURE(BM_Detect, default_ultraface_landmarks, std::string("default"))->Apply(Threads);
BENCHMARK_CAPTURE(BM_Detect, yunet_s, std::string("yunet_s"))->Apply(Threads);
BENCHMARK_CAPTURE(BM_Detect, scrfd_500m, std::string("scrfd_500m"))->Apply(Threads);
BENCHMARK_CAPTURE(BM_RawForward, fr_detect, std::string("fr_detect.onnx"), 3, 240, 320)->Apply(Threads);
BENCHMARK_CAPTURE(BM_RawForward, fr_landmark, std::string("fr_landmark.onnx"), 1, 64, 64)->Apply(Threads);
BENCHMARK_CAPTURE(BM_RawForward, fr_feature, std::string("fr_feature.onnx"), 3, 112, 112)->Apply(Threads);
BENCHMARK_CAPTURE(BM_RawForward, yunet_s, std::string("shared:yunet_s_640_2023mar.onnx"), 3, 640, 640)->Apply(Threads);
BENCHMARK_CAPTURE(BM_RawForward, scrfd_500m, std::string("shared:scrfd_500m_kps_640.onnx"), 3, 640, 640)->Apply(Threads);
BENCHMARK(BM_Align)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Embed, noflip, false)
    ->ArgsProduct({{1, 2}, {1, 8}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Embed, flip, true)
    ->ArgsProduct({{1, 2}, {1, 8}})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
