// SPDX-License-Identifier: Apache-2.0
// Strangers: online clustering of unknown sightings into same-person groups, with the gallery's
// calibrated threshold. See docs/history.md "Strangers" for the method and BENCHMARKS.md
// "Strangers" for purity and fragmentation measured on CFP and the video clips.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace fg::history {

/// How a sighting is scored against a stranger (kExemplarAndCentroid is the default; the others
/// exist to measure it, see BENCHMARKS.md "Strangers").
enum class StrangerRule {
    kExemplarAndCentroid,  ///< best exemplar >= threshold and centroid >= threshold + margin
    kExemplar,             ///< best exemplar >= threshold (single linkage: chains)
    kCentroid,             ///< centroid >= threshold
};

struct StrangerOptions {
    float threshold = 0.40f;  ///< the gallery's calibrated threshold (the caller passes it)
    int max_exemplars = 8;    ///< embeddings kept per stranger for matching
    /// Anti-chaining guard: a sighting joins only if its cosine to the stranger's centroid (the
    /// normalised mean of every member) is also >= threshold + centroid_margin. 0.05 because a
    /// wrong join is permanent (a named stranger enrolls everyone in it) while a split is one
    /// Merge away: on CFP it cuts mixed strangers ~5x for ~8% more strangers (BENCHMARKS.md
    /// "Strangers").
    float centroid_margin = 0.05f;
    StrangerRule rule = StrangerRule::kExemplarAndCentroid;
};

struct StrangerMatch {
    std::int64_t stranger_id = 0;
    float score = 0;  ///< the score the rule ranked the joined stranger by (0 when created)
    bool created = false;
};

/// Online clustering of unknown sightings into same-person groups. Each stranger keeps its
/// `max_exemplars` best-quality member embeddings plus a running centroid of all members; a
/// sighting joins the stranger whose best exemplar score is >= threshold and highest, provided the
/// centroid also agrees (chaining guard). Matching is one pass over a flat, contiguous matrix of
/// all exemplars.
/// Thread-safety: none; callers serialise.
class StrangerClusterer {
  public:
    explicit StrangerClusterer(StrangerOptions options);
    ~StrangerClusterer();
    StrangerClusterer(StrangerClusterer&&) noexcept;
    StrangerClusterer& operator=(StrangerClusterer&&) noexcept;

    /// Joins the best stranger scoring >= threshold, else founds stranger `new_id` (ids are the
    /// caller's, persistent). An empty embedding or one whose dimension differs from the first
    /// one seen, a non-finite value, or a `new_id` already in use when a stranger must be founded
    /// is rejected: {stranger_id = 0, created = false}. Re-assigning a known sighting moves it.
    StrangerMatch Assign(std::int64_t sighting_id, std::span<const float> unit_embedding,
                         float quality, std::int64_t new_id);
    /// Re-adds a stored member at open (no matching).
    void Restore(std::int64_t stranger_id, std::int64_t sighting_id,
                 std::span<const float> unit_embedding, float quality);
    /// Moves every member of `from` into `into`; `from` ceases to exist. Unknown ids: no-op.
    void Merge(std::int64_t from, std::int64_t into);
    /// Forgets a stranger (dismissed or named).
    void Remove(std::int64_t stranger_id);
    /// Forgets one sighting (purged); a stranger left without members is removed.
    void RemoveSighting(std::int64_t sighting_id);
    /// Number of strangers.
    std::size_t size() const;
    /// Changes the threshold for the sightings assigned from now on (existing strangers stay as
    /// they are: a lower threshold makes no retroactive merges). The store calls it with the
    /// gallery's live threshold, so /v1/settings or a saved calibration applies without a
    /// restart. A non-finite value or one outside [-1, 1] is ignored (returns false).
    bool SetThreshold(float threshold);

    // Additions beyond the contract (for evaluation and tests).
    /// The stranger holding `sighting_id`, or 0.
    std::int64_t StrangerOf(std::int64_t sighting_id) const;
    /// Members (sighting ids) of a stranger, in insertion order; empty if unknown.
    std::vector<std::int64_t> Members(std::int64_t stranger_id) const;
    const StrangerOptions& options() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fg::history
