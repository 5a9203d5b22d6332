// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>

#include "kernels.h"
#include "scan_index.h"

namespace fg::gallery {

std::string_view IndexKindName(IndexKind kind) {
    switch (kind) {
        case IndexKind::kAuto:
            return "auto";
        case IndexKind::kFlat:
            return "flat";
        case IndexKind::kHnsw:
            return "hnsw";
        case IndexKind::kIvf:
            return "ivf";
        case IndexKind::kScan:
            return "scan";
    }
    return "?";
}

Result<IndexKind> ParseIndexKind(std::string_view name) {
    for (IndexKind k : {IndexKind::kAuto, IndexKind::kFlat, IndexKind::kScan, IndexKind::kHnsw,
                        IndexKind::kIvf}) {
        if (IndexKindName(k) == name) return k;
    }
    return InvalidArgument("unknown index kind '" + std::string(name) +
                           "' (auto, flat, scan, hnsw, ivf)");
}

Status IndexConfig::Validate() const {
    if (dim <= 0 || dim > 8192) return InvalidArgument("index dim must be in 1..8192");
    if (hnsw_m < 4 || hnsw_ef_search < 1 || hnsw_ef_construction < 1)
        return InvalidArgument("bad HNSW parameters");
    if (ivf_nlist < 0 || ivf_nprobe < 1) return InvalidArgument("bad IVF parameters");
    if (scan_dims < 0 || scan_rerank < 1 || !(scan_keep_variance > 0) || scan_keep_variance > 1)
        return InvalidArgument("bad scan parameters");
    return Status::Ok();
}

namespace {

using idx_t = faiss::Index::idx_t;

constexpr char kMagic[4] = {'F', 'G', 'I', 'X'};
constexpr std::uint32_t kFormat = 1;

// FAISS reports errors by throwing; every call into it goes through here.
template <typename Fn>
Status Guard(const char* what, Fn&& fn) {
    try {
        fn();
        return Status::Ok();
    } catch (const faiss::FaissException& e) {
        return Internal(std::string("faiss ") + what + ": " + e.what());
    } catch (const std::exception& e) {
        return Internal(std::string(what) + ": " + e.what());
    }
}

class FaissFaceIndex final : public FaceIndex {
  public:
    FaissFaceIndex(IndexKind kind, int dim, std::unique_ptr<faiss::Index> index)
        : kind_(kind), dim_(dim), index_(std::move(index)) {}

    IndexKind kind() const override { return kind_; }
    int dim() const override { return dim_; }
    std::int64_t size() const override {
        std::shared_lock lock(mu_);
        return index_->ntotal - std::int64_t(removed_.size());
    }

    Status Add(std::span<const std::int64_t> ids, std::span<const float> vectors) override {
        FG_RETURN_IF_ERROR(CheckAddSizes(vectors.size(), ids.size(), dim_));
        std::unique_lock lock(mu_);
        if (auto* map = dynamic_cast<faiss::IndexIDMap2*>(index_.get())) {
            for (std::int64_t id : ids) {
                if (map->rev_map.count(id))
                    return AlreadyExists("index already holds id " + std::to_string(id));
            }
        }
        return Guard("add", [&] {
            index_->add_with_ids(idx_t(ids.size()), vectors.data(),
                                 reinterpret_cast<const idx_t*>(ids.data()));
        });
    }

    Result<std::int64_t> Remove(std::span<const std::int64_t> ids) override {
        std::unique_lock lock(mu_);
        if (kind_ == IndexKind::kHnsw) {
            // HNSW graphs cannot delete nodes; removed ids become tombstones filtered at search
            // time, and the graph is rebuilt once they pass a fifth of it.
            auto* map = static_cast<faiss::IndexIDMap2*>(index_.get());
            std::int64_t n = 0;
            for (std::int64_t id : ids) {
                if (map->rev_map.count(id) && removed_.insert(id).second) ++n;
            }
            if (std::int64_t(removed_.size()) > std::max<std::int64_t>(1000, index_->ntotal / 5)) {
                FG_RETURN_IF_ERROR(CompactLocked());
            }
            return n;
        }
        std::int64_t n = 0;
        faiss::IDSelectorBatch sel(idx_t(ids.size()), reinterpret_cast<const idx_t*>(ids.data()));
        FG_RETURN_IF_ERROR(Guard("remove", [&] { n = std::int64_t(index_->remove_ids(sel)); }));
        return n;
    }

