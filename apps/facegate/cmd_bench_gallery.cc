// SPDX-License-Identifier: Apache-2.0
// facegate bench gallery: identify latency, recall@1, memory and open time of the gallery
// index on synthetic templates (optionally through the SQLite store), with the generator of
// face-like synthetic embeddings.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <unordered_map>

#include <opencv2/core.hpp>

#include "common.h"
#include "fg/core/embedding.h"
#include "fg/gallery/gallery.h"

namespace fg::cli {
namespace {

using gallery::Gallery;

struct BenchArgs {
    std::int64_t size = 10000;
    int dim = 512;
    std::string index = "auto";
    int queries = 1000;
    std::vector<int> ef_search = {96};
    std::vector<int> nprobe = {32};
    std::vector<int> rerank = {gallery::IndexConfig{}.scan_rerank};
    int scan_dims = 0;
    int nlist = 0;
    int hnsw_m = 32;
    bool with_store = false;
    int batch = 5000;
    bool json = false;
    std::string data = "face";
    std::string keep_dir;
};

double Seconds(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Normalise(float* v, int dim) { L2Normalize(std::span<float>(v, size_t(dim))); }

/// Exact best match of each query by matrix products over blocks of the gallery (OpenCV's
/// GEMM: minutes of scalar loops become seconds at 1M templates).
std::vector<std::int64_t> ExactTop1(const std::vector<float>& xb, const std::vector<float>& xq,
                                    int nq, int dim, const std::vector<std::int64_t>& ids) {
    const size_t n = ids.size();
    std::vector<float> best(size_t(nq), -2.f);
    std::vector<std::int64_t> arg(size_t(nq), -1);
    const cv::Mat q(nq, dim, CV_32F, const_cast<float*>(xq.data()));
    constexpr size_t kBlock = 65536;
    for (size_t start = 0; start < n; start += kBlock) {
        const int rows = int(std::min(kBlock, n - start));
        const cv::Mat x(rows, dim, CV_32F, const_cast<float*>(&xb[start * size_t(dim)]));
        cv::Mat scores;
        cv::gemm(q, x, 1.0, cv::noArray(), 0.0, scores, cv::GEMM_2_T);
        for (int i = 0; i < nq; ++i) {
            const float* row = scores.ptr<float>(i);
            for (int j = 0; j < rows; ++j) {
                if (row[j] > best[size_t(i)]) {
                    best[size_t(i)] = row[j];
                    arg[size_t(i)] = ids[start + size_t(j)];
                }
            }
        }
    }
    return arg;
}

struct Timing {
    double p50 = 0, p99 = 0, recall = 1;
};

/// Latency percentiles of single-probe searches and recall@1 against `exact` (first
/// `exact.size()` probes).
Result<Timing> TimeSearches(const gallery::FaceIndex& index, const std::vector<float>& xq,
                            int queries, int dim, const std::vector<std::int64_t>& exact) {
    std::vector<double> ms;
    int agree = 0;
    for (int q = 0; q < queries; ++q) {
        std::span<const float> probe(&xq[size_t(q) * size_t(dim)], size_t(dim));
        const auto t0 = std::chrono::steady_clock::now();
        auto nn = index.Search(probe, 10);
        ms.push_back(Seconds(t0) * 1e3);
        if (!nn.ok()) return nn.status();
        if (size_t(q) < exact.size())
            agree += (!nn->empty() && nn->front().id == exact[size_t(q)]);
    }
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * double(ms.size())))]; };
    Timing t{pct(0.50), pct(0.99), 1.0};
    if (!exact.empty()) t.recall = double(agree) / double(exact.size());
    return t;
}

