// SPDX-License-Identifier: Apache-2.0
#include "scan_index.h"

#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "kernels.h"

namespace fg::gallery {

namespace {

namespace k = kernels;

constexpr std::int64_t kMinTrain = 1024;      // fewer templates: exact search
constexpr std::int64_t kTrainSample = 65536;  // PCA and quantiser fitted on at most this many
constexpr std::int64_t kChunkBlocks = 2048;   // 32k templates per parallel work item
constexpr int kMaxDims = 512;                 // 64 runs of 8 dims (the kernel's limit)
constexpr std::uint32_t kPayloadVersion = 1;

class ScanIndex final : public FaceIndex {
  public:
    ScanIndex(const IndexConfig& config, int dim) : config_(config), dim_(dim) {}

    IndexKind kind() const override { return IndexKind::kScan; }
    int dim() const override { return dim_; }
    std::int64_t size() const override {
        std::shared_lock lock(mu_);
        return std::int64_t(ids_.size());
    }

    Status Add(std::span<const std::int64_t> ids, std::span<const float> vectors) override {
        FG_RETURN_IF_ERROR(CheckAddSizes(vectors.size(), ids.size(), dim_));
        std::unique_lock lock(mu_);
        std::unordered_set<std::int64_t> batch;
        for (std::int64_t id : ids) {
            if (rows_.count(id) || !batch.insert(id).second)
                return AlreadyExists("index already holds id " + std::to_string(id));
        }
        const std::int64_t first = std::int64_t(ids_.size());
        ids_.insert(ids_.end(), ids.begin(), ids.end());
        vectors_.insert(vectors_.end(), vectors.begin(), vectors.end());
        for (size_t i = 0; i < ids.size(); ++i) rows_.emplace(ids[i], first + std::int64_t(i));
        const std::int64_t n = std::int64_t(ids_.size());
        // The components are refitted whenever the gallery has grown 4x since the last fit,
        // so a gallery enrolled a batch at a time ends up described by most of its people.
        if (n >= kMinTrain && (!trained_ || n >= 4 * trained_at_)) {
            // A failed fit changes nothing: the gallery stays exact, or on its old components.
            if (TrainLocked().ok()) return Status::Ok();
        }
        if (trained_) EncodeRows(first, n);
        return Status::Ok();
    }

    Result<std::int64_t> Remove(std::span<const std::int64_t> ids) override {
        std::unique_lock lock(mu_);
        std::int64_t removed = 0;
        std::vector<std::uint8_t> codes(static_cast<size_t>(m_));
        for (std::int64_t id : ids) {
            auto it = rows_.find(id);
            if (it == rows_.end()) continue;
            // Swap-with-last keeps rows dense: no tombstones, no rebuilds.
            const std::int64_t row = it->second, last = std::int64_t(ids_.size()) - 1;
            rows_.erase(it);
            if (row != last) {
                ids_[size_t(row)] = ids_[size_t(last)];
                rows_[ids_[size_t(row)]] = row;
                std::memcpy(&vectors_[size_t(row) * dim_], &vectors_[size_t(last) * dim_],
                            sizeof(float) * size_t(dim_));
                if (trained_) {
                    k::GetCodes(Block(last), groups_, int(last % k::kBlock), codes.data());
                    k::PutCodes(Block(row), groups_, int(row % k::kBlock), codes.data());
                }
            }
            ids_.pop_back();
            vectors_.resize(vectors_.size() - size_t(dim_));
            if (trained_)
                codes_.resize(size_t(BlocksFor(std::int64_t(ids_.size()))) * BlockBytes());
            ++removed;
        }
        return removed;
    }

