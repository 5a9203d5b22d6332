// SPDX-License-Identifier: Apache-2.0
// The identify-by-embedding body (512 floats, as serve receives it) read three ways: nlohmann's
// document, nlohmann's SAX interface, and the fast reader serve uses (libs/api/src/probe_body.h).
// BENCHMARKS.md "Service, session 3".
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "probe_body.h"

namespace {

using nlohmann::json;

std::string Body() {
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0.f, 0.044f);
    std::vector<float> e(512);
    for (float& x : e) x = n(rng);
    return json{{"embedding", e}, {"model_id", "fr_feature"}}.dump();
}

void BM_Document(benchmark::State& state) {
    const std::string body = Body();
    for (auto _ : state) {
        const json j = json::parse(body);
        std::vector<float> v;
        v.reserve(512);
        for (const auto& x : j["embedding"]) v.push_back(x.get<float>());
        benchmark::DoNotOptimize(v.data());
    }
}

struct Collect : nlohmann::json_sax<json> {
    std::vector<float> v;
    bool null() override { return false; }
    bool boolean(bool) override { return false; }
    bool number_integer(number_integer_t x) override { return v.push_back(float(x)), true; }
    bool number_unsigned(number_unsigned_t x) override { return v.push_back(float(x)), true; }
    bool number_float(number_float_t x, const string_t&) override { return v.push_back(float(x)), true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return false; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return v.reserve(512), true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

void BM_Sax(benchmark::State& state) {
    const std::string body = Body();
    for (auto _ : state) {
        Collect c;
        benchmark::DoNotOptimize(json::sax_parse(body, &c));
        benchmark::DoNotOptimize(c.v.data());
    }
}

void BM_FastReader(benchmark::State& state) {
    const std::string body = Body();
    for (auto _ : state) {
        fg::api::FastProbe p;
        benchmark::DoNotOptimize(fg::api::ParseProbeBodyFast(body, p));
        benchmark::DoNotOptimize(p.values.data());
    }
}

BENCHMARK(BM_Document);
BENCHMARK(BM_Sax);
BENCHMARK(BM_FastReader);

}  // namespace

BENCHMARK_MAIN();
