// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/change_stream.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "fg/bus/envelope.h"
#include "fg/bus/messages.h"

namespace fg::cluster {
namespace {

std::int64_t NowUnixMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void SleepUnlessStopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!stop.load() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(20)));
}

}  // namespace

ChangeRelay::ChangeRelay(ChangeRelayConfig config, bus::Bus& bus, std::shared_ptr<const gallery::Gallery> gallery)
    : config_(std::move(config)), bus_(bus), gallery_(std::move(gallery)) {}

ChangeRelay::~ChangeRelay() { Stop(); }

Status ChangeRelay::Start() {
    FG_RETURN_IF_ERROR(bus::ValidToken(config_.region, "change relay region"));
    if (!gallery_) return InvalidArgument("change relay: no gallery");
    if (thread_.joinable()) return FailedPrecondition("change relay: already started");
    stop_ = false;
    thread_ = std::thread([this] {
        while (!stop_.load()) {
            if (!PublishPending().ok()) SleepUnlessStopped(std::chrono::seconds(1), stop_);  // bus or store away
            SleepUnlessStopped(config_.interval, stop_);
        }
    });
    return Status::Ok();
}

void ChangeRelay::Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

Result<int> ChangeRelay::PublishPending() {
    std::int64_t after;
    {
        std::lock_guard lock(mu_);
        after = next_after_;
    }
    auto fail = [this](const Status& s) {
        std::lock_guard lock(mu_);
        ++stats_.errors;
        return s;
    };
    if (after < 0) {
        Result<std::int64_t> last = gallery_->last_change();
        if (!last.ok()) return fail(last.status());
        after = std::max<std::int64_t>(0, *last - config_.backfill);
    }
    int published = 0;
    for (;;) {
        Result<std::vector<gallery::Change>> batch = gallery_->ChangesSince(after, 1000);
        if (!batch.ok()) return fail(batch.status());
        for (const gallery::Change& c : *batch) {
            // Ids and kinds only: a change never carries a template (docs/gallery.md).
            bus::GalleryChange m{.seq = static_cast<std::uint64_t>(c.seq),
                                 .op = c.kind == "delete_subject" ? "delete" : "upsert",
                                 .subject_id = c.subject_id.empty() ? "*" : c.subject_id};
            Result<bus::Envelope> env = bus::GalleryChangeEnvelope(m, config_.region, NowUnixMs());
            if (!env.ok()) return fail(env.status());
            Result<bus::PublishAck> ack = bus::PublishEnvelope(bus_, *env);
            if (!ack.ok()) {
                std::lock_guard lock(mu_);
                next_after_ = after;  // retried from here
                ++stats_.errors;
                return ack.status();
            }
            after = c.seq;
            ++published;
            std::lock_guard lock(mu_);
            ++stats_.published;
            stats_.last_seq = c.seq;
        }
        if (batch->size() < 1000) break;
    }
    std::lock_guard lock(mu_);
    next_after_ = after;
    return published;
}

ChangeRelayStats ChangeRelay::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

// ---------------------------------------------------------------------------------------------

ChangeListener::ChangeListener(ChangeListenerConfig config, bus::Bus& bus,
                               std::vector<std::shared_ptr<gallery::Gallery>> replicas)
    : config_(std::move(config)), bus_(bus), replicas_(std::move(replicas)) {}

ChangeListener::~ChangeListener() { Stop(); }

Status ChangeListener::Start() {
    FG_RETURN_IF_ERROR(bus::ValidToken(config_.group, "change listener group"));
    if (thread_.joinable()) return FailedPrecondition("change listener: already started");
    stop_ = false;
    thread_ = std::thread([this] {
        std::unique_ptr<bus::Consumer> changes;
        std::chrono::milliseconds backoff(200);
        while (!stop_.load()) {
            if (!changes) {
                auto c = bus_.Subscribe({.topic = bus::Topic::kGalleryChanges, .region = config_.region, .group = config_.group});
                if (!c.ok()) {
                    SleepUnlessStopped(backoff, stop_);
                    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
                    continue;
                }
                changes = std::move(*c);
            }
            if (!Poll(*changes).ok()) {
                SleepUnlessStopped(backoff, stop_);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
            } else {
                backoff = std::chrono::milliseconds(200);
            }
        }
    });
    return Status::Ok();
}

void ChangeListener::Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

Result<int> ChangeListener::Poll(bus::Consumer& changes) {
    auto batch = changes.Fetch(64, config_.fetch_wait);
    if (!batch.ok()) {
        std::lock_guard lock(mu_);
        ++stats_.errors;
        return batch.status();
    }
    std::int64_t newest = 0;
    std::vector<bool> settled(batch->size(), false);
    for (std::size_t i = 0; i < batch->size(); ++i) {
        const std::unique_ptr<bus::Delivery>& d = (*batch)[i];
        auto env = bus::DecodeEnvelope(d->data());
        Result<bus::GalleryChange> c =
            env.ok() ? bus::GalleryChangeFromEnvelope(*env) : Result<bus::GalleryChange>(env.status());
        std::lock_guard lock(mu_);
        ++stats_.received;
        if (!c.ok()) {
            ++stats_.errors;  // poison: never blocks the stream (the table is the truth anyway)
            (void)d->Term();
            settled[i] = true;
            continue;
        }
        newest = std::max<std::int64_t>(newest, static_cast<std::int64_t>(c->seq));
    }
    if (newest > 0) {
        // Every replica behind the newest change reads the log from its own position.
        for (const auto& r : replicas_) {
            if (r->applied_change() >= newest) {
                std::lock_guard lock(mu_);
                ++stats_.stale;
                continue;
            }
            Result<int> n = r->Refresh();
            std::lock_guard lock(mu_);
            if (n.ok()) {
                ++stats_.refreshes;
            } else {
                ++stats_.errors;
                spdlog::warn("gallery change stream: refresh: {}", n.status().ToString());
            }
        }
    }
    for (std::size_t i = 0; i < batch->size(); ++i)
        if (!settled[i]) (void)(*batch)[i]->Ack();
    return static_cast<int>(batch->size());
}

ChangeListenerStats ChangeListener::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

}  // namespace fg::cluster