    Result<std::vector<Neighbor>> Search(std::span<const float> query, int kk) const override {
        FG_RETURN_IF_ERROR(CheckQuerySize(query.size(), dim_));
        std::shared_lock lock(mu_);
        const std::int64_t n = std::int64_t(ids_.size());
        std::vector<Neighbor> out;
        if (kk <= 0 || n == 0) return out;
        if (!trained_) {
            for (const auto& [s, row] :
                 k::ExactTopK(vectors_.data(), n, size_t(dim_), query.data(), kk))
                out.push_back({ids_[size_t(row)], s});
            return out;
        }
        // 1. The query's weights on the codes: projection times quantiser step, as int8.
        std::vector<float> w(static_cast<size_t>(m_));
        float wmax = 0;
        for (int j = 0; j < m_; ++j) {
            const float y =
                k::Dot(&proj_[size_t(j) * dim_], query.data(), size_t(dim_)) + bias_[size_t(j)];
            w[size_t(j)] = y * step_[size_t(j)];
            wmax = std::max(wmax, std::fabs(w[size_t(j)]));
        }
        std::vector<std::int8_t> q(size_t(m_), 0);
        if (wmax > 0) {
            for (int j = 0; j < m_; ++j)
                q[size_t(j)] = std::int8_t(std::lround(w[size_t(j)] * 127.f / wmax));
        }
        // 2. Shortlist by code score, in parallel chunks (dynamic: a busy core takes fewer).
        const int shortlist = int(std::min<std::int64_t>(n, std::max(config_.scan_rerank, kk)));
        const std::int64_t nblocks = BlocksFor(n);
        const std::int64_t nchunks = (nblocks + kChunkBlocks - 1) / kChunkBlocks;
        const int threads =
            int(std::min<std::int64_t>(nchunks, std::max(1, omp_get_max_threads())));
        std::vector<std::pair<std::int32_t, std::int64_t>> cand;
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            k::TopInts top(shortlist);
#pragma omp for schedule(dynamic, 1) nowait
            for (std::int64_t c = 0; c < nchunks; ++c) {
                const std::int64_t b0 = c * kChunkBlocks;
                const std::int64_t nb = std::min(kChunkBlocks, nblocks - b0);
                k::ScanInt4(codes_.data() + size_t(b0) * BlockBytes(), nb, groups_, q.data(),
                            b0 * k::kBlock, n, top);
            }
#pragma omp critical
            cand.insert(cand.end(), top.heap.begin(), top.heap.end());
        }
        if (int(cand.size()) > shortlist) {
            std::nth_element(cand.begin(), cand.begin() + shortlist, cand.end(),
                             [](const auto& a, const auto& b) { return a.first > b.first; });
            cand.resize(size_t(shortlist));
        }
        // 3. Exact re-rank of the shortlist.
        std::vector<std::pair<float, std::int64_t>> scored;
        scored.reserve(cand.size());
        for (size_t i = 0; i < cand.size(); ++i) {
            if (i + 4 < cand.size())
                __builtin_prefetch(&vectors_[size_t(cand[i + 4].second) * dim_]);
            const std::int64_t row = cand[i].second;
            scored.emplace_back(k::Dot(query.data(), &vectors_[size_t(row) * dim_], size_t(dim_)),
                                row);
        }
        std::sort(scored.begin(), scored.end(), [&](const auto& a, const auto& b) {
            return a.first > b.first ||
                   (a.first == b.first && ids_[size_t(a.second)] < ids_[size_t(b.second)]);
        });
        for (size_t i = 0; i < scored.size() && int(out.size()) < kk; ++i)
            out.push_back({ids_[size_t(scored[i].second)], scored[i].first});
        return out;
    }

    std::vector<std::int64_t> Ids() const override {
        std::shared_lock lock(mu_);
        std::vector<std::int64_t> ids = ids_;
        std::sort(ids.begin(), ids.end());
        return ids;
    }

    Status ExportVectors(std::vector<std::int64_t>& ids,
                         std::vector<float>& vectors) const override {
        std::shared_lock lock(mu_);
        ids = ids_;
        vectors = vectors_;
        return Status::Ok();
    }

    Result<std::vector<std::uint8_t>> Serialize() const override {
        std::shared_lock lock(mu_);
        std::vector<std::uint8_t> out = SnapshotHeader(IndexKind::kScan, dim_);
        const std::uint64_t n = ids_.size();
        const size_t header = out.size();
        const size_t total =
            header + 4 * sizeof(std::uint32_t) + 2 * sizeof(std::uint64_t) +
            sizeof(float) * (proj_.size() + bias_.size() + lo_.size() + step_.size()) +
            sizeof(std::int64_t) * n + sizeof(float) * vectors_.size() + codes_.size();
        out.resize(total);
        size_t pos = header;
        auto put = [&](const void* p, size_t bytes) {
            if (bytes) std::memcpy(out.data() + pos, p, bytes);
            pos += bytes;
        };
        const std::uint32_t head[4] = {kPayloadVersion, trained_ ? 1u : 0u, std::uint32_t(m_), 0};
        put(head, sizeof head);
        const std::uint64_t counts[2] = {n, std::uint64_t(trained_at_)};
        put(counts, sizeof counts);
        put(proj_.data(), sizeof(float) * proj_.size());
        put(bias_.data(), sizeof(float) * bias_.size());
        put(lo_.data(), sizeof(float) * lo_.size());
        put(step_.data(), sizeof(float) * step_.size());
        put(ids_.data(), sizeof(std::int64_t) * n);
        put(vectors_.data(), sizeof(float) * vectors_.size());
        put(codes_.data(), codes_.size());
        return out;
    }

