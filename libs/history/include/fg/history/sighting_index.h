// SPDX-License-Identifier: Apache-2.0
// Search by face over stored sightings: an exhaustive scan of compact codes (int8 by default,
// 0.5 KB per 512-d sighting: 1M sightings in about 520 MB) whose score error is far below the
// spacing of face scores. BENCHMARKS.md "Strangers" has memory, latency and recall at 1M.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "fg/base/status.h"

namespace fg::history {

/// How a sighting's embedding is held in memory.
enum class SightingCodec {
    kInt8,     ///< per-vector scaled int8 (dim + 4 bytes); cosine error ~1e-3 at most
    kFloat16,  ///< IEEE half (2 * dim bytes); cosine error ~1e-4
    kFloat32,  ///< exact (4 * dim bytes)
};

/// Exact search over stored sightings' embeddings (search by face): every stored code is
/// scored, nothing is skipped. Thread-safe (internal shared_mutex): Search runs concurrently
/// with itself; Add/Remove take the lock exclusively.
class SightingIndex {
  public:
    explicit SightingIndex(int dim, SightingCodec codec = SightingCodec::kInt8);
    ~SightingIndex();
    SightingIndex(const SightingIndex&) = delete;
    SightingIndex& operator=(const SightingIndex&) = delete;

    /// Adds (or replaces) a sighting. InvalidArgument when the dimension differs from dim() or a
    /// value is not finite.
    Status Add(std::int64_t sighting_id, std::span<const float> unit_embedding);
    /// Unknown ids are ignored.
    void Remove(std::int64_t sighting_id);
    /// Best first; at most k with score >= min_score. Empty when the probe's dimension differs.
    std::vector<std::pair<std::int64_t, float>> Search(std::span<const float> unit_probe, int k,
                                                       float min_score) const;
    std::size_t size() const;

    // Additions beyond the contract.
    int dim() const;
    SightingCodec codec() const;
    /// Approximate resident bytes (codes, scales, ids and the id map).
    std::size_t MemoryBytes() const;
    /// Reserves room for n sightings (bulk load at open).
    void Reserve(std::size_t n);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fg::history
