// SPDX-License-Identifier: Apache-2.0
// The bus between the scale-out roles: publish a message with an id and a route and get a
// durable ack; consume a work queue with explicit ack / nak(delay) / term and redelivery.
// Two implementations behind it: NATS JetStream (nats.h) and Kafka (kafka.h). Transport is
// at-least-once: a message can arrive twice (a lost ack, a restart, a rebalance), so every
// consumer dedupes by message id (DedupeWindow, dedupe.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fg/base/status.h"
#include "fg/bus/envelope.h"

namespace fg::bus {

/// The three streams of the bus.
enum class Topic {
    kFaces,           ///< face items, a work queue shared by the workers of a region
    kResults,         ///< recognition results, read by every consumer group
    kGalleryChanges,  ///< the gallery change log, replayed by every worker
};

/// The topic a message type travels on.
Topic TopicOf(MessageType type);

/// Where a message goes: its topic, region and camera (both routing tokens; the camera keeps a
/// camera's items in order on Kafka and names the NATS subject's last token).
struct Route {
    Topic topic = Topic::kFaces;
    std::string region;
    std::string camera;  ///< unused for kGalleryChanges
};

/// A routing token (region, camera, group): 1..64 characters of [A-Za-z0-9_-], so it is safe in
/// a NATS subject and a Kafka topic. InvalidArgument naming `what` otherwise.
Status ValidToken(std::string_view token, std::string_view what);

/// NATS subject of a route: fg.faces.<region>.<camera>, fg.results.<region>.<camera>,
/// fg.gallery.changes. Kafka topic: fg.faces.<region>, fg.results.<region>, fg.gallery.changes.
std::string NatsSubject(const Route& route);
std::string KafkaTopic(const Route& route);

struct PublishAck {
    bool duplicate = false;      ///< the bus already held a message with this id (NATS dedupe)
    std::uint64_t sequence = 0;  ///< stream sequence (NATS) or partition offset (Kafka)
};

/// One received message. Exactly one of Ack/Nak/Term should be called; a message neither acked
/// nor nakked is redelivered after the ack wait (NATS) or after a rebalance (Kafka).
/// Thread-safety: not thread-safe; may be handed to another thread and settled there.
class Delivery {
  public:
    virtual ~Delivery() = default;
    virtual std::string_view data() const = 0;  ///< the encoded envelope
    virtual const std::string& id() const = 0;  ///< the publisher's message id
    /// 1 on first delivery; NATS counts redeliveries, Kafka reports 1 (it has no counter).
    virtual std::uint64_t delivery_count() const = 0;
    virtual std::uint64_t sequence() const = 0;  ///< stream sequence / partition offset
    /// Done with it: never redelivered. NATS waits for the server's confirmation (AckSync);
    /// Kafka commits the partition's offsets up to the lowest unsettled message.
    virtual Status Ack() = 0;
    /// Redeliver after `delay` (NATS). Kafka rewinds the partition to this message (later
    /// messages of the partition come again too) and ignores the delay.
    virtual Status Nak(std::chrono::milliseconds delay) = 0;
    /// Never redeliver (a poison message). Kafka treats it as Ack.
    virtual Status Term() = 0;
};

/// Thread-safety: one thread at a time (make one Consumer per worker thread).
class Consumer {
  public:
    virtual ~Consumer() = default;
    /// Up to `max` messages, waiting at most `wait` for the first. An empty vector when none
    /// came; Unavailable while the bus is unreachable (call again: the client reconnects).
    virtual Result<std::vector<std::unique_ptr<Delivery>>> Fetch(int max,
                                                                 std::chrono::milliseconds wait) = 0;
};

struct Subscription {
    Topic topic = Topic::kFaces;
    std::string region;  ///< kFaces / kResults: the region consumed (a token)
    /// Consumers with the same group share the messages (NATS durable consumer, Kafka consumer
    /// group); distinct groups each get every message (kResults, kGalleryChanges). On NATS a
    /// region's face queue has exactly one group (a work-queue stream).
    std::string group = "workers";
};

/// Counters for operations (monotonic since creation).
struct BusStats {
    std::uint64_t published = 0;       ///< acked publishes
    std::uint64_t publish_retries = 0; ///< attempts repeated after a failure or timeout
    std::uint64_t duplicates = 0;      ///< publishes the bus reported as duplicates
    std::uint64_t publish_failures = 0;///< publishes that gave up (Unavailable returned)
    std::uint64_t redeliveries = 0;    ///< fetched messages with delivery_count > 1
    std::uint64_t disconnects = 0;     ///< connection losses seen
    std::uint64_t reconnects = 0;      ///< connections re-established
};

/// A request handler being served; destroying it stops answering (it waits for a handler call
/// in progress to return).
class RpcService {
  public:
    virtual ~RpcService() = default;
};

/// Request/reply without persistence (NATS core request/reply with queue groups): the query
/// plane of the sharded gallery and `facegate cluster status`. Subjects are NATS subjects of
/// tokens from ValidToken joined by '.'.
/// Thread-safety: all methods may be called concurrently.
class Rpc {
  public:
    /// Returns the reply to one request. Runs on the client's delivery thread, one request at a
    /// time per service: it must not block for long.
    using Handler = std::function<std::string(std::string_view request)>;
    virtual ~Rpc() = default;
    /// The first reply within `timeout`. Unavailable when nobody serves `subject` (NATS "no
    /// responders", known at once) or no reply came in time; InvalidArgument for a bad subject.
    virtual Result<std::string> Request(const std::string& subject, std::string_view data,
                                        std::chrono::milliseconds timeout) = 0;
    /// Every reply that arrives within `window` (a broadcast to all servers of `subject`); an
    /// empty vector when nobody answered.
    virtual Result<std::vector<std::string>> Gather(const std::string& subject, std::string_view data,
                                                    std::chrono::milliseconds window) = 0;
    /// Answers the requests on `subject`. With a `queue` name each request reaches one member of
    /// that queue group (one replica of a shard; the server skips members that left), without
    /// one every server gets every request (status). Returns once the server knows the
    /// subscription (a request sent after it reaches this service). Services must be destroyed
    /// before the Bus.
    virtual Result<std::unique_ptr<RpcService>> Serve(const std::string& subject, const std::string& queue,
                                                      Handler handler) = 0;
};

/// Thread-safety: all methods are safe to call concurrently. Consumers and deliveries must not
/// outlive the Bus that made them (NATS: they use its connection).
class Bus {
  public:
    virtual ~Bus() = default;
    /// Publishes `data` under `id` and blocks until the bus stored it durably (NATS: the
    /// stream's ack; Kafka: the delivery report with acks=all), retrying with the same id (so
    /// retries are deduped) until the configured publish timeout. Unavailable after that (the
    /// caller buffers: the edge's on-disk buffer); InvalidArgument for bad route tokens.
    virtual Result<PublishAck> Publish(const Route& route, const std::string& id,
                                       std::string_view data) = 0;
    virtual Result<std::unique_ptr<Consumer>> Subscribe(const Subscription& sub) = 0;
    virtual BusStats stats() const = 0;
    /// Request/reply on the same connection; null when the bus has none (Kafka). Lives as long
    /// as the Bus.
    virtual Rpc* rpc() { return nullptr; }
    /// Face items waiting for the region's workers (NATS: the work-queue consumer's pending plus
    /// unacked; Kafka: Unimplemented). For `cluster status` and the lag metric.
    virtual Result<std::uint64_t> Backlog(const std::string& region, const std::string& group) {
        (void)region;
        (void)group;
        return Status(StatusCode::kUnimplemented, "this bus does not report its backlog");
    }
};

/// Encodes `env` (sealed with `keys` when given) and publishes it on its route
/// (TopicOf(env.type), env.region, env.camera) under env.id.
Result<PublishAck> PublishEnvelope(Bus& bus, const Envelope& env,
                                   const gallery::KeyRing* keys = nullptr);

}  // namespace fg::bus
