// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/edge_publisher.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include <spdlog/spdlog.h>

#include "fg/bus/messages.h"
#include "fg/gallery/crypto.h"

namespace fg::bus {
namespace {

namespace fs = std::filesystem;

std::int64_t NowUnixMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

Result<std::uint64_t> NextEdgeEpoch(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec) return Unavailable("edge epoch: cannot create " + dir.string() + ": " + ec.message());
        fs::permissions(dir, fs::perms::owner_all, ec);  // 0700: it will hold face crops (sealed)
    }
    const fs::path path = dir / "EPOCH";
    std::uint64_t epoch = 0;
    if (fs::exists(path, ec)) {
        std::ifstream in(path);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        unsigned long long v = 0;
        // A damaged epoch must not restart the numbering (ids would repeat): refuse it.
        if (std::sscanf(text.c_str(), "%llu", &v) != 1)
            return DataLoss("edge epoch: " + path.string() + " is unreadable; fix or remove it");
        epoch = v;
    }
    // Never below the wall clock in seconds: a buffer directory that was wiped (or a new one
    // on the same stream ids) must not restart at 1 and repeat ids the bus or the consumers
    // still remember. The stored counter alone keeps it increasing should the clock step back.
    const auto now_s = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    epoch = std::max(epoch + 1, now_s);
    const fs::path tmp = dir / "EPOCH.tmp";
    ::unlink(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Unavailable("edge epoch: cannot create " + tmp.string() + ": " + std::strerror(errno));
    const std::string text = std::to_string(epoch) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
        return Unavailable("edge epoch: cannot write " + path.string() + ": " + std::strerror(errno));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return epoch;
}

std::string EdgeItemId(const pipeline::FaceItem& item, std::uint64_t epoch) {
    const std::string prefix = item.stream_id + "/";
    if (!item.item_id.starts_with(prefix)) return std::to_string(epoch) + "." + item.item_id;
    return prefix + std::to_string(epoch) + "." + item.item_id.substr(prefix.size());
}

EdgePublisher::EdgePublisher(std::shared_ptr<Bus> bus, std::unique_ptr<DiskBuffer> buffer,
                             EdgePublisherOptions options)
    : bus_(std::move(bus)), buffer_(std::move(buffer)), options_(std::move(options)) {}

EdgePublisher::~EdgePublisher() { Stop(); }

Status EdgePublisher::Start() {
    if (!bus_ || !buffer_) return InvalidArgument("edge publisher: no bus or no buffer");
    FG_RETURN_IF_ERROR(ValidToken(options_.region, "region"));
    std::lock_guard lock(mu_);
    if (drainer_.joinable()) return FailedPrecondition("edge publisher: already started");
    stopping_ = false;
    drainer_ = std::thread([this] { DrainLoop(); });
    return Status::Ok();
}

void EdgePublisher::Stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (drainer_.joinable()) drainer_.join();
}

Status EdgePublisher::Submit(const pipeline::FaceItem& item) {
    pipeline::FaceItem copy = item;
    copy.item_id = EdgeItemId(item, options_.epoch);
    Result<Envelope> env = FaceItemEnvelope(copy, options_.region, item.stream_id, NowUnixMs());
    Result<std::string> bytes = env.ok() ? EncodeEnvelope(*env, options_.keys.get()) : env.status();
    std::unique_lock lock(mu_);
    stats_.items += 1;
    if (!bytes.ok()) {
        stats_.dropped += 1;
        return bytes.status();
    }
    stats_.bytes += bytes->size();
    BufferedMessage msg{{Topic::kFaces, options_.region, item.stream_id}, copy.item_id, std::move(*bytes)};
    // Onto the disk buffer, under `lock`; wakes the drain thread.
    auto buffer = [&]() -> Status {
        const Status st = buffer_->Append(msg);
        if (!st.ok()) {
            stats_.dropped += 1;
            return st;
        }
        stats_.buffered += 1;
        lock.unlock();
        cv_.notify_all();
        return Status::Ok();
    };
    // Behind older buffered items (the bus is down, or the drain has not caught up): queue.
    if (!bus_up_ || buffer_->depth() > 0) return buffer();
    lock.unlock();
    Result<PublishAck> ack = bus_->Publish(msg.route, msg.id, msg.data);
    lock.lock();
    if (ack.ok()) {
        stats_.published += 1;
        stats_.duplicates += ack->duplicate ? 1 : 0;
        return Status::Ok();
    }
    if (ack.status().code() != StatusCode::kUnavailable) {
        stats_.dropped += 1;
        return ack.status();
    }
    if (bus_up_) spdlog::warn("edge: bus unavailable ({}); buffering face items on disk", ack.status().message());
    bus_up_ = false;
    return buffer();
}

void EdgePublisher::DrainLoop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
        if (buffer_->depth() == 0) {
            // Nothing held: the bus counts as up again (a direct publish will tell otherwise).
            bus_up_ = true;
            cv_.wait_for(lock, options_.retry_interval, [this] { return stopping_ || buffer_->depth() > 0; });
            continue;
        }
        lock.unlock();
        DrainOnce();
        lock.lock();
        if (!bus_up_ && !stopping_) {
            cv_.wait_for(lock, options_.retry_interval, [this] { return stopping_; });
        }
    }
}

void EdgePublisher::DrainOnce() {
    for (;;) {
        {
            std::lock_guard lock(mu_);
            if (stopping_) return;
        }
        Result<std::optional<BufferedMessage>> front = buffer_->Front();
        if (!front.ok()) continue;  // a damaged record was dropped (counted by the buffer)
        if (!*front) return;
        const BufferedMessage& m = **front;
        Result<PublishAck> ack = bus_->Publish(m.route, m.id, m.data);
        std::lock_guard lock(mu_);
        if (!ack.ok() && ack.status().code() == StatusCode::kUnavailable) {
            bus_up_ = false;
            return;
        }
        if (ack.ok()) {
            if (!bus_up_) spdlog::info("edge: bus back; draining the disk buffer");
            bus_up_ = true;
            stats_.published += 1;
            stats_.drained += 1;
            stats_.duplicates += ack->duplicate ? 1 : 0;
        } else {
            stats_.dropped += 1;  // refused for good (a bad route): never deliverable
            spdlog::error("edge: dropping buffered item: {}", ack.status().ToString());
        }
        (void)buffer_->PopFront();
    }
}

bool EdgePublisher::WaitDrained(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        {
            std::lock_guard lock(mu_);
            if (buffer_->depth() == 0 && bus_up_) return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // bounded poll of the drain
    }
}

EdgePublisherStats EdgePublisher::stats() const {
    std::lock_guard lock(mu_);
    EdgePublisherStats s = stats_;
    const DiskBufferStats b = buffer_->stats();
    s.depth = b.depth;
    s.dropped += b.dropped_full + b.dropped_torn;
    s.bus_up = bus_up_;
    return s;
}

}  // namespace fg::bus
