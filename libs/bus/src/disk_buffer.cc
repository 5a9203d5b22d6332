// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/disk_buffer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

namespace fg::bus {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::uint32_t, 256> MakeCrcTable() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = MakeCrcTable();

void PutU8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
void PutU16(std::string& out, std::uint16_t v) {
    for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// A bounds-checked little-endian reader over a body.
class Reader {
  public:
    explicit Reader(std::string_view b) : b_(b) {}
    bool U64(std::uint64_t& v) { return Uint(v, 8); }
    bool U32(std::uint32_t& v) {
        std::uint64_t x = 0;
        if (!Uint(x, 4)) return false;
        v = static_cast<std::uint32_t>(x);
        return true;
    }
    bool Len(std::size_t& v, int bytes) {
        std::uint64_t x = 0;
        if (!Uint(x, bytes)) return false;
        v = static_cast<std::size_t>(x);
        return true;
    }
    bool Str(std::string& s, std::size_t n) {
        if (n > b_.size() - pos_) return false;
        s.assign(b_.substr(pos_, n));
        pos_ += n;
        return true;
    }
    std::string_view Rest() const { return b_.substr(pos_); }

  private:
    bool Uint(std::uint64_t& v, int bytes) {
        if (static_cast<std::size_t>(bytes) > b_.size() - pos_) return false;
        v = 0;
        for (int i = 0; i < bytes; ++i)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b_[pos_ + i])) << (8 * i);
        pos_ += static_cast<std::size_t>(bytes);
        return true;
    }
    std::string_view b_;
    std::size_t pos_ = 0;
};

std::uint32_t ReadU32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

Status Errno(const std::string& what, const fs::path& path) {
    return Unavailable("disk buffer: " + what + " " + path.string() + ": " + std::strerror(errno));
}

Status FsyncDir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open directory", dir);
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return Errno("cannot fsync directory", dir);
    return Status::Ok();
}

Status WriteAll(int fd, std::string_view bytes, const fs::path& path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return Errno("cannot write", path);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status::Ok();
}

Result<std::string> ReadFile(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open", path);
    std::string out;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const Status st = Errno("cannot read", path);
            ::close(fd);
            return st;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string SegmentName(std::uint64_t first_seq) {
    char name[40];
    std::snprintf(name, sizeof name, "seg-%020llu", static_cast<unsigned long long>(first_seq));
    return name;
}

}  // namespace

