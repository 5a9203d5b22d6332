// SPDX-License-Identifier: Apache-2.0
// Replays the disk-record fuzzer's seed corpus through its harness in every dev build, so the
// harness compiles and its seeds pass without clang (scripts/fuzz runs the real fuzzer).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

TEST(BusDiskRecordFuzzReplay, SeedCorpusRunsClean) {
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(FG_BUS_DISK_RECORD_CORPUS)) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0)
            << entry.path();
        ++files;
    }
    EXPECT_GE(files, 4);
}