/// Synthetic gallery (n x dim, unit rows) and probes (queries x dim, unit rows).
///  - "uniform": isotropic Gaussian directions, i.e. uniform on the sphere; a probe is a gallery
///    vector plus isotropic noise (cosine ~0.6 to it). No neighbourhood structure at all: the
///    worst case for any approximate index.
///  - "face": what face embeddings look like. Measured on fr_feature embeddings of 2 000 CFP
///    frontal photos of 500 people (BENCHMARKS.md "Gallery"): people spread over a few
///    hundred directions with eigenvalues decaying ~exp(-i/45) (effective dimension ~80 of 512;
///    impostor cosines have a std of 0.10, not uniform's 0.044), and photos of one person
///    scatter around the person's centre with eigenvalues ~exp(-i/65) and 0.39 of the
///    between-person variance (genuine cosine ~0.72). A template and a probe are two
///    independent photos of the same person. The directions are randomly rotated so that no
///    index can profit from the coordinate axes.
void GenerateSynthetic(const BenchArgs& b, std::vector<float>& xb, std::vector<float>& xq) {
    const size_t n = size_t(b.size), d = size_t(b.dim);
    std::mt19937 rng(12345);
    std::normal_distribution<float> g;
    xb.assign(n * d, 0.f);
    xq.assign(size_t(b.queries) * d, 0.f);
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    std::vector<size_t> sources(size_t(b.queries));
    for (size_t& s : sources) s = pick(rng);
    if (b.data == "uniform") {
        for (float& x : xb) x = g(rng);
        for (size_t i = 0; i < n; ++i) Normalise(&xb[i * d], b.dim);
        for (int q = 0; q < b.queries; ++q) {
            for (size_t k = 0; k < d; ++k)
                xq[size_t(q) * d + k] =
                    xb[sources[size_t(q)] * d + k] + 1.3f * g(rng) / std::sqrt(float(d));
            Normalise(&xq[size_t(q) * d], b.dim);
        }
        return;
    }
    std::vector<float> sb(d), sw(d);
    double tb = 0, tw = 0;
    for (size_t k = 0; k < d; ++k) {
        tb += std::exp(-double(k) / 45.0);
        tw += std::exp(-double(k) / 65.0);
    }
    for (size_t k = 0; k < d; ++k) {
        sb[k] = float(std::sqrt(std::exp(-double(k) / 45.0) / tb));
        sw[k] = float(std::sqrt(0.39 * std::exp(-double(k) / 65.0) / tw));
    }
    // People's centres are needed again for the probes drawn from them.
    std::unordered_map<size_t, std::vector<float>> centres;
    for (size_t s : sources) centres.emplace(s, std::vector<float>(d));
    std::vector<float> c(d);
    for (size_t i = 0; i < n; ++i) {
        for (size_t k = 0; k < d; ++k) c[k] = sb[k] * g(rng);
        if (auto it = centres.find(i); it != centres.end()) it->second = c;
        float* x = &xb[i * d];
        for (size_t k = 0; k < d; ++k) x[k] = c[k] + sw[k] * g(rng);
    }
    for (int q = 0; q < b.queries; ++q) {
        const std::vector<float>& cs = centres.at(sources[size_t(q)]);
        float* x = &xq[size_t(q) * d];
        for (size_t k = 0; k < d; ++k) x[k] = cs[k] + sw[k] * g(rng);
    }
    // A random rotation (the orthogonal factor of a Gaussian matrix), applied with GEMM.
    cv::Mat r(static_cast<int>(d), static_cast<int>(d), CV_32F);
    for (int i = 0; i < r.rows; ++i)
        for (int j = 0; j < r.cols; ++j) r.at<float>(i, j) = g(rng);
    cv::Mat w, u, vt;
    cv::SVD::compute(r, w, u, vt);
    const cv::Mat rot = u * vt;  // orthogonal
    auto rotate = [&](std::vector<float>& m, size_t rows) {
        constexpr size_t kBlock = 65536;
        for (size_t start = 0; start < rows; start += kBlock) {
            const int nr = int(std::min(kBlock, rows - start));
            cv::Mat x(nr, int(d), CV_32F, &m[start * d]);
            cv::Mat y = x * rot;
            y.copyTo(x);
        }
        for (size_t i = 0; i < rows; ++i) Normalise(&m[i * d], int(d));
    };
    rotate(xb, n);
    rotate(xq, size_t(b.queries));
}

