// SPDX-License-Identifier: Apache-2.0
// The live event feed of the service: an events::Sink that keeps a bounded in-memory backlog of
// recent events and fans every new one out to subscribers (the SSE clients of GET /v1/events).
// A subscriber can resume after the last event it saw (Last-Event-ID).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "fg/events/sink.h"

namespace fg::api {

/// One event as subscribers receive it: its id, stream, type and JSON text (no images: the
/// service's pipeline never attaches best-shot crops to the hub's copy).
struct HubEvent {
    std::string id;
    std::string stream_id;
    std::string type;
    std::string json;
};

struct SubscribeOptions {
    std::string stream;         ///< "" = every stream
    std::string type;           ///< "" = every type
    std::string last_event_id;  ///< "" = live only; else replay the backlog after that id
    /// Called before the replay when last_event_id is not in the backlog (it fell out, or never
    /// was): the replay then starts from the oldest event kept.
    std::function<void()> on_gap;
};

/// Thread-safety: everything is thread-safe. Subscriber callbacks run on the publishing thread
/// (a stream thread) under the hub's lock: they must be quick and must not call the hub
/// (StreamWriter::Write only queues).
class EventHub final : public events::Sink {
  public:
    /// A callback that returns false is unsubscribed (its client is gone).
    using Callback = std::function<bool(const HubEvent&)>;

    explicit EventHub(std::size_t backlog = 1000);

    Status Publish(const events::Event& event) override;
    /// An event that is not a pipeline event (e.g. "sighting" from the history): `json` is the
    /// whole SSE data object; a fresh id is assigned. Same fan-out and backlog as Publish.
    void PublishJson(const std::string& stream_id, const std::string& type, std::string json);
    Status Flush(events::Deadline) override { return Status::Ok(); }
    events::SinkStats stats() const override;
    std::string name() const override { return "event_hub"; }

    struct Subscription {
        std::uint64_t id = 0;
        /// Last-Event-ID was given but is no longer (or never was) in the backlog: the replay
        /// started from the oldest event kept.
        bool gap = false;
        std::size_t replayed = 0;
    };
    /// Replays the matching backlog (per options) through `callback`, then delivers every new
    /// matching event until Unsubscribe or the callback returns false. Replay and registration
    /// happen under one lock, so nothing is missed or repeated.
    Subscription Subscribe(const SubscribeOptions& options, Callback callback);
    void Unsubscribe(std::uint64_t id);
    std::size_t subscribers() const;
    std::size_t backlog_size() const;

  private:
    struct Sub {
        SubscribeOptions options;
        Callback callback;
    };
    static bool Matches(const SubscribeOptions& o, const HubEvent& e);
    void Deliver(HubEvent e);

    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::deque<HubEvent> backlog_;
    std::map<std::uint64_t, Sub> subs_;
    std::uint64_t next_id_ = 1;
    events::SinkStats stats_;
};

}  // namespace fg::api
