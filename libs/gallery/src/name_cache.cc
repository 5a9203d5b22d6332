// SPDX-License-Identifier: Apache-2.0
#include "name_cache.h"

#include <spdlog/spdlog.h>

#include "gallery_impl.h"

namespace fg::gallery::internal {

void NameCache::FromCache(std::vector<Candidate>& candidates) {
    for (Candidate& c : candidates) {
        auto it = names_.find(c.subject_id);
        c.display_name = it != names_.end() ? it->second : c.subject_id;
    }
}

void NameCache::Fill(Store& store, std::vector<Candidate>& candidates) {
    using Clock = std::chrono::steady_clock;
    if (candidates.empty()) return;
    {
        std::lock_guard lock(mu_);
        if (degraded() && (probing_ || Clock::now() < retry_at_)) {
            FromCache(candidates);
            return;
        }
        if (degraded()) probing_ = true;
    }
    std::vector<std::string> ids;
    ids.reserve(candidates.size());
    for (const Candidate& c : candidates) ids.push_back(c.subject_id);
    auto got = store.GetDisplayNames(ids);  // bounded by the store's lookup deadline

    std::lock_guard lock(mu_);
    probing_ = false;
    const auto now = Clock::now();
    if (!got.ok()) {
        retry_at_ = now + retry_;
        // Logged when the outage starts and then at most once a minute, not per frame.
        if (!degraded() || now - last_log_ >= std::chrono::minutes(1)) {
            spdlog::warn("gallery store unreachable for display names ({}); identify answers "
                         "from the in-memory index with cached names",
                         got.status().ToString());
            last_log_ = now;
        }
        degraded_ = true;
        FromCache(candidates);
        return;
    }
    if (degraded()) spdlog::info("gallery store reachable again: display names from the store");
    degraded_ = false;
    if (names_.size() + candidates.size() > capacity_) names_.clear();  // crude, bounded
    for (Candidate& c : candidates) {
        auto it = got->find(c.subject_id);
        // A subject deleted since the search keeps its id as name (the store has no row).
        c.display_name = it != got->end() ? it->second : c.subject_id;
        names_[c.subject_id] = c.display_name;
    }
}

}  // namespace fg::gallery::internal

namespace fg::gallery {

bool Gallery::degraded() const { return impl_->names.degraded(); }

}  // namespace fg::gallery
