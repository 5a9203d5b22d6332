// SPDX-License-Identifier: Apache-2.0
// The recognition worker of the scale-out cluster (docs/scale.md, "Worker"): it takes face items
// from the bus, embeds their crops, searches the gallery, decides known / unknown / spoof per
// item and publishes one result per item, acking the item only once the result is durably on the
// bus. Exactly once at the consumer comes from that order plus dedupe by item id (the result's id
// is the item's id, so a redelivered item yields a result the bus and the consumer drop).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "fg/base/status.h"
#include "fg/bus/bus.h"
#include "fg/bus/dedupe.h"
#include "fg/bus/messages.h"
#include "fg/core/embedding.h"
#include "fg/pipeline/models.h"

namespace fg::gallery {
class KeyRing;
}

namespace fg::cluster {

/// Embeds aligned crops. Thread-safe: every recognition thread calls it. The real one wraps the
/// pipeline's EmbedBatcher (embedders.h); tests and the plumbing benchmark use a stub.
class FaceEmbedder {
  public:
    virtual ~FaceEmbedder() = default;
    /// One L2-normalised embedding per crop (BGR8 at the model's input size), in order.
    /// InvalidArgument for a crop the model cannot take; anything else is a transient failure.
    virtual Status Embed(const std::vector<cv::Mat>& aligned, std::vector<Embedding>& out) = 0;
    virtual std::string model_id() const = 0;
};

struct WorkerConfig {
    std::string worker_id = "worker";  ///< named in results (operations only)
    std::string region;                ///< face items of this region (a routing token)
    std::string group = "workers";     ///< the region's work-queue group (one per region on NATS)
    int threads = 1;                   ///< recognition threads, one bus consumer each
    int fetch_batch = 8;               ///< items per fetch (embedded in one call)
    std::chrono::milliseconds fetch_wait{200};
    /// Back-off while the bus is unreachable or a publish fails: doubles from min to max.
    std::chrono::milliseconds backoff_min{50};
    std::chrono::milliseconds backoff_max{2000};
    /// Redelivery delay for an item whose result could not be published, or from a newer major
    /// version (left for a newer worker).
    std::chrono::milliseconds nak_delay{1000};
    /// An item whose embedding keeps failing is terminated at this delivery (a poison crop).
    std::uint64_t max_attempts = 5;
    /// Ids whose published result is remembered, to re-publish it on a redelivery without
    /// embedding again (about 300 bytes each). Older ids are simply processed again.
    std::size_t result_cache = 100'000;
    /// The gallery key: opens sealed face items (plain ones are read too); null = plain only.
    std::shared_ptr<const gallery::KeyRing> keys;
    /// Seal results with `keys` too. Results hold subject ids and scores, no biometric data, so
    /// they travel plain by default and any consumer can read them without the gallery key.
    bool seal_results = false;
};

struct WorkerStats {
    std::uint64_t fetched = 0;       ///< deliveries taken from the bus
    std::uint64_t redelivered = 0;   ///< of which not the first delivery (another worker died, an ack was lost)
    std::uint64_t results = 0;       ///< results published (first time for this worker)
    std::uint64_t republished = 0;   ///< redelivered items answered from the result cache
    std::uint64_t known = 0, unknown = 0, spoof = 0;
    std::uint64_t poison = 0;        ///< terminated: undecodable, wrong type, bad crop
    std::uint64_t newer_version = 0; ///< naked: a newer major version (or sealed, no key)
    std::uint64_t publish_failures = 0;  ///< results not published: the item was naked
    std::uint64_t embed_failures = 0;    ///< batches whose embedding failed: items naked
    std::uint64_t bus_errors = 0;    ///< failed fetches (bus unreachable)
    std::uint64_t ack_failures = 0;  ///< acks the bus did not confirm (the item comes again)
};

/// Decides one item from its gallery verdict (pure; the unit of the per-item policy): a spoof
/// verdict of the edge's liveness, or an item with nothing to embed, is "spoof"/"unknown"; a match
/// whose liveness is checked but not yet live is reported "unknown" (no door opens for a face
/// the edge could not call live); otherwise known / unknown as the gallery's threshold decided.
bus::RecognitionResult Decide(const pipeline::FaceItem& item, const pipeline::IdentityVerdict* verdict,
                              const std::string& worker_id);

/// Thread-safety: Start/Stop from one controlling thread; stats() and Poll() from any thread
/// (Poll with a Consumer used by no other thread). The Bus, embedder and identifier must outlive
/// the worker and be thread-safe (they are shared by the recognition threads).
class RecognitionWorker {
  public:
    /// `identifier` may be null: every face is then unknown (no gallery).
    RecognitionWorker(WorkerConfig config, bus::Bus& bus, std::shared_ptr<FaceEmbedder> embedder,
                      std::shared_ptr<const pipeline::Identifier> identifier);
    ~RecognitionWorker();
    RecognitionWorker(const RecognitionWorker&) = delete;
    RecognitionWorker& operator=(const RecognitionWorker&) = delete;

    /// Subscribes `threads` consumers (retrying in the background while the bus is down) and
    /// starts the recognition threads. InvalidArgument for a bad config.
    Status Start();
    /// Stops fetching, finishes the batches in flight (their results published, then acked) and
    /// joins. Items fetched but not done are not acked: the bus redelivers them. Idempotent.
    void Stop();

    /// One fetch and its processing on `faces` (the threads' loop body; tests call it directly).
    /// Returns the deliveries handled; Unavailable when the fetch failed.
    Result<int> Poll(bus::Consumer& faces);

    WorkerStats stats() const;
    const WorkerConfig& config() const { return config_; }

  private:
    struct Pending;
    void Loop(int index);
    std::optional<std::string> CachedResult(const std::string& id);
    void RememberResult(const std::string& id, const std::string& encoded);

    const WorkerConfig config_;
    bus::Bus& bus_;
    std::shared_ptr<FaceEmbedder> embedder_;
    std::shared_ptr<const pipeline::Identifier> identifier_;
    bus::DedupeWindow seen_;  ///< item ids whose result this worker published

    mutable std::mutex mu_;  ///< guards stats_ and the result cache
    WorkerStats stats_;
    std::list<std::string> cache_order_;  ///< oldest first
    std::unordered_map<std::string, std::pair<std::string, std::list<std::string>::iterator>> cache_;

    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

}  // namespace fg::cluster
