// SPDX-License-Identifier: Apache-2.0
// Display names for identification results: one store query for all candidates, and a cache
// that answers while the store is unreachable, so a database outage degrades identify (names
// from the cache, subject ids for subjects never seen) instead of stalling recognition.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fg/gallery/gallery.h"
#include "fg/gallery/store.h"

namespace fg::gallery::internal {

/// Thread-safety: thread-safe (one mutex; never held across a store call).
class NameCache {
  public:
    /// After a failed lookup the store is not asked again for `retry`: identifications in
    /// between answer from the cache at once. Up to `capacity` names are kept.
    explicit NameCache(std::chrono::milliseconds retry = std::chrono::seconds(5),
                       size_t capacity = 200'000)
        : retry_(retry), capacity_(capacity) {}

    /// Fills candidates' display_name: from the store in one query when it answers (and
    /// remembers them), else from the cache, else the subject id. Never fails.
    void Fill(Store& store, std::vector<Candidate>& candidates);
    /// True while the last lookup failed (the store is unreachable or too slow).
    bool degraded() const { return degraded_.load(std::memory_order_relaxed); }

  private:
    void FromCache(std::vector<Candidate>& candidates);

    const std::chrono::milliseconds retry_;
    const size_t capacity_;
    std::atomic<bool> degraded_{false};
    std::mutex mu_;  // guards the members below
    std::unordered_map<std::string, std::string> names_;
    std::chrono::steady_clock::time_point retry_at_{};
    bool probing_ = false;  // one lookup at a time tests a degraded store
    std::chrono::steady_clock::time_point last_log_{};
};

}  // namespace fg::gallery::internal
