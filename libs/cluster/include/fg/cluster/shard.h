// SPDX-License-Identifier: Apache-2.0
// The sharded, replicated gallery (docs/scale.md, "Sharded gallery"): subjects are split into S
// shards by a hash of their id; a worker holds some shards in memory (partial gallery replicas
// loaded from the system of record and following its change log) and answers queries for them
// over the bus's request/reply; any worker scatter-gathers a probe to one replica of every shard
// and merges the top-k exactly. This header: the partitioning and the wire format of a query.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fg/base/status.h"
#include "fg/core/embedding.h"
#include "fg/gallery/gallery.h"

namespace fg::gallery {
class KeyRing;
}

namespace fg::cluster {

inline constexpr int kMaxShards = 1024;

/// The shard of a subject: FNV-1a 64 of its id modulo `shards` (>= 1). Stable across versions
/// and machines: it decides which replica holds a subject, so it must never change.
int ShardOf(std::string_view subject_id, int shards);

/// "0,2,5", "0-3", "all" (every shard of `shards`) into a sorted list of distinct shards.
/// InvalidArgument naming `what` for a bad list or a shard outside 0..shards-1.
Result<std::vector<int>> ParseShardList(std::string_view text, int shards, std::string_view what);

/// NATS subject a shard's replicas serve: fg.shard.<gallery>.<shards>.<shard> (the shard count is
/// in the subject, so workers started with another S never answer each other).
std::string ShardSubject(std::string_view gallery, int shards, int shard);
/// Subject every node answers `facegate cluster status` on.
inline constexpr const char* kStatusSubject = "fg.cluster.status";

/// Wire format major version (schema: libs/cluster/schema/shard.md). A newer major is refused.
inline constexpr int kShardProtocolMajor = 1;
/// Decoding refuses larger messages.
inline constexpr std::size_t kMaxShardMessageBytes = 256 * 1024;

/// A probe sent to one shard. The probe is biometric: it is sealed with the gallery key when
/// one is given (every replica holds it).
struct ShardQuery {
    int shards = 1;
    int shard = 0;
    int k = 1;                   ///< candidates wanted (the caller asks top_k + 1, for the margin)
    Embedding probe;             ///< model_id + unit vector
};

/// A replica's answer: its best candidates (subject ids and scores, no names, no vectors) and
/// what it knows, so the caller can decide with the newest settings.
struct ShardReply {
    int shard = 0;
    std::string replica;              ///< the answering worker's id
    std::int64_t applied_change = 0;  ///< the gallery change log position the answer reflects
    std::int64_t templates = 0;       ///< templates the replica holds for this shard
    float threshold = 0, margin = 0;  ///< the gallery's settings as this replica knows them
    int top_k = 5;
    std::vector<gallery::Candidate> candidates;  ///< best first (display_name empty)
    /// Set when the replica could not answer: "failed_precondition" (another model, a shard it
    /// does not hold), "invalid_argument" (a bad probe) or "internal"; message says why.
    std::string error_code, error_message;
};

Result<std::string> EncodeShardQuery(const ShardQuery& q, const gallery::KeyRing* keys);
/// InvalidArgument naming the field for anything malformed; FailedPrecondition for a newer major
/// version or a sealed probe without a key (or with an unknown key); DataLoss when the sealed
/// probe fails authentication. Never throws.
Result<ShardQuery> DecodeShardQuery(std::string_view bytes, const gallery::KeyRing* keys);

std::string EncodeShardReply(const ShardReply& r);
/// Same errors as DecodeShardQuery (replies are never sealed: ids and scores only).
Result<ShardReply> DecodeShardReply(std::string_view bytes);

}  // namespace fg::cluster
