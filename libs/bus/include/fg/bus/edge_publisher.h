// SPDX-License-Identifier: Apache-2.0
// The edge's side of the bus: every face item the edge selects becomes a FaceItemEnvelope
// (region, camera = stream id) published under a deterministic id. When the bus is down the
// item goes to the on-disk buffer instead, and a drain thread re-publishes the buffer, oldest
// first and under the same ids (so the bus dedupes a repeat), once the bus is back. While the
// buffer holds anything, new items queue behind it: a camera's items keep their order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fg/base/status.h"
#include "fg/bus/bus.h"
#include "fg/bus/disk_buffer.h"
#include "fg/pipeline/face_item.h"

namespace fg::gallery {
class KeyRing;
}

namespace fg::bus {

struct EdgePublisherOptions {
    std::string region;  ///< routing token
    /// Seals the payloads (the gallery key): the bus and the buffer then hold only ciphertext.
    std::shared_ptr<const gallery::KeyRing> keys;
    /// This run's epoch (NextEdgeEpoch): item ids become "<stream>/<epoch>.<generation>/<track>/<frame>",
    /// unique across edge restarts (the pipeline's own ids restart at generation 0).
    std::uint64_t epoch = 0;
    /// How long the drain thread waits before trying the bus again after a failure.
    std::chrono::milliseconds retry_interval{500};
};

struct EdgePublisherStats {
    std::uint64_t items = 0;      ///< face items submitted
    std::uint64_t published = 0;  ///< stored by the bus (directly or drained from the buffer)
    std::uint64_t buffered = 0;   ///< written to the disk buffer (the bus was down or behind)
    std::uint64_t drained = 0;    ///< of those, published from the buffer later
    std::uint64_t dropped = 0;    ///< lost: buffer full (oldest dropped), damaged or unencodable
    std::uint64_t depth = 0;      ///< records in the buffer now
    std::uint64_t duplicates = 0; ///< publishes the bus reported as already stored
    std::uint64_t bytes = 0;      ///< encoded envelope bytes of the items submitted (what leaves the edge)
    bool bus_up = true;           ///< the last publish succeeded
};

/// Reads, increments and durably rewrites `<dir>/EPOCH` (0600, fsync'd): one number per edge
/// start, so item ids of a new run never collide with a previous run's (buffered or not). The
/// new epoch is max(stored + 1, unix seconds now): a wiped directory does not restart at 1.
/// DataLoss for an unreadable EPOCH file (never silently renumbered).
Result<std::uint64_t> NextEdgeEpoch(const std::filesystem::path& dir);

/// The id an item is published under: the pipeline's "<stream>/<generation>/<track>/<frame>"
/// with the epoch in front of the generation. Deterministic: the same item gives the same id.
std::string EdgeItemId(const pipeline::FaceItem& item, std::uint64_t epoch);

/// Thread-safety: Submit may be called from any number of threads at once (the stream
/// threads); stats() from any thread; Start/Stop from one controlling thread. The Bus and the
/// DiskBuffer are shared with nothing else while it runs.
class EdgePublisher {
  public:
    EdgePublisher(std::shared_ptr<Bus> bus, std::unique_ptr<DiskBuffer> buffer,
                  EdgePublisherOptions options);
    ~EdgePublisher();
    EdgePublisher(const EdgePublisher&) = delete;
    EdgePublisher& operator=(const EdgePublisher&) = delete;

    /// Starts the drain thread (it drains what a previous run left in the buffer first).
    Status Start();
    /// Publishes `item` (blocks until the bus stored it, at most the bus's publish timeout), or
    /// buffers it when the bus is down or the buffer still holds older items. Never whole
    /// frames: the envelope carries the aligned crop and the metadata only. Errors:
    /// InvalidArgument for an item that cannot be encoded (bad stream id token); Unavailable
    /// when the bus is down and the buffer cannot be written either (the item is lost, counted
    /// in dropped).
    Status Submit(const pipeline::FaceItem& item);
    /// Stops the drain thread. What is still buffered stays on disk for the next run.
    void Stop();
    /// Blocks until the buffer is empty and the bus is up, or `timeout`; true if drained.
    bool WaitDrained(std::chrono::milliseconds timeout);
    EdgePublisherStats stats() const;

  private:
    void DrainLoop();
    /// Publishes the buffer's records oldest first until it is empty or the bus fails.
    void DrainOnce();

    std::shared_ptr<Bus> bus_;
    std::unique_ptr<DiskBuffer> buffer_;
    EdgePublisherOptions options_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    bool bus_up_ = true;
    EdgePublisherStats stats_;
    std::thread drainer_;
};

}  // namespace fg::bus