    Result<std::vector<Neighbor>> Search(std::span<const float> query, int k) const override {
        FG_RETURN_IF_ERROR(CheckQuerySize(query.size(), dim_));
        std::shared_lock lock(mu_);
        const std::int64_t live = index_->ntotal - std::int64_t(removed_.size());
        k = int(std::min<std::int64_t>(k, live));
        std::vector<Neighbor> out;
        if (k <= 0) return out;
        if (kind_ == IndexKind::kFlat) {
            // FAISS's own single-query scan is scalar in Debian's build (see kernels.h).
            const auto* map = static_cast<const faiss::IndexIDMap2*>(index_.get());
            const auto* flat = static_cast<const faiss::IndexFlat*>(map->index);
            for (const auto& [s, row] :
                 kernels::ExactTopK(flat->get_xb(), flat->ntotal, size_t(dim_), query.data(), k))
                out.push_back({map->id_map[size_t(row)], s});
            return out;
        }
        const int fetch =
            int(std::min<std::int64_t>(index_->ntotal, k + std::int64_t(removed_.size())));
        std::vector<float> d(static_cast<size_t>(fetch));
        std::vector<idx_t> l(static_cast<size_t>(fetch));
        // One query is a few microseconds of work: an OpenMP team per call (FAISS opens one
        // in HNSW search) costs more than it saves and stalls on a busy 2-core host.
        const int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        Status searched =
            Guard("search", [&] { index_->search(1, query.data(), fetch, d.data(), l.data()); });
        omp_set_num_threads(threads);
        FG_RETURN_IF_ERROR(searched);
        for (int i = 0; i < fetch && int(out.size()) < k; ++i) {
            if (l[i] < 0 || removed_.count(l[i])) continue;
            out.push_back({l[i], d[i]});
        }
        return out;
    }

    std::vector<std::int64_t> Ids() const override {
        std::shared_lock lock(mu_);
        return IdsLocked();
    }

    Status ExportVectors(std::vector<std::int64_t>& ids,
                         std::vector<float>& vectors) const override {
        std::shared_lock lock(mu_);
        return ExportLocked(ids, vectors);
    }

    Result<std::vector<std::uint8_t>> Serialize() const override {
        std::shared_lock lock(mu_);
        faiss::VectorIOWriter w;
        auto put = [&](const void* p, size_t n) {
            const size_t at = w.data.size();
            w.data.resize(at + n);
            std::memcpy(w.data.data() + at, p, n);
        };
        put(kMagic, sizeof kMagic);
        const std::uint32_t header[3] = {kFormat, std::uint32_t(kind_), std::uint32_t(dim_)};
        put(header, sizeof header);
        const std::uint64_t ntomb = removed_.size();
        put(&ntomb, sizeof ntomb);
        for (std::int64_t id : removed_) put(&id, sizeof id);
        FG_RETURN_IF_ERROR(Guard("serialize", [&] { faiss::write_index(index_.get(), &w); }));
        return std::move(w.data);
    }

    std::int64_t MemoryBytes() const override {
        std::shared_lock lock(mu_);
        const std::int64_t n = index_->ntotal;
        std::int64_t bytes = n * dim_ * std::int64_t(sizeof(float)) + n * 8;  // vectors + ids
        if (kind_ == IndexKind::kFlat || kind_ == IndexKind::kHnsw)
            bytes += n * 48;  // IDMap2 rev_map node
        if (kind_ == IndexKind::kHnsw) {
            const auto* h = static_cast<const faiss::IndexHNSW*>(
                static_cast<const faiss::IndexIDMap2*>(index_.get())->index);
            bytes += std::int64_t(h->hnsw.neighbors.size() * sizeof(faiss::HNSW::storage_idx_t) +
                                  h->hnsw.offsets.size() * sizeof(size_t) +
                                  h->hnsw.levels.size() * sizeof(int));
        }
        return bytes;
    }

