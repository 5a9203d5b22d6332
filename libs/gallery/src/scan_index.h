// SPDX-License-Identifier: Apache-2.0
// The "scan" index: a full scan over 4-bit codes of the templates' leading principal
// components, then an exact re-rank of the best candidates with the full vectors.
//
// Why not a graph or IVF: a face probe sits at cosine ~0.7 from its own template while
// 1M impostors spread over ~100 effective dimensions, so the right neighbour has no close
// neighbourhood for a graph walk or a coarse cell to home in on (HNSW at 1M: recall 0.90 at
// 1.7 ms; IVF-Flat: 0.96 at 31 ms; BENCHMARKS.md "Gallery"). The same gap makes a coarse score
// enough to shortlist it: on face-shaped data the exact best template ranks in the top 80 of 1M
// by the 4-bit score. A 1M scan reads 32-48 MB, a millisecond at this machine's bandwidth.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "fg/gallery/index.h"

namespace fg::gallery {

Result<std::unique_ptr<FaceIndex>> BuildScanIndex(const IndexConfig& config,
                                                  std::span<const std::int64_t> ids,
                                                  std::span<const float> vectors);

/// Argument checks shared by every index kind (index.cc).
Status CheckAddSizes(size_t floats, size_t ids, int dim);
Status CheckQuerySize(size_t values, int dim);

/// The common snapshot header (magic, format, kind, dim, no tombstones); index.cc owns it.
std::vector<std::uint8_t> SnapshotHeader(IndexKind kind, int dim);

/// `payload` is what follows the common snapshot header.
Result<std::unique_ptr<FaceIndex>> DeserializeScanIndex(const IndexConfig& config, int dim,
                                                        std::span<const std::uint8_t> payload);

}  // namespace fg::gallery
