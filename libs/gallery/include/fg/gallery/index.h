// SPDX-License-Identifier: Apache-2.0
// The vector index of a gallery: FAISS inner-product search over L2-normalised templates,
// keyed by the store's face ids. Exact (flat) for small galleries, a compressed scan with exact
// re-ranking ("scan") past a measured size (see BENCHMARKS.md "Gallery"), HNSW or IVF on
// request. The public header does not include FAISS.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fg/base/status.h"

namespace fg::gallery {

// Values are stored in snapshots: append only.
enum class IndexKind { kAuto, kFlat, kHnsw, kIvf, kScan };

std::string_view IndexKindName(IndexKind kind);
Result<IndexKind> ParseIndexKind(std::string_view name);

struct IndexConfig {
    IndexKind kind = IndexKind::kAuto;
    int dim = 512;
    /// kAuto: exact search up to this many templates (about a millisecond), "scan" above.
    /// Graph and cell indexes miss face probes often (a genuine probe sits at cosine ~0.7 from
    /// its template: HNSW at 1M recall@1 0.90 at 1.7 ms, IVF-Flat 0.96 at 31 ms); the scan
    /// keeps recall@1 >= 0.999 (BENCHMARKS.md "Gallery").
    std::int64_t auto_scan_above = 20000;
    int hnsw_m = 32;
    int hnsw_ef_construction = 64;
    int hnsw_ef_search = 96;
    int ivf_nlist = 0;  ///< 0: 4 * sqrt(n) at build
    int ivf_nprobe = 32;
    /// scan: principal components coded (4 bits each); 0 = the fewest, in runs of 8, that keep
    /// `scan_keep_variance` of the variance (72 of 512 on face-shaped data).
    int scan_dims = 0;
    float scan_keep_variance = 0.75f;
    /// scan: candidates re-ranked exactly with the full vectors (at least k).
    int scan_rerank = 128;
    Status Validate() const;
};

struct Neighbor {
    std::int64_t id = 0;
    float score = 0;  ///< inner product = cosine similarity for unit vectors
};

/// Thread-safety: Search is safe concurrently with itself; Add/Remove/Save take an exclusive
/// lock, so all methods may be called from any thread.
class FaceIndex {
  public:
    virtual ~FaceIndex() = default;
    /// Builds an index of the resolved kind (kAuto resolved with `expected_size`) holding the
    /// given n x dim row-major vectors (IVF trains on them).
    static Result<std::unique_ptr<FaceIndex>> Build(const IndexConfig& config,
                                                    std::span<const std::int64_t> ids,
                                                    std::span<const float> vectors);
    /// Restores a snapshot written by Serialize; DataLoss when it does not parse.
    static Result<std::unique_ptr<FaceIndex>> Deserialize(const IndexConfig& config,
                                                          std::span<const std::uint8_t> bytes);

    virtual IndexKind kind() const = 0;
    virtual int dim() const = 0;
    /// Live (not removed) templates.
    virtual std::int64_t size() const = 0;
    virtual Status Add(std::span<const std::int64_t> ids, std::span<const float> vectors) = 0;
    /// Removes ids; unknown ids are ignored. Returns how many were removed.
    virtual Result<std::int64_t> Remove(std::span<const std::int64_t> ids) = 0;
    /// The k best templates, best first.
    virtual Result<std::vector<Neighbor>> Search(std::span<const float> query, int k) const = 0;
    /// Sorted live ids (for the agreement check against the store).
    virtual std::vector<std::int64_t> Ids() const = 0;
    virtual Result<std::vector<std::uint8_t>> Serialize() const = 0;
    /// Copies out the live vectors and their ids (to rebuild as another kind).
    virtual Status ExportVectors(std::vector<std::int64_t>& ids,
                                 std::vector<float>& vectors) const = 0;
    /// Approximate resident bytes of the index.
    virtual std::int64_t MemoryBytes() const = 0;
    /// Applies the search-time effort of `config` (HNSW efSearch, IVF nprobe, scan re-rank
    /// count); exact indexes
    /// ignore it. For measuring recall against latency without rebuilding.
    virtual void SetSearchEffort(const IndexConfig& config) = 0;
};

}  // namespace fg::gallery
