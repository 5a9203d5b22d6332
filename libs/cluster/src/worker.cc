// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/worker.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "fg/bus/envelope.h"

namespace fg::cluster {

namespace {

std::int64_t NowUnixMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Sleeps up to `d`, waking early when `stop` is set (shutdown never waits a whole back-off).
void SleepUnlessStopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    while (!stop.load() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(20)));
}

}  // namespace

bus::RecognitionResult Decide(const pipeline::FaceItem& item, const pipeline::IdentityVerdict* verdict,
                              const std::string& worker_id) {
    bus::RecognitionResult r{.item_id = item.item_id,
                             .stream_id = item.stream_id,
                             .track_id = item.track_id,
                             .frame_index = item.frame_index,
                             .capture_unix_ms = item.capture_unix_ms,
                             .decision = "unknown",
                             .subject_id = {},
                             .score = verdict ? verdict->score : 0.f,
                             .worker_id = worker_id};
    if (item.liveness.spoof) {
        r.decision = "spoof";
    } else if (verdict && verdict->known && (!item.liveness.checked || item.liveness.live)) {
        r.decision = "known";
        r.subject_id = verdict->subject_id;
    }
    return r;
}

struct RecognitionWorker::Pending {
    std::unique_ptr<bus::Delivery> delivery;
    bus::Envelope env;
    pipeline::FaceItem item;
    std::optional<pipeline::IdentityVerdict> verdict;
    bool settled = false;  ///< already naked / terminated (embedding or search failed)
};

RecognitionWorker::RecognitionWorker(WorkerConfig config, bus::Bus& bus,
                                     std::shared_ptr<FaceEmbedder> embedder,
                                     std::shared_ptr<const pipeline::Identifier> identifier)
    : config_(std::move(config)),
      bus_(bus),
      embedder_(std::move(embedder)),
      identifier_(std::move(identifier)),
      seen_(std::max<std::size_t>(config_.result_cache, 1)) {}

RecognitionWorker::~RecognitionWorker() { Stop(); }

Status RecognitionWorker::Start() {
    FG_RETURN_IF_ERROR(bus::ValidToken(config_.region, "worker region"));
    FG_RETURN_IF_ERROR(bus::ValidToken(config_.group, "worker group"));
    if (config_.threads < 1) return InvalidArgument("worker threads: must be >= 1");
    if (config_.fetch_batch < 1) return InvalidArgument("worker fetch batch: must be >= 1");
    if (!embedder_) return InvalidArgument("worker: no embedder");
    if (!threads_.empty()) return FailedPrecondition("worker: already started");
    stop_.store(false);
    for (int i = 0; i < config_.threads; ++i) threads_.emplace_back([this, i] { Loop(i); });
    return Status::Ok();
}

