// SPDX-License-Identifier: Apache-2.0
// The end of the exactly-once path: reads recognition results from the bus (its own consumer
// group, so it sees every result whichever worker made it), drops repeats by item id and hands
// each result to a callback exactly once, acking only after the callback returned.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fg/base/status.h"
#include "fg/bus/bus.h"
#include "fg/bus/dedupe.h"
#include "fg/bus/messages.h"

namespace fg::gallery {
class KeyRing;
}

namespace fg::cluster {

struct ResultConsumerConfig {
    std::string region;               ///< results of this region
    std::string group = "results";    ///< a group of its own: every result reaches it
    int fetch_batch = 64;
    std::chrono::milliseconds fetch_wait{200};
    std::chrono::milliseconds backoff_min{50};
    std::chrono::milliseconds backoff_max{2000};
    /// Item ids remembered for dedupe (see bus::DedupeWindow for how to size it).
    std::size_t dedupe_capacity = 1'000'000;
    std::shared_ptr<const gallery::KeyRing> keys;  ///< results sealed with the gallery key
};

struct ResultConsumerStats {
    std::uint64_t delivered = 0;   ///< results handed to the callback (each item once)
    std::uint64_t duplicates = 0;  ///< repeats dropped
    std::uint64_t invalid = 0;     ///< undecodable or not a result: terminated
    std::uint64_t bus_errors = 0;  ///< failed fetches
};

/// Thread-safety: Start/Stop from one thread; stats() from any. The callback runs on the
/// consumer's own thread, one result at a time; it must not call Stop().
class ResultConsumer {
  public:
    using Callback = std::function<void(const bus::RecognitionResult&, const bus::Envelope&)>;

    ResultConsumer(ResultConsumerConfig config, bus::Bus& bus, Callback callback);
    ~ResultConsumer();
    ResultConsumer(const ResultConsumer&) = delete;
    ResultConsumer& operator=(const ResultConsumer&) = delete;

    /// Starts the consumer thread (subscribing, retrying while the bus is down).
    /// InvalidArgument for a bad region or group.
    Status Start();
    /// Stops after the result in hand; joins. Idempotent.
    void Stop();
    /// One fetch and its handling (the thread's loop body; tests call it directly).
    Result<int> Poll(bus::Consumer& results);

    ResultConsumerStats stats() const;

  private:
    void Loop();

    const ResultConsumerConfig config_;
    bus::Bus& bus_;
    Callback callback_;
    bus::DedupeWindow seen_;
    mutable std::mutex mu_;
    ResultConsumerStats stats_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace fg::cluster
