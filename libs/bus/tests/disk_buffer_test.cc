// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/disk_buffer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "fg/testing/testing.h"

namespace fg::bus {
namespace {

namespace fs = std::filesystem;

BufferedMessage Msg(int i, std::size_t bytes = 100) {
    return {{Topic::kFaces, "hq", "door-" + std::to_string(i % 3)},
            "door/1.0/" + std::to_string(i),
            std::string(bytes, static_cast<char>('a' + i % 26))};
}

std::unique_ptr<DiskBuffer> OpenAt(const fs::path& dir, std::uint64_t max_bytes = 1 << 20,
                                   std::uint64_t max_records = 1000, std::uint64_t segment = 1 << 16) {
    auto b = DiskBuffer::Open({.dir = dir, .max_bytes = max_bytes, .max_records = max_records,
                               .segment_bytes = segment});
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
}

/// Pops everything, checking the ids come in order from `first`.
int DrainExpecting(DiskBuffer& b, int first) {
    int n = 0;
    for (;;) {
        auto f = b.Front();
        EXPECT_TRUE(f.ok()) << f.status().ToString();
        if (!f.ok() || !*f) break;
        const BufferedMessage want = Msg(first + n);
        EXPECT_EQ((*f)->id, want.id);
        EXPECT_EQ((*f)->data, want.data);
        EXPECT_EQ((*f)->route.camera, want.route.camera);
        EXPECT_EQ((*f)->route.region, "hq");
        EXPECT_TRUE(b.PopFront().ok());
        ++n;
    }
    return n;
}

std::vector<fs::path> Segments(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().starts_with("seg-")) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

TEST(BusDiskRecord, RoundTripsAndRejectsDamage) {
    auto rec = EncodeDiskRecord(42, Msg(7));
    ASSERT_TRUE(rec.ok());
    auto back = DecodeDiskRecord(*rec);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->seq, 42u);
    EXPECT_EQ(back->msg.id, Msg(7).id);
    EXPECT_EQ(back->size, rec->size());
    // Every cut is a torn record, never a shorter valid one.
    for (std::size_t cut = 0; cut < rec->size(); ++cut)
        EXPECT_EQ(DecodeDiskRecord(std::string_view(*rec).substr(0, cut)).status().code(), StatusCode::kOutOfRange);
    // Any flipped bit is detected.
    for (std::size_t i = 0; i < rec->size(); i += 7) {
        std::string bad = *rec;
        bad[i] = static_cast<char>(bad[i] ^ 0x10);
        EXPECT_FALSE(DecodeDiskRecord(bad).ok()) << "byte " << i;
    }
    EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);  // the standard check value
}

TEST(BusDiskBuffer, FifoSurvivesReopenWithFilesPrivate) {
    fg::testing::TmpDir tmp;
    const fs::path dir = tmp / "buf";
    {
        auto b = OpenAt(dir);
        ASSERT_TRUE(b);
        for (int i = 0; i < 50; ++i) ASSERT_TRUE(b->Append(Msg(i)).ok());
        EXPECT_EQ(b->depth(), 50u);
        // A second process must not share the directory.
        EXPECT_EQ(DiskBuffer::Open({.dir = dir}).status().code(), StatusCode::kFailedPrecondition);
        for (int i = 0; i < 10; ++i) ASSERT_TRUE(b->PopFront().ok());
    }
    for (const auto& e : fs::directory_iterator(dir)) {
        struct stat st{};
        ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600) << e.path();
    }
    auto b = OpenAt(dir);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->depth(), 40u);
    ASSERT_TRUE(b->Append(Msg(50)).ok());
    EXPECT_EQ(DrainExpecting(*b, 10), 41);
    EXPECT_EQ(b->stats().dropped_torn, 0u);
}

TEST(BusDiskBuffer, DrainedSegmentsAreDeleted) {
    fg::testing::TmpDir tmp;
    auto b = OpenAt(tmp / "buf", 1 << 20, 1000, /*segment=*/1000);
    ASSERT_TRUE(b);
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(b->Append(Msg(i)).ok());
    EXPECT_GT(Segments(tmp / "buf").size(), 3u);
    EXPECT_EQ(DrainExpecting(*b, 0), 40);
    EXPECT_LE(Segments(tmp / "buf").size(), 1u);
    ASSERT_TRUE(b->Append(Msg(40)).ok());
    EXPECT_EQ(DrainExpecting(*b, 40), 1);
}