void RecognitionWorker::Stop() {
    stop_.store(true);
    for (std::thread& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

WorkerStats RecognitionWorker::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

void RecognitionWorker::Loop(int index) {
    std::unique_ptr<bus::Consumer> faces;
    std::chrono::milliseconds backoff = config_.backoff_min;
    while (!stop_.load()) {
        if (!faces) {
            auto c = bus_.Subscribe({.topic = bus::Topic::kFaces, .region = config_.region, .group = config_.group});
            if (!c.ok()) {
                spdlog::warn("worker {}#{}: subscribe: {} (retrying)", config_.worker_id, index, c.status().ToString());
                SleepUnlessStopped(backoff, stop_);
                backoff = std::min(backoff * 2, config_.backoff_max);
                continue;
            }
            faces = std::move(*c);
        }
        const std::uint64_t failures_before = stats().publish_failures;
        Result<int> n = Poll(*faces);
        if (!n.ok() || stats().publish_failures != failures_before) {
            // The bus is unreachable (the client reconnects by itself): wait, doubling, then retry.
            SleepUnlessStopped(backoff, stop_);
            backoff = std::min(backoff * 2, config_.backoff_max);
        } else {
            backoff = config_.backoff_min;
        }
    }
}

std::optional<std::string> RecognitionWorker::CachedResult(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(id);
    if (it == cache_.end()) return std::nullopt;
    return it->second.first;
}

void RecognitionWorker::RememberResult(const std::string& id, const std::string& encoded) {
    std::lock_guard lock(mu_);
    if (config_.result_cache == 0 || cache_.contains(id)) return;
    cache_order_.push_back(id);
    cache_.emplace(id, std::make_pair(encoded, std::prev(cache_order_.end())));
    while (cache_.size() > config_.result_cache) {
        cache_.erase(cache_order_.front());
        cache_order_.pop_front();
    }
}

Result<int> RecognitionWorker::Poll(bus::Consumer& faces) {
    auto batch = faces.Fetch(config_.fetch_batch, config_.fetch_wait);
    if (!batch.ok()) {
        std::lock_guard lock(mu_);
        ++stats_.bus_errors;
        return batch.status();
    }
    const int handled = static_cast<int>(batch->size());
    {
        std::lock_guard lock(mu_);
        stats_.fetched += batch->size();
        for (const auto& d : *batch) stats_.redelivered += d->delivery_count() > 1;
    }
    auto count = [this](std::uint64_t WorkerStats::*field) {
        std::lock_guard lock(mu_);
        ++(stats_.*field);
    };

    std::vector<Pending> work;
    for (std::unique_ptr<bus::Delivery>& d : *batch) {
        const std::string id = d->id();
        // A redelivery of an item this worker already answered (its ack was lost, or the ack
        // wait passed): publish the same result again (same id: deduped) and ack.
        if (seen_.Contains(id)) {
            if (std::optional<std::string> cached = CachedResult(id)) {
                auto env = bus::DecodeEnvelope(*cached, config_.keys.get());
                if (env.ok() && bus_.Publish({.topic = bus::Topic::kResults, .region = env->region,
                                              .camera = env->camera},
                                             id, *cached)
                                    .ok()) {
                    count(&WorkerStats::republished);
                    if (!d->Ack().ok()) count(&WorkerStats::ack_failures);
                } else {
                    count(&WorkerStats::publish_failures);
                    (void)d->Nak(config_.nak_delay);
                }
                continue;
            }
        }
        auto env = bus::DecodeEnvelope(d->data(), config_.keys.get());
        if (!env.ok()) {
            if (env.status().code() == StatusCode::kFailedPrecondition) {
                // A newer major version, or sealed with a key this worker lacks: not poison, just
                // not ours. Leave it for a newer / configured worker (max_deliver bounds it).
                spdlog::warn("worker {}: item {} left for another worker: {}", config_.worker_id, id,
                             env.status().ToString());
                count(&WorkerStats::newer_version);
                (void)d->Nak(config_.nak_delay);
            } else {
                spdlog::warn("worker {}: item {} terminated: {}", config_.worker_id, id, env.status().ToString());
                count(&WorkerStats::poison);
                (void)d->Term();
            }
            continue;
        }
        Result<pipeline::FaceItem> item = env->type == bus::MessageType::kFaceItem
                                              ? bus::FaceItemFromEnvelope(*env)
                                              : Result<pipeline::FaceItem>(InvalidArgument(
                                                    "not a face item: " + std::string(bus::MessageTypeName(env->type))));
        if (item.ok() && item->item_id != env->id) item = InvalidArgument("item id differs from the envelope id");
        if (item.ok() && item->embed && !item->liveness.spoof &&
            (item->aligned.empty() || item->aligned.type() != CV_8UC3))
            item = InvalidArgument("face item without a BGR crop");
        if (!item.ok()) {
            spdlog::warn("worker {}: item {} terminated: {}", config_.worker_id, id, item.status().ToString());
            count(&WorkerStats::poison);
            (void)d->Term();
            continue;
        }
        work.push_back(Pending{.delivery = std::move(d), .env = std::move(*env), .item = std::move(*item)});
    }

    // Embed what needs it in one call; on failure one by one, so one bad crop fails alone.
    std::vector<std::size_t> to_embed;
    for (std::size_t i = 0; i < work.size(); ++i)
        if (work[i].item.embed && !work[i].item.liveness.spoof) to_embed.push_back(i);
    auto search = [this, &count](Pending& p, const Embedding& e) {
        if (!identifier_) {
            p.verdict = pipeline::IdentityVerdict{};
            return;
        }
        Result<pipeline::IdentityVerdict> v = identifier_->Identify(e);
        if (v.ok()) {
            p.verdict = std::move(*v);
            return;
        }
        spdlog::warn("worker {}: gallery search for {}: {}", config_.worker_id, p.item.item_id, v.status().ToString());
        count(&WorkerStats::embed_failures);
        (void)p.delivery->Nak(config_.nak_delay);
        p.settled = true;
    };
    if (!to_embed.empty()) {
        std::vector<cv::Mat> crops;
        for (std::size_t i : to_embed) crops.push_back(work[i].item.aligned);
        std::vector<Embedding> embs;
        Status st = embedder_->Embed(crops, embs);
        if (st.ok() && embs.size() == crops.size()) {
            for (std::size_t k = 0; k < to_embed.size(); ++k) search(work[to_embed[k]], embs[k]);
        } else {
            for (std::size_t i : to_embed) {
                Pending& p = work[i];
                std::vector<Embedding> one;
                Status s1 = embedder_->Embed({p.item.aligned}, one);
                if (s1.ok() && one.size() == 1) {
                    search(p, one[0]);
                    continue;
                }
                if (s1.ok()) s1 = Internal("embedder returned no embedding");
                spdlog::warn("worker {}: embedding {}: {}", config_.worker_id, p.item.item_id, s1.ToString());
                if (s1.code() == StatusCode::kInvalidArgument ||
                    p.delivery->delivery_count() >= config_.max_attempts) {
                    count(&WorkerStats::poison);
                    (void)p.delivery->Term();
                } else {
                    count(&WorkerStats::embed_failures);
                    (void)p.delivery->Nak(config_.nak_delay);
                }
                p.settled = true;
            }
        }
    }

    // Publish each result durably, then ack its item (never the other way round).
    for (Pending& p : work) {
        if (p.settled) continue;
        const bus::RecognitionResult r = Decide(p.item, p.verdict ? &*p.verdict : nullptr, config_.worker_id);
        Result<bus::Envelope> renv = bus::ResultEnvelope(r, p.env.region, p.env.camera, NowUnixMs());
        Result<std::string> bytes = renv.ok() ? bus::EncodeEnvelope(*renv, config_.seal_results ? config_.keys.get() : nullptr)
                                              : Result<std::string>(renv.status());
        if (!bytes.ok()) {  // a route token the edge should never have sent
            spdlog::warn("worker {}: result for {}: {}", config_.worker_id, p.item.item_id, bytes.status().ToString());
            count(&WorkerStats::poison);
            (void)p.delivery->Term();
            continue;
        }
        auto ack = bus_.Publish({.topic = bus::Topic::kResults, .region = p.env.region, .camera = p.env.camera},
                                r.item_id, *bytes);
        if (!ack.ok()) {
            spdlog::warn("worker {}: publishing the result of {}: {} (item naked)", config_.worker_id,
                         p.item.item_id, ack.status().ToString());
            count(&WorkerStats::publish_failures);
            (void)p.delivery->Nak(config_.nak_delay);
            continue;
        }
        seen_.FirstSeen(r.item_id);
        RememberResult(r.item_id, *bytes);
        {
            std::lock_guard lock(mu_);
            ++stats_.results;
            if (r.decision == "known") ++stats_.known;
            else if (r.decision == "spoof") ++stats_.spoof;
            else ++stats_.unknown;
        }
        if (!p.delivery->Ack().ok()) count(&WorkerStats::ack_failures);
    }
    return handled;
}

}  // namespace fg::cluster