    void SetSearchEffort(const IndexConfig& config) override {
        std::unique_lock lock(mu_);
        config_.hnsw_ef_search = config.hnsw_ef_search;
        config_.ivf_nprobe = config.ivf_nprobe;
        if (kind_ == IndexKind::kHnsw) {
            auto* h = dynamic_cast<faiss::IndexHNSW*>(
                static_cast<faiss::IndexIDMap2*>(index_.get())->index);
            if (h) h->hnsw.efSearch = config.hnsw_ef_search;
        } else if (kind_ == IndexKind::kIvf) {
            auto* ivf = static_cast<faiss::IndexIVF*>(index_.get());
            ivf->nprobe = size_t(std::min<std::int64_t>(config.ivf_nprobe, std::int64_t(ivf->nlist)));
        }
    }

    std::unordered_set<std::int64_t>& removed() { return removed_; }

  private:
    std::vector<std::int64_t> IdsLocked() const {
        std::vector<std::int64_t> ids;
        if (auto* map = dynamic_cast<const faiss::IndexIDMap2*>(index_.get())) {
            ids.reserve(map->id_map.size());
            for (idx_t id : map->id_map) {
                if (!removed_.count(id)) ids.push_back(id);
            }
        } else if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
            for (size_t l = 0; l < ivf->nlist; ++l) {
                const size_t n = ivf->invlists->list_size(l);
                faiss::InvertedLists::ScopedIds lids(ivf->invlists, l);
                ids.insert(ids.end(), lids.get(), lids.get() + n);
            }
        }
        std::sort(ids.begin(), ids.end());
        return ids;
    }

    Status ExportLocked(std::vector<std::int64_t>& ids, std::vector<float>& vectors) const {
        ids.clear();
        vectors.clear();
        return Guard("export", [&] {
            if (auto* map = dynamic_cast<const faiss::IndexIDMap2*>(index_.get())) {
                std::vector<float> v(static_cast<size_t>(dim_));
                for (size_t i = 0; i < map->id_map.size(); ++i) {
                    if (removed_.count(map->id_map[i])) continue;
                    map->index->reconstruct(idx_t(i), v.data());
                    ids.push_back(map->id_map[i]);
                    vectors.insert(vectors.end(), v.begin(), v.end());
                }
            } else if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
                for (size_t l = 0; l < ivf->nlist; ++l) {
                    const size_t n = ivf->invlists->list_size(l);
                    faiss::InvertedLists::ScopedIds lids(ivf->invlists, l);
                    faiss::InvertedLists::ScopedCodes codes(ivf->invlists, l);
                    const auto* f = reinterpret_cast<const float*>(codes.get());
                    ids.insert(ids.end(), lids.get(), lids.get() + n);
                    vectors.insert(vectors.end(), f, f + n * size_t(dim_));
                }
            }
        });
    }

    Status CompactLocked() {
        std::vector<std::int64_t> ids;
        std::vector<float> vectors;
        FG_RETURN_IF_ERROR(ExportLocked(ids, vectors));
        IndexConfig c = config_;
        c.kind = kind_;
        c.dim = dim_;
        FG_ASSIGN_OR_RETURN(auto fresh, FaceIndex::Build(c, ids, vectors));
        index_ = std::move(static_cast<FaissFaceIndex*>(fresh.get())->index_);
        removed_.clear();
        return Status::Ok();
    }

  public:
    IndexConfig config_;

  private:
    IndexKind kind_;
    int dim_;
    std::unique_ptr<faiss::Index> index_;
    std::unordered_set<std::int64_t> removed_;
    mutable std::shared_mutex mu_;
};

// Reads a snapshot in place (faiss::VectorIOReader would need a copy of a 2 GB buffer).
struct SpanReader final : faiss::IOReader {
    explicit SpanReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
    size_t operator()(void* ptr, size_t size, size_t nitems) override {
        if (size == 0) return nitems;
        const size_t n = std::min(nitems, (bytes_.size() - pos_) / size);
        if (n == 0) return 0;  // FAISS reads empty vectors with a null destination
        std::memcpy(ptr, bytes_.data() + pos_, n * size);
        pos_ += n * size;
        return n;
    }
    std::span<const std::uint8_t> bytes_;
    size_t pos_ = 0;
};

