// SPDX-License-Identifier: Apache-2.0
// The gallery's change stream on the bus (docs/scale.md, "Sharded gallery"): ChangeRelay, beside
// the writer of the system of record (`serve` with a `cluster` section), publishes every row of the
// gallery's change log as a gallery_change message (id "gallery/<seq>": deduped by the bus and by
// sequence); ChangeListener, in each worker, wakes its shard replicas as soon as a change newer
// than their position arrives. The change-log table stays the truth the replicas read the change
// from (Gallery::Refresh replays it from their position), so nothing is lost if the relay dies
// between a commit and its publish: the replicas' own poll of the table is the safety net.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fg/base/status.h"
#include "fg/bus/bus.h"
#include "fg/gallery/gallery.h"

namespace fg::cluster {

struct ChangeRelayConfig {
    std::string region = "global";  ///< the gallery's home region (envelope routing token)
    std::chrono::milliseconds interval{200};  ///< how often the change log is read
    /// At start the last `backfill` changes are published again (deduped by every reader), so a
    /// relay restart republishes what a crash may have left unpublished.
    std::int64_t backfill = 1000;
};

struct ChangeRelayStats {
    std::uint64_t published = 0;
    std::uint64_t errors = 0;      ///< failed reads or publishes (retried from the same seq)
    std::int64_t last_seq = 0;     ///< the newest change published
};

/// Thread-safety: Start/Stop from one thread; stats from any. `gallery` and `bus` must outlive it.
class ChangeRelay {
  public:
    ChangeRelay(ChangeRelayConfig config, bus::Bus& bus, std::shared_ptr<const gallery::Gallery> gallery);
    ~ChangeRelay();
    ChangeRelay(const ChangeRelay&) = delete;
    ChangeRelay& operator=(const ChangeRelay&) = delete;
    Status Start();
    void Stop();
    /// One pass: publishes every change after the last published one (the loop body).
    Result<int> PublishPending();
    ChangeRelayStats stats() const;

  private:
    const ChangeRelayConfig config_;
    bus::Bus& bus_;
    std::shared_ptr<const gallery::Gallery> gallery_;
    mutable std::mutex mu_;
    ChangeRelayStats stats_;
    std::int64_t next_after_ = -1;  ///< publish changes with seq > this (-1: not started)
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

struct ChangeListenerConfig {
    /// The consumer group: one per worker (each worker needs every change).
    std::string group;
    std::string region = "global";  ///< the relay's region (Kafka keys by it; NATS ignores it)
    std::chrono::milliseconds fetch_wait{500};
};

struct ChangeListenerStats {
    std::uint64_t received = 0;   ///< change messages read
    std::uint64_t refreshes = 0;  ///< replica refreshes they triggered
    std::uint64_t stale = 0;      ///< changes the replicas already held (their poll was first)
    std::uint64_t errors = 0;     ///< failed fetches, undecodable messages, failed refreshes
};

/// Thread-safety: Start/Stop from one thread; stats from any. The replicas must outlive it.
class ChangeListener {
  public:
    ChangeListener(ChangeListenerConfig config, bus::Bus& bus, std::vector<std::shared_ptr<gallery::Gallery>> replicas);
    ~ChangeListener();
    ChangeListener(const ChangeListener&) = delete;
    ChangeListener& operator=(const ChangeListener&) = delete;
    Status Start();
    void Stop();
    /// One fetch and its handling (the loop body; tests call it).
    Result<int> Poll(bus::Consumer& changes);
    ChangeListenerStats stats() const;

  private:
    const ChangeListenerConfig config_;
    bus::Bus& bus_;
    std::vector<std::shared_ptr<gallery::Gallery>> replicas_;
    mutable std::mutex mu_;
    ChangeListenerStats stats_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace fg::cluster