std::uint32_t Crc32(std::string_view bytes) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (const char ch : bytes) c = kCrcTable[(c ^ static_cast<unsigned char>(ch)) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

Result<std::string> EncodeDiskRecord(std::uint64_t seq, const BufferedMessage& msg) {
    if (msg.id.size() > 0xffff) return InvalidArgument("disk buffer: message id over 65535 bytes");
    if (msg.route.region.size() > 0xff || msg.route.camera.size() > 0xff)
        return InvalidArgument("disk buffer: region or camera over 255 bytes");
    std::string body;
    body.reserve(8 + 1 + 2 + msg.id.size() + 2 + msg.route.region.size() + msg.route.camera.size() +
                 msg.data.size());
    PutU64(body, seq);
    PutU8(body, static_cast<std::uint8_t>(msg.route.topic));
    PutU16(body, static_cast<std::uint16_t>(msg.id.size()));
    body += msg.id;
    PutU8(body, static_cast<std::uint8_t>(msg.route.region.size()));
    body += msg.route.region;
    PutU8(body, static_cast<std::uint8_t>(msg.route.camera.size()));
    body += msg.route.camera;
    body += msg.data;
    if (body.size() > kMaxDiskRecordBody) return InvalidArgument("disk buffer: message too large");
    std::string rec;
    rec.reserve(kDiskRecordHeader + body.size());
    PutU32(rec, kDiskRecordMagic);
    PutU32(rec, static_cast<std::uint32_t>(body.size()));
    PutU32(rec, Crc32(body));
    rec += body;
    return rec;
}

Result<DiskRecord> DecodeDiskRecord(std::string_view bytes) {
    if (bytes.size() < kDiskRecordHeader) return OutOfRange("disk record: torn header");
    if (ReadU32(bytes.data()) != kDiskRecordMagic) return DataLoss("disk record: bad magic");
    const std::uint32_t len = ReadU32(bytes.data() + 4);
    const std::uint32_t crc = ReadU32(bytes.data() + 8);
    if (len > kMaxDiskRecordBody) return DataLoss("disk record: impossible length");
    if (bytes.size() - kDiskRecordHeader < len) return OutOfRange("disk record: torn body");
    const std::string_view body = bytes.substr(kDiskRecordHeader, len);
    if (Crc32(body) != crc) return DataLoss("disk record: CRC mismatch");
    DiskRecord r;
    r.size = kDiskRecordHeader + len;
    Reader in(body);
    std::uint64_t topic = 0;
    std::size_t n = 0;
    std::uint64_t seq = 0;
    if (!in.U64(seq)) return DataLoss("disk record: short body");
    r.seq = seq;
    if (!in.Len(n, 1)) return DataLoss("disk record: short body");
    topic = n;
    if (topic > static_cast<std::uint64_t>(Topic::kGalleryChanges)) return DataLoss("disk record: bad topic");
    r.msg.route.topic = static_cast<Topic>(topic);
    if (!in.Len(n, 2) || !in.Str(r.msg.id, n) || !in.Len(n, 1) || !in.Str(r.msg.route.region, n) ||
        !in.Len(n, 1) || !in.Str(r.msg.route.camera, n)) {
        return DataLoss("disk record: malformed body");
    }
    if (r.msg.id.empty()) return DataLoss("disk record: empty id");
    r.msg.data.assign(in.Rest());
    return r;
}

Result<std::unique_ptr<DiskBuffer>> DiskBuffer::Open(DiskBufferOptions options) {
    if (options.dir.empty()) return InvalidArgument("disk buffer: no directory");
    if (options.max_bytes == 0 || options.max_records == 0)
        return InvalidArgument("disk buffer: max_bytes and max_records must be > 0");
    if (options.segment_bytes == 0) return InvalidArgument("disk buffer: segment_bytes must be > 0");
    std::error_code ec;
    if (!fs::exists(options.dir, ec)) {
        fs::create_directories(options.dir, ec);
        if (ec) return Unavailable("disk buffer: cannot create " + options.dir.string() + ": " + ec.message());
        fs::permissions(options.dir, fs::perms::owner_all, ec);
    }
    if (!fs::is_directory(options.dir, ec))
        return InvalidArgument("disk buffer: " + options.dir.string() + " is not a directory");
    std::unique_ptr<DiskBuffer> b(new DiskBuffer(std::move(options)));
    const fs::path lock = b->options_.dir / "LOCK";
    b->lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (b->lock_fd_ < 0) return Errno("cannot open", lock);
    if (::flock(b->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        return FailedPrecondition("disk buffer: " + b->options_.dir.string() +
                                  " is in use by another process");
    }
    FG_RETURN_IF_ERROR(b->Recover());
    return b;
}

DiskBuffer::~DiskBuffer() {
    if (tail_fd_ >= 0) {
        if (options_.sync) ::fsync(tail_fd_);
        ::close(tail_fd_);
    }
    {
        std::lock_guard lock(mu_);
        (void)WriteHeadLocked();
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Status DiskBuffer::Recover() {
    const fs::path head = options_.dir / "HEAD";
    std::error_code ec;
    if (fs::exists(head, ec)) {
        FG_ASSIGN_OR_RETURN(std::string text, ReadFile(head));
        unsigned long long v = 0;
        char extra = 0;
        if (std::sscanf(text.c_str(), "%llu%c", &v, &extra) >= 1 && v > 0) {
            drained_seq_ = v;
        } else {
            // Replaying drained records is harmless (ids are deduped); skipping held ones is not.
            spdlog::warn("disk buffer: unreadable HEAD in {}; replaying every held record",
                         options_.dir.string());
        }
    }
    ::unlink((options_.dir / "HEAD.tmp").c_str());  // a rename that never happened
    std::vector<std::pair<std::uint64_t, fs::path>> files;
    for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with("seg-") || name.size() != 24) continue;
        unsigned long long first = 0;
        if (std::sscanf(name.c_str() + 4, "%llu", &first) != 1) continue;
        files.emplace_back(first, e.path());
    }
    if (ec) return Unavailable("disk buffer: cannot list " + options_.dir.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    next_seq_ = drained_seq_;
    for (const auto& [first, path] : files) {
        FG_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
        Segment seg{first, path, 0};
        std::uint64_t off = 0;
        std::uint64_t last = first == 0 ? 0 : first - 1;
        while (off < bytes.size()) {
            Result<DiskRecord> r = DecodeDiskRecord(std::string_view(bytes).substr(off));
            if (r.ok() && (r->seq <= last || r->seq < first)) r = DataLoss("disk record: out of sequence");
            if (!r.ok()) {
                // A torn tail (the writer died) or damage: what follows cannot be framed, so it
                // is dropped; truncating lets appends continue on a clean boundary.
                spdlog::warn("disk buffer: {} at byte {} of {}; dropping the rest of the file",
                             r.status().message(), off, path.filename().string());
                stats_.dropped_torn += 1;
                if (::truncate(path.c_str(), static_cast<off_t>(off)) != 0) return Errno("cannot truncate", path);
                break;
            }
            last = r->seq;
            if (r->seq >= drained_seq_) {
                entries_.push_back({r->seq, first, off, static_cast<std::uint32_t>(r->size)});
                stats_.bytes += r->size;
            }
            off += r->size;
        }
        seg.size = off;
        next_seq_ = std::max(next_seq_, last + 1);
        segments_.push_back(std::move(seg));
    }
    stats_.depth = entries_.size();
    DeleteDrainedSegmentsLocked();
    return Status::Ok();
}

const DiskBuffer::Segment* DiskBuffer::SegmentFor(std::uint64_t first_seq) const {
    for (const Segment& s : segments_)
        if (s.first_seq == first_seq) return &s;
    return nullptr;
}

void DiskBuffer::DeleteDrainedSegmentsLocked() {
    // A segment before the one holding the oldest record is drained. The tail stays: it is
    // appended to.
    bool removed = false;
    while (segments_.size() > 1 &&
           (entries_.empty() || segments_.front().first_seq < entries_.front().segment)) {
        ::unlink(segments_.front().path.c_str());
        segments_.pop_front();
        removed = true;
    }
    if (removed && options_.sync) (void)FsyncDir(options_.dir);
}

Status DiskBuffer::EnsureTailLocked() {
    if (!segments_.empty() && segments_.back().size < options_.segment_bytes) {
        if (tail_fd_ >= 0) return Status::Ok();
        const fs::path& p = segments_.back().path;
        tail_fd_ = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (tail_fd_ < 0) return Errno("cannot open", p);
        return Status::Ok();
    }
    if (tail_fd_ >= 0) {
        if (options_.sync) ::fsync(tail_fd_);
        ::close(tail_fd_);
        tail_fd_ = -1;
    }
    const fs::path p = options_.dir / SegmentName(next_seq_);
    // O_EXCL: a segment is never shared; 0600 at creation: the bytes are face crops (sealed).
    tail_fd_ = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (tail_fd_ < 0) return Errno("cannot create", p);
    if (options_.sync) FG_RETURN_IF_ERROR(FsyncDir(options_.dir));
    segments_.push_back({next_seq_, p, 0});
    if (entries_.empty()) DeleteDrainedSegmentsLocked();
    return Status::Ok();
}

Status DiskBuffer::Append(const BufferedMessage& msg) {
    std::lock_guard lock(mu_);
    FG_ASSIGN_OR_RETURN(std::string rec, EncodeDiskRecord(next_seq_, msg));
    if (rec.size() > options_.max_bytes)
        return InvalidArgument("disk buffer: a " + std::to_string(rec.size()) +
                               "-byte record exceeds max_bytes");
    bool dropped = false;
    while (!entries_.empty() && (entries_.size() + 1 > options_.max_records ||
                                 stats_.bytes + rec.size() > options_.max_bytes)) {
        DropFrontLocked();
        stats_.dropped_full += 1;
        dropped = true;
    }
    if (dropped) FG_RETURN_IF_ERROR(WriteHeadLocked());
    FG_RETURN_IF_ERROR(EnsureTailLocked());
    Segment& seg = segments_.back();
    if (Status st = WriteAll(tail_fd_, rec, seg.path); !st.ok()) {
        // Cut a partial record off so later appends stay framed (and recovery need not).
        (void)::ftruncate(tail_fd_, static_cast<off_t>(seg.size));
        return st;
    }
    if (options_.sync && ::fdatasync(tail_fd_) != 0) return Errno("cannot fsync", seg.path);
    entries_.push_back({next_seq_, seg.first_seq, seg.size, static_cast<std::uint32_t>(rec.size())});
    seg.size += rec.size();
    stats_.bytes += rec.size();
    stats_.appended += 1;
    stats_.depth = entries_.size();
    next_seq_ += 1;
    return Status::Ok();
}

Result<std::optional<BufferedMessage>> DiskBuffer::Front() {
    std::lock_guard lock(mu_);
    if (entries_.empty()) return std::optional<BufferedMessage>();
    const Entry e = entries_.front();
    const Segment* seg = SegmentFor(e.segment);
    Status problem = Status::Ok();
    if (seg == nullptr) {
        problem = DataLoss("disk buffer: segment of record " + std::to_string(e.seq) + " is gone");
    } else {
        const int fd = ::open(seg->path.c_str(), O_RDONLY | O_CLOEXEC);
        std::string bytes(e.size, '\0');
        const ssize_t n = fd < 0 ? -1 : ::pread(fd, bytes.data(), e.size, static_cast<off_t>(e.offset));
        if (fd >= 0) ::close(fd);
        if (n != static_cast<ssize_t>(e.size)) {
            problem = DataLoss("disk buffer: cannot read record " + std::to_string(e.seq));
        } else {
            Result<DiskRecord> r = DecodeDiskRecord(bytes);
            if (r.ok() && r->seq == e.seq) return std::optional<BufferedMessage>(std::move(r->msg));
            problem = DataLoss("disk buffer: record " + std::to_string(e.seq) + " is damaged");
        }
    }
    DropFrontLocked();
    stats_.dropped_torn += 1;
    (void)WriteHeadLocked();
    return problem;
}

Status DiskBuffer::PopFront() {
    std::lock_guard lock(mu_);
    if (entries_.empty()) return FailedPrecondition("disk buffer: empty");
    DropFrontLocked();
    stats_.popped += 1;
    return WriteHeadLocked();
}

void DiskBuffer::DropFrontLocked() {
    const Entry e = entries_.front();
    entries_.pop_front();
    stats_.bytes -= e.size;
    stats_.depth = entries_.size();
    drained_seq_ = e.seq + 1;
    DeleteDrainedSegmentsLocked();
}

Status DiskBuffer::WriteHeadLocked() {
    // Written by rename (atomic), not fsync'd: a kill -9 keeps it (the page cache survives the
    // process); a power cut may bring back a few drained records, which the bus dedupes by id.
    const fs::path tmp = options_.dir / "HEAD.tmp";
    ::unlink(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("cannot create", tmp);
    const std::string text = std::to_string(drained_seq_) + "\n";
    const Status st = WriteAll(fd, text, tmp);
    ::close(fd);
    FG_RETURN_IF_ERROR(st);
    if (::rename(tmp.c_str(), (options_.dir / "HEAD").c_str()) != 0) return Errno("cannot rename", tmp);
    return Status::Ok();
}

std::uint64_t DiskBuffer::depth() const {
    std::lock_guard lock(mu_);
    return entries_.size();
}

DiskBufferStats DiskBuffer::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

}  // namespace fg::bus
