// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/result_consumer.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "fg/bus/envelope.h"

namespace fg::cluster {

ResultConsumer::ResultConsumer(ResultConsumerConfig config, bus::Bus& bus, Callback callback)
    : config_(std::move(config)),
      bus_(bus),
      callback_(std::move(callback)),
      seen_(std::max<std::size_t>(config_.dedupe_capacity, 1)) {}

ResultConsumer::~ResultConsumer() { Stop(); }

Status ResultConsumer::Start() {
    FG_RETURN_IF_ERROR(bus::ValidToken(config_.region, "results region"));
    FG_RETURN_IF_ERROR(bus::ValidToken(config_.group, "results group"));
    if (!callback_) return InvalidArgument("result consumer: no callback");
    if (thread_.joinable()) return FailedPrecondition("result consumer: already started");
    stop_.store(false);
    thread_ = std::thread([this] { Loop(); });
    return Status::Ok();
}

void ResultConsumer::Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
}

ResultConsumerStats ResultConsumer::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

void ResultConsumer::Loop() {
    std::unique_ptr<bus::Consumer> results;
    std::chrono::milliseconds backoff = config_.backoff_min;
    auto wait = [&] {
        const auto deadline = std::chrono::steady_clock::now() + backoff;
        while (!stop_.load() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        backoff = std::min(backoff * 2, config_.backoff_max);
    };
    while (!stop_.load()) {
        if (!results) {
            auto c = bus_.Subscribe({.topic = bus::Topic::kResults, .region = config_.region, .group = config_.group});
            if (!c.ok()) {
                spdlog::warn("results: subscribe: {} (retrying)", c.status().ToString());
                wait();
                continue;
            }
            results = std::move(*c);
        }
        if (Poll(*results).ok()) {
            backoff = config_.backoff_min;
        } else {
            wait();
        }
    }
}

Result<int> ResultConsumer::Poll(bus::Consumer& results) {
    auto batch = results.Fetch(config_.fetch_batch, config_.fetch_wait);
    if (!batch.ok()) {
        std::lock_guard lock(mu_);
        ++stats_.bus_errors;
        return batch.status();
    }
    for (std::unique_ptr<bus::Delivery>& d : *batch) {
        if (seen_.Contains(d->id())) {  // a repeat: the first copy was handed over already
            {
                std::lock_guard lock(mu_);
                ++stats_.duplicates;
            }
            (void)d->Ack();
            continue;
        }
        auto env = bus::DecodeEnvelope(d->data(), config_.keys.get());
        Result<bus::RecognitionResult> r =
            !env.ok() ? Result<bus::RecognitionResult>(env.status()) : bus::ResultFromEnvelope(*env);
        if (!r.ok()) {
            spdlog::warn("results: {} dropped: {}", d->id(), r.status().ToString());
            {
                std::lock_guard lock(mu_);
                ++stats_.invalid;
            }
            (void)d->Term();
            continue;
        }
        // Recorded before the callback: the callback runs at most once per id even if the ack
        // below is lost (the redelivery is then a duplicate).
        if (!seen_.FirstSeen(r->item_id)) {
            std::lock_guard lock(mu_);
            ++stats_.duplicates;
        } else {
            callback_(*r, *env);
            std::lock_guard lock(mu_);
            ++stats_.delivered;
        }
        (void)d->Ack();
    }
    return static_cast<int>(batch->size());
}

}  // namespace fg::cluster
