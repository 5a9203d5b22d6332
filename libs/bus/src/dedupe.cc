// SPDX-License-Identifier: Apache-2.0
#include "fg/bus/dedupe.h"

#include <algorithm>

namespace fg::bus {

DedupeWindow::DedupeWindow(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

bool DedupeWindow::FirstSeen(std::string_view id) {
    std::lock_guard lock(mu_);
    std::string key(id);
    if (ids_.contains(key)) {
        ++duplicates_;
        return false;
    }
    ids_.insert(key);
    order_.push_back(std::move(key));
    // Evict the oldest; entries of forgotten ids are skipped (they may also shorten the window of
    // an id re-added after Forget, which only makes a later duplicate look new: still safe for
    // idempotent consumers that Forget only on failed processing).
    while (order_.size() > capacity_) {
        ids_.erase(order_.front());
        order_.pop_front();
    }
    return true;
}

bool DedupeWindow::Contains(std::string_view id) const {
    std::lock_guard lock(mu_);
    return ids_.contains(std::string(id));
}

void DedupeWindow::Forget(std::string_view id) {
    std::lock_guard lock(mu_);
    ids_.erase(std::string(id));
}

std::size_t DedupeWindow::size() const {
    std::lock_guard lock(mu_);
    return ids_.size();
}

std::uint64_t DedupeWindow::duplicates() const {
    std::lock_guard lock(mu_);
    return duplicates_;
}

}  // namespace fg::bus
