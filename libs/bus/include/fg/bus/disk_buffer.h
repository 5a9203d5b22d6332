// SPDX-License-Identifier: Apache-2.0
// The edge's on-disk buffer: a bounded FIFO of encoded envelopes kept while the bus is down and
// drained, oldest first, once it is back. Segment files of length+CRC framed records, appended
// and fsync'd (with the directory when a file is made), so a kill -9 or a power cut loses at
// most the record being written, and a torn tail is detected and dropped, never misread.
//
// On disk (one directory, one process: a lock file refuses a second opener):
//   LOCK                       flock'ed while open
//   HEAD                       "<seq>\n": records below seq were drained (rewritten by rename)
//   seg-<first seq, 20 digits> records, in sequence order; a new segment every segment_bytes
// A record (little-endian):  u32 magic "FGBR" | u32 body length | u32 CRC-32 of body | body
//   body: u64 seq | u8 topic | u16 id length | id | u8 region length | region
//         | u8 camera length | camera | data (the rest: the encoded, usually sealed, envelope)
// Sealed envelopes are already encrypted; the files are still created 0600 (O_EXCL).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "fg/base/status.h"
#include "fg/bus/bus.h"

namespace fg::bus {

/// One buffered message: where it goes, its id (the bus dedupes on it) and its bytes.
struct BufferedMessage {
    Route route;
    std::string id;
    std::string data;
};

/// CRC-32 (IEEE 802.3, the zlib polynomial) of `bytes`.
std::uint32_t Crc32(std::string_view bytes);

/// The record framing, exposed for the fuzz harness and tests.
inline constexpr std::uint32_t kDiskRecordMagic = 0x52424746;  // "FGBR" little-endian
inline constexpr std::size_t kDiskRecordHeader = 12;
/// A record body is refused above this (an envelope is at most kMaxEnvelopeBytes).
inline constexpr std::size_t kMaxDiskRecordBody = (1 << 20) + 4096;

/// Frames `msg` as record number `seq`. InvalidArgument for an id over 65535 bytes, a region or
/// camera over 255 or a body over kMaxDiskRecordBody.
Result<std::string> EncodeDiskRecord(std::uint64_t seq, const BufferedMessage& msg);

struct DiskRecord {
    std::uint64_t seq = 0;
    BufferedMessage msg;
    std::size_t size = 0;  ///< bytes the record took (header + body)
};

/// Reads the record at the start of `bytes`. OutOfRange when `bytes` ends inside the record (a
/// torn tail: the writer died mid-append); DataLoss for a bad magic, an impossible length, a
/// CRC mismatch or a malformed body. Never reads past `bytes`, never throws.
Result<DiskRecord> DecodeDiskRecord(std::string_view bytes);

struct DiskBufferOptions {
    std::filesystem::path dir;  ///< created 0700 if missing
    /// Bounds on what is held (record bytes and records). Appending past either drops the
    /// oldest records first (counted in dropped_full): a long outage keeps the newest faces.
    std::uint64_t max_bytes = 256ull << 20;
    std::uint64_t max_records = 1'000'000;
    /// A new segment file is started past this size; drained segments are deleted whole, so
    /// the disk holds at most about one segment more than max_bytes.
    std::uint64_t segment_bytes = 4ull << 20;
    /// fsync every append (and the directory on each new file). Off only for benchmarks.
    bool sync = true;
};

struct DiskBufferStats {
    std::uint64_t appended = 0;       ///< since open
    std::uint64_t popped = 0;         ///< drained since open
    std::uint64_t dropped_full = 0;   ///< oldest records dropped to stay within the bounds
    std::uint64_t dropped_torn = 0;   ///< records lost to a torn or corrupt file (found at open)
    std::uint64_t depth = 0;          ///< records held now
    std::uint64_t bytes = 0;          ///< their record bytes
};

/// Thread-safety: all methods may be called concurrently (one mutex). One process per
/// directory (Open fails with FailedPrecondition while another holds it).
class DiskBuffer {
  public:
    /// Opens (or creates) the buffer in options.dir and recovers what it holds: records up to
    /// the first torn or corrupt one of each segment are kept, the rest is dropped (counted in
    /// dropped_torn) and the tail segment is truncated there, so appends continue cleanly.
    static Result<std::unique_ptr<DiskBuffer>> Open(DiskBufferOptions options);
    ~DiskBuffer();
    DiskBuffer(const DiskBuffer&) = delete;
    DiskBuffer& operator=(const DiskBuffer&) = delete;

    /// Appends `msg` durably (fsync'd before returning when options.sync). Drops the oldest
    /// records first when it would not fit. InvalidArgument for a record that can never fit
    /// (over max_bytes or the encoding limits); Unavailable for a write error (disk full).
    Status Append(const BufferedMessage& msg);
    /// The oldest record, or nullopt when empty. DataLoss if it cannot be read back (the record
    /// is then dropped: call again for the next one).
    Result<std::optional<BufferedMessage>> Front();
    /// Drops the oldest record (it was delivered). Its segment is deleted once fully drained.
    Status PopFront();
    std::uint64_t depth() const;
    DiskBufferStats stats() const;
    const std::filesystem::path& dir() const { return options_.dir; }

  private:
    struct Segment {
        std::uint64_t first_seq = 0;
        std::filesystem::path path;
        std::uint64_t size = 0;  ///< bytes in the file (valid records only)
    };
    struct Entry {
        std::uint64_t seq = 0;
        std::uint64_t segment = 0;  ///< first_seq of its segment
        std::uint64_t offset = 0;
        std::uint32_t size = 0;
    };

    explicit DiskBuffer(DiskBufferOptions options) : options_(std::move(options)) {}
    Status Recover();
    Status EnsureTailLocked();
    void DropFrontLocked();
    void DeleteDrainedSegmentsLocked();
    Status WriteHeadLocked();
    const Segment* SegmentFor(std::uint64_t first_seq) const;

    DiskBufferOptions options_;
    mutable std::mutex mu_;
    int lock_fd_ = -1;
    int tail_fd_ = -1;
    std::deque<Segment> segments_;  ///< oldest first; the last is the tail being appended to
    std::deque<Entry> entries_;     ///< held records, oldest first
    std::uint64_t next_seq_ = 1;
    std::uint64_t drained_seq_ = 1;  ///< HEAD: records below were drained
    DiskBufferStats stats_;
};

}  // namespace fg::bus
