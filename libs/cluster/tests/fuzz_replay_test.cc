// SPDX-License-Identifier: Apache-2.0
// Replays the shard-protocol fuzzer's seed corpus through its harness in every dev build (the
// harness compiles and its seeds pass without clang; scripts/fuzz runs the real fuzzer).
// FG_CLUSTER_WRITE_SEEDS=<dir> writes the valid seeds (a sealed query needs the harness's key).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "fg/cluster/cluster_status.h"
#include "fg/cluster/shard.h"
#include "fg/gallery/crypto.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fg::cluster {
namespace {

TEST(ClusterShardFuzzReplay, SeedCorpusRunsClean) {
    if (const char* dir = std::getenv("FG_CLUSTER_WRITE_SEEDS")) {
        const fg::gallery::KeyRing keys(*fg::gallery::ParseKey(std::string(64, '7')));
        ShardQuery q{.shards = 3, .shard = 2, .k = 3, .probe = {"test-model@1", {0.6f, 0.8f, 0.f, 0.f}}};
        auto write = [dir](const std::string& name, const std::string& bytes) {
            std::ofstream(std::filesystem::path(dir) / name, std::ios::binary) << bytes;
        };
        write("query_sealed", *EncodeShardQuery(q, &keys));
        write("query_plain", *EncodeShardQuery(q, nullptr));
        ShardReply r{.shard = 2, .replica = "w2.0", .applied_change = 17, .templates = 40, .threshold = 0.4f,
                     .margin = 0.05f, .top_k = 5, .candidates = {{"p1", "", 0.91f, 12}, {"p7", "", 0.2f, 3}}};
        write("reply", EncodeShardReply(r));
        r.candidates.clear();
        r.error_code = "failed_precondition";
        r.error_message = "probe of model a, the gallery's is b";
        write("reply_error", EncodeShardReply(r));
        NodeStatus s{.node = "w1", .role = "worker", .region = "hq", .gallery = "main", .shards = 3, .held = {0, 2},
                     .templates = {{0, 10}, {2, 11}}, .applied_change = 9, .started_unix_ms = 1700000000000};
        s.counters = {{"results", 4}, {"searches", 4}};
        write("node_status", EncodeNodeStatus(s));
    }
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(FG_CLUSTER_SHARD_CORPUS)) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0)
            << entry.path();
        ++files;
    }
    EXPECT_GE(files, 7);
}

}  // namespace
}  // namespace fg::cluster