TEST(BusDiskBuffer, TornTailIsDroppedNeverMisread) {
    fg::testing::TmpDir tmp;
    const fs::path dir = tmp / "buf";
    {
        auto b = OpenAt(dir);
        for (int i = 0; i < 5; ++i) ASSERT_TRUE(b->Append(Msg(i)).ok());
    }
    // The writer died half-way through a sixth record (kill -9 mid-write).
    auto rec = EncodeDiskRecord(6, Msg(5));
    ASSERT_TRUE(rec.ok());
    const auto segs = Segments(dir);
    ASSERT_EQ(segs.size(), 1u);
    {
        std::ofstream out(segs[0], std::ios::binary | std::ios::app);
        out.write(rec->data(), static_cast<std::streamsize>(rec->size() / 2));
    }
    auto b = OpenAt(dir);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->depth(), 5u);
    EXPECT_EQ(b->stats().dropped_torn, 1u);
    // Appends continue on a clean boundary.
    ASSERT_TRUE(b->Append(Msg(5)).ok());
    b.reset();
    b = OpenAt(dir);
    EXPECT_EQ(b->stats().dropped_torn, 0u);
    EXPECT_EQ(DrainExpecting(*b, 0), 6);
}

TEST(BusDiskBuffer, CorruptRecordStopsTheSegment) {
    fg::testing::TmpDir tmp;
    const fs::path dir = tmp / "buf";
    {
        auto b = OpenAt(dir);
        for (int i = 0; i < 4; ++i) ASSERT_TRUE(b->Append(Msg(i)).ok());
    }
    const auto segs = Segments(dir);
    ASSERT_EQ(segs.size(), 1u);
    // Damage a byte inside the third record's body: records 0 and 1 survive.
    const auto one = EncodeDiskRecord(1, Msg(0))->size();
    {
        std::fstream f(segs[0], std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(static_cast<std::streamoff>(2 * one + kDiskRecordHeader + 20));
        f.put('#');
    }
    auto b = OpenAt(dir);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->depth(), 2u);
    EXPECT_EQ(b->stats().dropped_torn, 1u);
    EXPECT_EQ(DrainExpecting(*b, 0), 2);
}

TEST(BusDiskBuffer, FullDropsOldestAndCounts) {
    fg::testing::TmpDir tmp;
    {
        auto b = OpenAt(tmp / "count", 1 << 20, /*max_records=*/10);
        for (int i = 0; i < 25; ++i) ASSERT_TRUE(b->Append(Msg(i)).ok());
        EXPECT_EQ(b->depth(), 10u);
        EXPECT_EQ(b->stats().dropped_full, 15u);
        EXPECT_EQ(DrainExpecting(*b, 15), 10);
    }
    {
        const auto one = EncodeDiskRecord(1, Msg(0))->size();
        auto b = OpenAt(tmp / "bytes", /*max_bytes=*/one * 4 + 10, 1000, /*segment=*/one * 2);
        for (int i = 0; i < 9; ++i) ASSERT_TRUE(b->Append(Msg(i)).ok());
        EXPECT_EQ(b->depth(), 4u);
        EXPECT_LE(b->stats().bytes, one * 4 + 10);
        EXPECT_EQ(b->stats().dropped_full, 5u);
        // A record that can never fit is refused, the buffer untouched.
        EXPECT_EQ(b->Append(Msg(99, one * 5)).code(), StatusCode::kInvalidArgument);
        EXPECT_EQ(b->depth(), 4u);
        b.reset();
        b = OpenAt(tmp / "bytes", one * 4 + 10, 1000, one * 2);  // the drops survive a reopen
        EXPECT_EQ(DrainExpecting(*b, 5), 4);
    }
}

TEST(BusDiskBuffer, BadInputIsAClearError) {
    fg::testing::TmpDir tmp;
    EXPECT_EQ(DiskBuffer::Open({}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(DiskBuffer::Open({.dir = tmp / "x", .max_bytes = 0}).status().code(),
              StatusCode::kInvalidArgument);
    { std::ofstream(tmp / "file") << "x"; }
    EXPECT_EQ(DiskBuffer::Open({.dir = tmp / "file"}).status().code(), StatusCode::kInvalidArgument);
    auto b = OpenAt(tmp / "buf");
    BufferedMessage m = Msg(1);
    m.id = std::string(70000, 'x');
    EXPECT_EQ(b->Append(m).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(b->PopFront().code(), StatusCode::kFailedPrecondition);
    auto f = b->Front();
    ASSERT_TRUE(f.ok());
    EXPECT_FALSE(f->has_value());
    // A garbage HEAD replays rather than skips.
    ASSERT_TRUE(b->Append(Msg(0)).ok());
    b.reset();
    { std::ofstream(tmp / "buf" / "HEAD", std::ios::trunc) << "garbage"; }
    b = OpenAt(tmp / "buf");
    EXPECT_EQ(DrainExpecting(*b, 0), 1);
}

}  // namespace
}  // namespace fg::bus