int RunBench(const BenchArgs& b) {
    auto kind = gallery::ParseIndexKind(b.index);
    if (!kind.ok()) return Fail(kind.status());
    if (b.size < 1 || b.dim < 1 || b.queries < 1)
        return Fail(InvalidArgument("size, dim and queries must be positive"));
    if (b.data != "face" && b.data != "uniform")
        return Fail(InvalidArgument("--data must be face or uniform"));
    const size_t n = size_t(b.size), d = size_t(b.dim);
    std::vector<float> xb, xq;
    GenerateSynthetic(b, xb, xq);
    std::vector<std::int64_t> ids(n);
    std::iota(ids.begin(), ids.end(), 1);
    gallery::IndexConfig cfg{.kind = *kind, .dim = b.dim};
    cfg.hnsw_m = b.hnsw_m;
    cfg.hnsw_ef_search = b.ef_search.front();
    cfg.ivf_nprobe = b.nprobe.front();
    cfg.ivf_nlist = b.nlist;
    cfg.scan_rerank = b.rerank.front();
    cfg.scan_dims = b.scan_dims;
    auto t0 = std::chrono::steady_clock::now();
    auto index = gallery::FaceIndex::Build(cfg, ids, xb);
    if (!index.ok()) return Fail(index.status());
    const double build_s = Seconds(t0);

    auto bytes = (*index)->Serialize();
    if (!bytes.ok()) return Fail(bytes.status());
    const double snapshot_bytes = double(bytes->size());
    t0 = std::chrono::steady_clock::now();
    auto reopened = gallery::FaceIndex::Deserialize(cfg, *bytes);
    if (!reopened.ok()) return Fail(reopened.status());
    const double open_s = Seconds(t0);
    bytes->clear();
    bytes->shrink_to_fit();
    index->reset();
    const gallery::IndexKind built = (*reopened)->kind();
    const bool exact = built == gallery::IndexKind::kFlat;
    // Recall against exact search on up to 300 probes (skipped when the index is exact).
    const int recall_queries = exact ? 0 : std::min(b.queries, 300);
    std::vector<std::int64_t> truth;
    if (!exact) truth = ExactTop1(xb, xq, recall_queries, b.dim, ids);

    nlohmann::json sweep = nlohmann::json::array();
    Timing first;
    auto efforts = built == gallery::IndexKind::kHnsw  ? b.ef_search
                   : built == gallery::IndexKind::kIvf ? b.nprobe
                   : built == gallery::IndexKind::kScan ? b.rerank
                                                       : std::vector<int>{0};
    for (size_t e = 0; e < efforts.size(); ++e) {
        gallery::IndexConfig c = cfg;
        if (built == gallery::IndexKind::kHnsw) c.hnsw_ef_search = efforts[e];
        if (built == gallery::IndexKind::kIvf) c.ivf_nprobe = efforts[e];
        if (built == gallery::IndexKind::kScan) c.scan_rerank = efforts[e];
        (*reopened)->SetSearchEffort(c);
        auto t = TimeSearches(**reopened, xq, b.queries, b.dim, truth);
        if (!t.ok()) return Fail(t.status());
        if (e == 0) first = *t;
        nlohmann::json row{{"p50_ms", t->p50}, {"p99_ms", t->p99}, {"recall_at_1", t->recall}};
        if (built == gallery::IndexKind::kHnsw) row["ef_search"] = efforts[e];
        if (built == gallery::IndexKind::kIvf) row["nprobe"] = efforts[e];
        if (built == gallery::IndexKind::kScan) row["rerank"] = efforts[e];
        sweep.push_back(row);
    }
    nlohmann::json out{{"size", b.size},
                       {"dim", b.dim},
                       {"data", b.data},
                       {"index", std::string(gallery::IndexKindName(built))},
                       {"queries", b.queries},
                       {"p50_ms", first.p50},
                       {"p99_ms", first.p99},
                       {"recall_at_1", first.recall},
                       {"recall_queries", recall_queries},
                       {"bytes_per_template", double((*reopened)->MemoryBytes()) / double(b.size)},
                       {"snapshot_bytes_per_template", snapshot_bytes / double(b.size)},
                       {"build_s", build_s},
                       {"open_s", open_s}};
    if (sweep.size() > 1) out["sweep"] = sweep;
    if (built == gallery::IndexKind::kHnsw) {
        out["hnsw_m"] = b.hnsw_m;
        out["ef_search"] = efforts.front();
    }
    if (built == gallery::IndexKind::kIvf) out["nprobe"] = efforts.front();
    if (built == gallery::IndexKind::kScan) out["rerank"] = efforts.front();
    reopened->reset();
    if (b.with_store) {
        // Full path: one template per subject, sealed, into SQLite through the bulk path
        // (--batch templates of as many subjects per durable transaction) with the index
        // updated; then the gallery is reopened from its sealed snapshot.
        char tmpl[] = "/tmp/fg-bench-XXXXXX";
        std::string dir = b.keep_dir;
        if (dir.empty()) {
            if (!mkdtemp(tmpl)) return Fail(Internal("mkdtemp failed"));
            dir = tmpl;
        } else {
            std::error_code ec;
            std::filesystem::create_directories(dir, ec);
            if (std::filesystem::exists(dir + "/bench.db"))
                return Fail(AlreadyExists(dir + "/bench.db exists"));
            std::ofstream(dir + "/bench.key") << std::string(64, 'a') << "\n";
            std::filesystem::permissions(dir + "/bench.key", std::filesystem::perms::owner_read |
                                                               std::filesystem::perms::owner_write);
        }
        auto key = gallery::ParseKey(std::string(64, 'a'));
        auto keys = std::make_shared<gallery::KeyRing>(*key);
        gallery::GalleryOptions o{
            .location = dir + "/bench.db", .keys = keys, .index = cfg, .snapshot_path = {}};
        o.snapshot_min_size = 1;
        // IVF trains on what it holds, so enrollment batches start the gallery exact.
        o.default_settings = nlohmann::json{{"index", b.index == "ivf" ? "flat" : b.index}};
        {
            auto gal = Gallery::Open(o);
            if (!gal.ok()) return Fail(gal.status());
            t0 = std::chrono::steady_clock::now();
            const size_t batch = size_t(b.batch);
            std::vector<gallery::BulkFace> faces;
            for (size_t i = 0; i < n; i += batch) {
                faces.clear();
                for (size_t j = i; j < std::min(n, i + batch); ++j) {
                    faces.push_back({"s" + std::to_string(j),
                                     {std::vector<float>(&xb[j * d], &xb[j * d] + d), -1.f,
                                      "bench", {}},
                                     ""});
                }
                auto r = (*gal)->EnrollBulk(faces, {.model_id = "bench",
                                                    .create_subject = true,
                                                    .display_name = "",
                                                    .metadata = "{}",
                                                    .force = true});
                if (!r.ok()) return Fail(r.status());
            }
            out["enroll_templates_per_s"] = double(n) / Seconds(t0);
            out["enroll_batch"] = b.batch;
            auto st = (*gal)->Stats();
            if (st.ok()) out["store_index"] = st->index_kind;
            t0 = std::chrono::steady_clock::now();
            if (Status s2 = (*gal)->Close(); !s2.ok()) return Fail(s2);
            out["snapshot_write_s"] = Seconds(t0);
        }
        t0 = std::chrono::steady_clock::now();
        auto gal = Gallery::Open(o);
        if (!gal.ok()) return Fail(gal.status());
        out["gallery_open_s"] = Seconds(t0);
        out["gallery_open_source"] = (*gal)->Stats()->index_source;
        out["db_bytes_per_template"] =
            double(std::filesystem::file_size(dir + "/bench.db")) / double(n);
        gal->reset();
        if (b.keep_dir.empty()) std::filesystem::remove_all(dir);
    }
    if (b.json) {
        PrintJson(out);
    } else {
        std::cout << out.dump(2) << "\n";
    }
    return kExitOk;
}

}  // namespace