    Status Restore(std::span<const std::uint8_t> p) {
        size_t pos = 0;
        auto take = [&](void* dst, size_t bytes) {
            if (bytes > p.size() - pos) return false;
            if (bytes) std::memcpy(dst, p.data() + pos, bytes);
            pos += bytes;
            return true;
        };
        std::uint32_t head[4];
        std::uint64_t counts[2];
        if (!take(head, sizeof head) || !take(counts, sizeof counts))
            return DataLoss("scan index snapshot truncated");
        if (head[0] != kPayloadVersion || head[1] > 1 || head[2] > std::uint32_t(kMaxDims) ||
            head[2] % 8 != 0 || (head[1] == 1) != (head[2] > 0))
            return DataLoss("scan index snapshot header is damaged");
        trained_ = head[1] == 1;
        m_ = int(head[2]);
        groups_ = m_ / 8;
        const std::uint64_t n = counts[0];
        const size_t row_bytes = sizeof(std::int64_t) + sizeof(float) * size_t(dim_);
        if (n > p.size() / row_bytes) return DataLoss("scan index snapshot truncated");
        trained_at_ = std::int64_t(counts[1]);
        const size_t md = size_t(m_) * size_t(dim_);
        proj_.resize(md);
        bias_.resize(size_t(m_));
        lo_.resize(size_t(m_));
        step_.resize(size_t(m_));
        ids_.resize(n);
        vectors_.resize(n * size_t(dim_));
        codes_.resize(trained_ ? size_t(BlocksFor(std::int64_t(n))) * BlockBytes() : 0);
        if (!take(proj_.data(), sizeof(float) * md) || !take(bias_.data(), sizeof(float) * m_) ||
            !take(lo_.data(), sizeof(float) * m_) || !take(step_.data(), sizeof(float) * m_) ||
            !take(ids_.data(), sizeof(std::int64_t) * n) ||
            !take(vectors_.data(), sizeof(float) * vectors_.size()) ||
            !take(codes_.data(), codes_.size()))
            return DataLoss("scan index snapshot truncated");
        if (pos != p.size()) return DataLoss("scan index snapshot has trailing bytes");
        for (size_t j = 0; j < size_t(m_); ++j) {
            if (!std::isfinite(bias_[j]) || !std::isfinite(step_[j]) || !(step_[j] > 0))
                return DataLoss("scan index snapshot quantiser is damaged");
        }
        rows_.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            if (!rows_.emplace(ids_[i], std::int64_t(i)).second)
                return DataLoss("scan index snapshot repeats id " + std::to_string(ids_[i]));
        }
        return Status::Ok();
    }

    std::int64_t MemoryBytes() const override {
        std::shared_lock lock(mu_);
        const std::int64_t n = std::int64_t(ids_.size());
        // vectors + id + hash-map node and bucket + 4-bit codes
        return n * (std::int64_t(dim_) * 4 + 8 + 40) + std::int64_t(codes_.size()) +
               std::int64_t(proj_.size()) * 4;
    }

    void SetSearchEffort(const IndexConfig& config) override {
        std::unique_lock lock(mu_);
        config_.scan_rerank = config.scan_rerank;
    }

