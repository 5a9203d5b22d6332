// SPDX-License-Identifier: Apache-2.0
#include "fg/stream/stream_manager.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>

namespace fg::stream {

struct StreamManager::Impl {
    StateCallback on_state;

    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<std::unique_ptr<Source>> sources;  // insertion order
    std::size_t next = 0;                          // round-robin start for WaitNext
    std::uint64_t frame_epoch = 0;                 // bumped by every queued frame
    std::uint64_t wake_epoch = 0;
    bool stopped = false;

    void OnFrame() {
        {
            std::lock_guard lock(mu);
            ++frame_epoch;
        }
        cv.notify_all();
    }

    /// Removes and returns the sources to stop outside `mu` (their callbacks take `mu`).
    std::vector<std::unique_ptr<Source>> TakeAll() {
        std::lock_guard lock(mu);
        stopped = true;
        return std::exchange(sources, {});
    }
};

StreamManager::StreamManager(StateCallback on_state) : impl_(std::make_unique<Impl>()) {
    impl_->on_state = std::move(on_state);
}

StreamManager::~StreamManager() {
    Stop();
}

Status StreamManager::Add(SourceConfig config) {
    FG_RETURN_IF_ERROR(config.Validate());
    Impl& impl = *impl_;
    std::lock_guard lock(impl.mu);
    if (impl.stopped) {
        return FailedPrecondition("stream manager is stopped; cannot add source '" + config.id +
                                  "'");
    }
    for (const auto& s : impl.sources) {
        if (s->config().id == config.id) {
            return AlreadyExists("source '" + config.id + "' already exists");
        }
    }
    // Source callbacks take impl.mu; Create only starts threads and never waits for them.
    Source::Callbacks callbacks;
    callbacks.on_state = impl.on_state;
    callbacks.on_frame = [p = &impl] { p->OnFrame(); };
    FG_ASSIGN_OR_RETURN(auto source, Source::Create(std::move(config), std::move(callbacks)));
    impl.sources.push_back(std::move(source));
    return Status::Ok();
}

Status StreamManager::Remove(const std::string& id) {
    std::unique_ptr<Source> removed;
    {
        std::lock_guard lock(impl_->mu);
        auto& sources = impl_->sources;
        for (auto it = sources.begin(); it != sources.end(); ++it) {
            if ((*it)->config().id == id) {
                removed = std::move(*it);
                sources.erase(it);
                break;
            }
        }
    }
    if (!removed) {
        return NotFound("no source '" + id + "'");
    }
    removed->Stop();
    return Status::Ok();
}

std::vector<std::string> StreamManager::Ids() const {
    std::lock_guard lock(impl_->mu);
    std::vector<std::string> ids;
    for (const auto& s : impl_->sources) {
        ids.push_back(s->config().id);
    }
    return ids;
}

std::optional<Frame> StreamManager::WaitNext(std::chrono::milliseconds timeout) {
    Impl& impl = *impl_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(impl.mu);
    const std::uint64_t wake = impl.wake_epoch;
    for (;;) {
        if (impl.stopped || impl.wake_epoch != wake) {
            return std::nullopt;
        }
        const std::size_t n = impl.sources.size();
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t index = (impl.next + i) % n;
            if (auto frame = impl.sources[index]->TryPop()) {
                impl.next = index + 1;
                return frame;
            }
        }
        // A frame queued after the scan bumps frame_epoch, which needs `mu`: no lost wake-up.
        const std::uint64_t epoch = impl.frame_epoch;
        if (!impl.cv.wait_until(lock, deadline, [&] {
                return impl.frame_epoch != epoch || impl.stopped || impl.wake_epoch != wake;
            })) {
            return std::nullopt;
        }
    }
}

std::optional<Frame> StreamManager::TryPop(const std::string& id) {
    std::lock_guard lock(impl_->mu);
    for (const auto& s : impl_->sources) {
        if (s->config().id == id) {
            return s->TryPop();
        }
    }
    return std::nullopt;
}

void StreamManager::Wake() {
    {
        std::lock_guard lock(impl_->mu);
        ++impl_->wake_epoch;
    }
    impl_->cv.notify_all();
}

Result<SourceStats> StreamManager::Stats(const std::string& id) const {
    std::lock_guard lock(impl_->mu);
    for (const auto& s : impl_->sources) {
        if (s->config().id == id) {
            return s->Stats();
        }
    }
    return NotFound("no source '" + id + "'");
}

std::vector<SourceStats> StreamManager::AllStats() const {
    std::lock_guard lock(impl_->mu);
    std::vector<SourceStats> all;
    for (const auto& s : impl_->sources) {
        all.push_back(s->Stats());
    }
    return all;
}

bool StreamManager::AllExhausted() const {
    std::lock_guard lock(impl_->mu);
    for (const auto& s : impl_->sources) {
        if (!s->Exhausted()) {
            return false;
        }
    }
    return true;
}

void StreamManager::Stop() {
    auto sources = impl_->TakeAll();
    impl_->cv.notify_all();
    // Ask all first, then wait: N blocked decoders cost one grace period, not N.
    for (auto& s : sources) {
        s->RequestStop();
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    for (auto& s : sources) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        s->Stop(std::max(left, std::chrono::milliseconds(0)));
    }
    sources.clear();
}

}  // namespace fg::stream
