// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for the sharded gallery's wire format: shard queries, shard replies and node
// status answers all arrive from the bus, which any client of it can write. Each decoder runs on
// the input (queries with and without a gallery key); whatever decodes must re-encode and decode
// to the same message. Build and run with scripts/fuzz; tests/fuzz_replay_test.cc (fg_cluster_unit)
// replays the seed corpus in every dev build.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fg/cluster/cluster_status.h"
#include "fg/cluster/shard.h"
#include "fg/gallery/crypto.h"

namespace {
const fg::gallery::KeyRing& FuzzKeys() {
    static const fg::gallery::KeyRing keys = [] {
        auto key = fg::gallery::ParseKey(std::string(64, '7'));
        if (!key.ok()) std::abort();
        return fg::gallery::KeyRing(*key);
    }();
    return keys;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    for (const fg::gallery::KeyRing* keys : {&FuzzKeys(), static_cast<const fg::gallery::KeyRing*>(nullptr)}) {
        auto q = fg::cluster::DecodeShardQuery(bytes, keys);
        if (!q.ok()) continue;
        auto again = fg::cluster::EncodeShardQuery(*q, keys);
        if (!again.ok()) continue;  // e.g. a plain probe re-sealed: never fails, but stay total
        auto back = fg::cluster::DecodeShardQuery(*again, keys);
        if (!back.ok() || back->probe.values != q->probe.values || back->shard != q->shard || back->k != q->k)
            std::abort();
    }
    if (auto r = fg::cluster::DecodeShardReply(bytes); r.ok()) {
        auto back = fg::cluster::DecodeShardReply(fg::cluster::EncodeShardReply(*r));
        if (!back.ok() || back->candidates.size() != r->candidates.size() || back->replica != r->replica) std::abort();
    }
    if (auto s = fg::cluster::DecodeNodeStatus(bytes); s.ok()) {
        auto back = fg::cluster::DecodeNodeStatus(fg::cluster::EncodeNodeStatus(*s));
        if (!back.ok() || back->held != s->held || back->node != s->node) std::abort();
    }
    return 0;
}