    Status TrainLocked() {
        const std::int64_t n = std::int64_t(ids_.size());
        const int max_dims = std::min(kMaxDims, dim_ / 8 * 8);
        if (max_dims < 8) return Status::Ok();  // tiny dims: exact search stays
        // A strided sample: enrolment order (batches, sites) must not bias the components.
        const std::int64_t ns = std::min(n, kTrainSample);
        std::vector<float> sample(size_t(ns) * dim_);
        for (std::int64_t i = 0; i < ns; ++i) {
            const std::int64_t row = i * n / ns;
            std::memcpy(&sample[size_t(i) * dim_], &vectors_[size_t(row) * dim_],
                        sizeof(float) * dim_);
        }
        faiss::PCAMatrix pca(dim_, max_dims, 0.f, false);
        try {
            pca.train(ns, sample.data());
        } catch (const std::exception& e) {
            return Internal(std::string("scan index PCA: ") + e.what());
        }
        // Dims: the configured count, or the fewest (in runs of 8) that keep the configured
        // share of the variance. The share, not a fixed count, so data that is not
        // face-shaped (more spread out) gets more dims instead of a worse shortlist.
        int m =
            config_.scan_dims > 0 ? std::min(max_dims, (config_.scan_dims + 7) / 8 * 8) : max_dims;
        if (config_.scan_dims <= 0 && !pca.eigenvalues.empty()) {
            double total = 0, kept = 0;
            for (float e : pca.eigenvalues) total += std::max(0.f, e);
            // Variance outside the fitted components counts too (total over all dims).
            double all = 0;
            for (std::int64_t i = 0; i < ns; ++i) {
                const float* x = &sample[size_t(i) * dim_];
                for (int j = 0; j < dim_; ++j) {
                    const double c = double(x[j]) - double(pca.mean[size_t(j)]);
                    all += c * c;
                }
            }
            all /= double(ns);
            total = std::max(total, all);
            m = max_dims;
            for (int j = 0; j < max_dims; ++j) {
                kept += std::max(0.f, pca.eigenvalues[size_t(j)]);
                if (total <= 0 || kept >= config_.scan_keep_variance * total) {
                    m = std::min(max_dims, (j + 1 + 7) / 8 * 8);
                    break;
                }
            }
        }
        m_ = m;
        groups_ = m / 8;
        proj_.assign(pca.A.begin(), pca.A.begin() + std::ptrdiff_t(size_t(m) * dim_));
        bias_.assign(pca.b.begin(), pca.b.begin() + m);
        // 16 levels over mean +- 3 sd of each component.
        std::vector<double> s1(size_t(m), 0), s2(size_t(m), 0);
        for (std::int64_t i = 0; i < ns; ++i) {
            for (int j = 0; j < m; ++j) {
                const double y =
                    k::Dot(&proj_[size_t(j) * dim_], &sample[size_t(i) * dim_], size_t(dim_)) +
                    bias_[size_t(j)];
                s1[size_t(j)] += y;
                s2[size_t(j)] += y * y;
            }
        }
        lo_.resize(size_t(m));
        step_.resize(size_t(m));
        for (int j = 0; j < m; ++j) {
            const double mean = s1[size_t(j)] / double(ns);
            const double sd = std::sqrt(std::max(0.0, s2[size_t(j)] / double(ns) - mean * mean));
            lo_[size_t(j)] = float(mean - 3 * sd);
            step_[size_t(j)] = float(std::max(6 * sd / 15, 1e-9));
        }
        trained_ = true;
        trained_at_ = n;
        codes_.assign(size_t(BlocksFor(n)) * BlockBytes(), 0);
        EncodeRows(0, n);
        return Status::Ok();
    }

  private:
    static std::int64_t BlocksFor(std::int64_t n) { return (n + k::kBlock - 1) / k::kBlock; }
    size_t BlockBytes() const { return size_t(groups_) * k::kGroupBytes; }
    std::uint8_t* Block(std::int64_t row) {
        return codes_.data() + size_t(row / k::kBlock) * BlockBytes();
    }

    void EncodeRows(std::int64_t from, std::int64_t to) {
        codes_.resize(size_t(BlocksFor(to)) * BlockBytes(), 0);
#pragma omp parallel for schedule(static) if (to - from > 16384)
        for (std::int64_t r = from; r < to; ++r) {
            std::uint8_t c[kMaxDims];
            const float* x = &vectors_[size_t(r) * dim_];
            for (int j = 0; j < m_; ++j) {
                const float y =
                    k::Dot(&proj_[size_t(j) * dim_], x, size_t(dim_)) + bias_[size_t(j)];
                const float level = std::nearbyint((y - lo_[size_t(j)]) / step_[size_t(j)]);
                c[j] = std::uint8_t(std::clamp(level, 0.f, 15.f));
            }
            k::PutCodes(Block(r), groups_, int(r % k::kBlock), c);
        }
    }

    IndexConfig config_;
    int dim_;
    bool trained_ = false;
    std::int64_t trained_at_ = 0;
    int m_ = 0, groups_ = 0;
    std::vector<float> proj_, bias_, lo_, step_;  // y = proj x + bias; code = (y - lo) / step
    std::vector<std::int64_t> ids_;
    std::unordered_map<std::int64_t, std::int64_t> rows_;
    std::vector<float> vectors_;
    std::vector<std::uint8_t> codes_;
    mutable std::shared_mutex mu_;
};

}  // namespace

Result<std::unique_ptr<FaceIndex>> BuildScanIndex(const IndexConfig& config,
                                                  std::span<const std::int64_t> ids,
                                                  std::span<const float> vectors) {
    auto index = std::make_unique<ScanIndex>(config, config.dim);
    if (!ids.empty()) FG_RETURN_IF_ERROR(index->Add(ids, vectors));
    return std::unique_ptr<FaceIndex>(std::move(index));
}

Result<std::unique_ptr<FaceIndex>> DeserializeScanIndex(const IndexConfig& config, int dim,
                                                        std::span<const std::uint8_t> payload) {
    IndexConfig c = config;
    c.dim = dim;
    auto index = std::make_unique<ScanIndex>(c, dim);
    FG_RETURN_IF_ERROR(index->Restore(payload));
    return std::unique_ptr<FaceIndex>(std::move(index));
}

}  // namespace fg::gallery