Result<std::unique_ptr<faiss::Index>> MakeFaissIndex(const IndexConfig& c, IndexKind kind,
                                                     std::int64_t n) {
    std::unique_ptr<faiss::Index> index;
    FG_RETURN_IF_ERROR(Guard("create", [&] {
        switch (kind) {
            case IndexKind::kFlat: {
                auto* map = new faiss::IndexIDMap2(new faiss::IndexFlatIP(c.dim));
                map->own_fields = true;
                index.reset(map);
                break;
            }
            case IndexKind::kHnsw: {
                auto* h = new faiss::IndexHNSWFlat(c.dim, c.hnsw_m, faiss::METRIC_INNER_PRODUCT);
                h->hnsw.efConstruction = c.hnsw_ef_construction;
                h->hnsw.efSearch = c.hnsw_ef_search;
                auto* map = new faiss::IndexIDMap2(h);
                map->own_fields = true;
                index.reset(map);
                break;
            }
            case IndexKind::kIvf: {
                int nlist = c.ivf_nlist > 0
                                ? c.ivf_nlist
                                : int(4 * std::sqrt(double(std::max<std::int64_t>(n, 1))));
                nlist = std::max(1, nlist);
                auto* q = new faiss::IndexFlatIP(c.dim);
                auto* ivf =
                    new faiss::IndexIVFFlat(q, c.dim, size_t(nlist), faiss::METRIC_INNER_PRODUCT);
                ivf->own_fields = true;
                // k-means on a sample: 64 points per list and 10 rounds place the centroids
                // as well as FAISS's default 256 and 25 for search purposes, at a 10x
                // smaller training cost (minutes at 1M with nlist 4 sqrt(N)).
                ivf->cp.max_points_per_centroid = 64;
                ivf->cp.niter = 10;
                ivf->nprobe = size_t(std::min(c.ivf_nprobe, nlist));
                index.reset(ivf);
                break;
            }
            case IndexKind::kAuto:
            case IndexKind::kScan:  // not a FAISS index (scan_index.cc)
                break;
        }
    }));
    if (!index) return Internal("index kind not resolved");
    return index;
}

}  // namespace

Status CheckAddSizes(size_t floats, size_t ids, int dim) {
    if (floats == ids * size_t(dim)) return Status::Ok();
    return InvalidArgument("index add: " + std::to_string(floats) + " floats for " +
                           std::to_string(ids) + " ids of dim " + std::to_string(dim));
}

Status CheckQuerySize(size_t values, int dim) {
    if (values == size_t(dim)) return Status::Ok();
    return InvalidArgument("query has " + std::to_string(values) + " values, index dim is " +
                           std::to_string(dim));
}

std::vector<std::uint8_t> SnapshotHeader(IndexKind kind, int dim) {
    std::vector<std::uint8_t> out(
        sizeof kMagic + 3 * sizeof(std::uint32_t) + sizeof(std::uint64_t), 0);
    const std::uint32_t header[3] = {kFormat, std::uint32_t(kind), std::uint32_t(dim)};
    std::memcpy(out.data(), kMagic, sizeof kMagic);
    std::memcpy(out.data() + sizeof kMagic, header, sizeof header);
    return out;  // zero tombstones
}