void RegisterBenchGalleryCommand(CLI::App& app, Action& action) {
    auto b = std::make_shared<BenchArgs>();
    CLI::App* bench = SubcommandOf(app, "bench", "Benchmarks");
    CLI::App* bg =
        bench->add_subcommand("gallery", "Identify latency and recall on a synthetic gallery");
    bg->add_option("--size", b->size, "Templates")->capture_default_str();
    bg->add_option("--dim", b->dim, "Dimension")->capture_default_str();
    bg->add_option("--index", b->index, "auto, flat, scan, hnsw, ivf")->capture_default_str();
    bg->add_option("--queries", b->queries, "Probes")->capture_default_str();
    bg->add_option("--data", b->data,
                   "Synthetic vectors: face (spread like face embeddings, see BENCHMARKS.md) or "
                   "uniform (on the sphere: the worst case for approximate indexes)")
        ->check(CLI::IsMember({"face", "uniform"}))
        ->capture_default_str();
    bg->add_option("--ef-search", b->ef_search,
                   "HNSW efSearch; several values are measured on one build (sweep)")
        ->delimiter(',')
        ->capture_default_str();
    bg->add_option("--nprobe", b->nprobe, "IVF nprobe; several values give a sweep")
        ->delimiter(',')
        ->capture_default_str();
    bg->add_option("--nlist", b->nlist, "IVF lists (0: 4 sqrt(N))")->capture_default_str();
    bg->add_option("--rerank", b->rerank,
                   "scan: candidates re-ranked exactly; several values give a sweep")
        ->delimiter(',')
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bg->add_option("--scan-dims", b->scan_dims,
                   "scan: coded principal components (0: enough for the index's variance share)")
        ->check(CLI::Range(0, 512))
        ->capture_default_str();
    bg->add_option("--hnsw-m", b->hnsw_m, "HNSW M")->capture_default_str();
    bg->add_flag("--with-store", b->with_store,
                 "Also bulk-enroll into SQLite (throughput) and reopen the gallery");
    bg->add_option("--keep-dir", b->keep_dir,
                   "With --with-store: write the gallery to DIR/bench.db (key in DIR/bench.key) "
                   "and keep it, e.g. to time `facegate gallery stats --db DIR/bench.db`");
    bg->add_option("--batch", b->batch, "Templates per enrollment transaction (--with-store)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    bg->add_flag("--json", b->json, "JSON output");
    bg->callback([b, &action] { action = [b] { return RunBench(*b); }; });
}

}  // namespace fg::cli
