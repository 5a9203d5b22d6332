// SPDX-License-Identifier: Apache-2.0
// Idempotent consumption: at-least-once transport + dedupe by message id = exactly-once effects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace fg::bus {

/// Remembers the last `capacity` distinct ids. The window: an id is recognised as a duplicate
/// as long as fewer than `capacity` other distinct ids were first seen after it; memory is
/// O(capacity) (about 100 bytes per id). Size it above what can be redelivered late: the
/// messages in flight (fetch batch x consumers) times the redelivery span (max-deliver x ack
/// wait) at the peak rate; the default of 1M ids covers ~1 hour at 300 items/s.
/// Thread-safety: all methods are safe to call concurrently.
class DedupeWindow {
  public:
    explicit DedupeWindow(std::size_t capacity = 1'000'000);

    /// True the first time `id` is seen within the window (process it), false for a duplicate.
    bool FirstSeen(std::string_view id);
    /// Whether `id` is in the window (without recording it).
    bool Contains(std::string_view id) const;
    /// Forgets `id` (e.g. its processing failed, so a redelivery must be processed again).
    void Forget(std::string_view id);

    std::size_t size() const;
    std::uint64_t duplicates() const;  ///< FirstSeen calls that returned false

  private:
    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::unordered_set<std::string> ids_;
    std::deque<std::string> order_;  ///< oldest first; may hold forgotten ids (skipped)
    std::uint64_t duplicates_ = 0;
};

}  // namespace fg::bus