Result<std::unique_ptr<FaceIndex>> FaceIndex::Build(const IndexConfig& config,
                                                    std::span<const std::int64_t> ids,
                                                    std::span<const float> vectors) {
    FG_RETURN_IF_ERROR(config.Validate());
    const std::int64_t n = std::int64_t(ids.size());
    if (vectors.size() != ids.size() * size_t(config.dim))
        return InvalidArgument("index build: size mismatch");
    IndexKind kind = config.kind;
    if (kind == IndexKind::kAuto)
        kind = n > config.auto_scan_above ? IndexKind::kScan : IndexKind::kFlat;
    if (kind == IndexKind::kScan) return BuildScanIndex(config, ids, vectors);
    FG_ASSIGN_OR_RETURN(auto index, MakeFaissIndex(config, kind, n));
    if (kind == IndexKind::kIvf) {
        const std::int64_t need =
            std::int64_t(static_cast<faiss::IndexIVF*>(index.get())->nlist) * 8;
        if (n < need) {
            return FailedPrecondition("an IVF index needs at least " + std::to_string(need) +
                                      " templates to train; use flat or hnsw (or auto)");
        }
        FG_RETURN_IF_ERROR(Guard("train", [&] { index->train(idx_t(n), vectors.data()); }));
    }
    auto out = std::make_unique<FaissFaceIndex>(kind, config.dim, std::move(index));
    out->config_ = config;
    if (n > 0) FG_RETURN_IF_ERROR(out->Add(ids, vectors));
    return std::unique_ptr<FaceIndex>(std::move(out));
}

Result<std::unique_ptr<FaceIndex>> FaceIndex::Deserialize(const IndexConfig& config,
                                                          std::span<const std::uint8_t> bytes) {
    size_t pos = 0;
    auto take = [&](void* dst, size_t n) {
        if (pos + n > bytes.size()) return false;
        std::memcpy(dst, bytes.data() + pos, n);
        pos += n;
        return true;
    };
    char magic[4];
    std::uint32_t header[3];
    std::uint64_t ntomb = 0;
    if (!take(magic, 4) || std::memcmp(magic, kMagic, 4) != 0 || !take(header, sizeof header) ||
        header[0] != kFormat || !take(&ntomb, sizeof ntomb) || ntomb > bytes.size() / 8) {
        return DataLoss("index snapshot header is damaged");
    }
    const auto kind = IndexKind(header[1]);
    const int dim = int(header[2]);
    if (kind != IndexKind::kFlat && kind != IndexKind::kHnsw && kind != IndexKind::kIvf &&
        kind != IndexKind::kScan) {
        return DataLoss("index snapshot has an unknown kind");
    }
    if (dim <= 0 || dim > 8192) return DataLoss("index snapshot has a bad dimension");
    if (kind == IndexKind::kScan) {
        if (ntomb != 0) return DataLoss("index snapshot header is damaged");
        return DeserializeScanIndex(config, dim, bytes.subspan(pos));
    }
    std::unordered_set<std::int64_t> removed;
    for (std::uint64_t i = 0; i < ntomb; ++i) {
        std::int64_t id;
        if (!take(&id, sizeof id)) return DataLoss("index snapshot truncated");
        removed.insert(id);
    }
    SpanReader r(bytes.subspan(pos));
    std::unique_ptr<faiss::Index> index;
    Status s = Guard("read snapshot", [&] { index.reset(faiss::read_index(&r)); });
    if (!s.ok()) return DataLoss(s.message());
    if (!index || index->d != dim) return DataLoss("index snapshot dimension mismatch");
    if (kind == IndexKind::kHnsw) {
        auto* map = dynamic_cast<faiss::IndexIDMap2*>(index.get());
        auto* h = map ? dynamic_cast<faiss::IndexHNSW*>(map->index) : nullptr;
        if (!h) return DataLoss("index snapshot structure mismatch");
        h->hnsw.efSearch = config.hnsw_ef_search;
    } else if (kind == IndexKind::kIvf) {
        auto* ivf = dynamic_cast<faiss::IndexIVF*>(index.get());
        if (!ivf) return DataLoss("index snapshot structure mismatch");
        ivf->nprobe = size_t(std::min<std::int64_t>(config.ivf_nprobe, std::int64_t(ivf->nlist)));
    } else if (!dynamic_cast<faiss::IndexIDMap2*>(index.get())) {
        return DataLoss("index snapshot structure mismatch");
    }
    auto out = std::make_unique<FaissFaceIndex>(kind, dim, std::move(index));
    out->config_ = config;
    out->removed() = std::move(removed);
    return std::unique_ptr<FaceIndex>(std::move(out));
}

}  // namespace fg::gallery
