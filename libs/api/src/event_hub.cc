// SPDX-License-Identifier: Apache-2.0
#include "fg/api/event_hub.h"

#include <algorithm>
#include <vector>

namespace fg::api {

EventHub::EventHub(std::size_t backlog) : capacity_(std::max<std::size_t>(backlog, 1)) {}

bool EventHub::Matches(const SubscribeOptions& o, const HubEvent& e) {
    return (o.stream.empty() || o.stream == e.stream_id) && (o.type.empty() || o.type == e.type);
}

Status EventHub::Publish(const events::Event& event) {
    HubEvent e;
    e.id = event.event_id;
    e.stream_id = event.stream_id;
    e.type = std::string(events::EventTypeName(event.type()));
    // Privacy: the live feed carries identities, never face images.
    events::Event copy = event;
    if (auto* r = std::get_if<events::Recognized>(&copy.payload)) r->best_shot_jpeg_base64.clear();
    if (auto* u = std::get_if<events::UnknownFace>(&copy.payload)) u->best_shot_jpeg_base64.clear();
    e.json = events::ToJson(copy).dump();
    Deliver(std::move(e));
    return Status::Ok();
}

void EventHub::PublishJson(const std::string& stream_id, const std::string& type, std::string json) {
    Deliver(HubEvent{events::NewEventId(), stream_id, type, std::move(json)});
}

void EventHub::Deliver(HubEvent e) {
    std::lock_guard lock(mu_);
    ++stats_.published;
    ++stats_.delivered;
    backlog_.push_back(e);
    while (backlog_.size() > capacity_) backlog_.pop_front();
    for (auto it = subs_.begin(); it != subs_.end();) {
        if (Matches(it->second.options, e) && !it->second.callback(e)) {
            it = subs_.erase(it);
        } else {
            ++it;
        }
    }
}

events::SinkStats EventHub::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

EventHub::Subscription EventHub::Subscribe(const SubscribeOptions& options, Callback callback) {
    std::lock_guard lock(mu_);
    Subscription s;
    s.id = next_id_++;
    if (!options.last_event_id.empty()) {
        auto from = std::find_if(backlog_.begin(), backlog_.end(),
                                 [&](const HubEvent& e) { return e.id == options.last_event_id; });
        if (from == backlog_.end()) {
            s.gap = true;
            if (options.on_gap) options.on_gap();
            from = backlog_.begin();
        } else {
            ++from;  // resume after the last event the client saw
        }
        for (auto it = from; it != backlog_.end(); ++it) {
            if (!Matches(options, *it)) continue;
            ++s.replayed;
            if (!callback(*it)) return s;  // gone during the replay: not registered
        }
    }
    subs_.emplace(s.id, Sub{options, std::move(callback)});
    return s;
}

void EventHub::Unsubscribe(std::uint64_t id) {
    std::lock_guard lock(mu_);
    subs_.erase(id);
}

std::size_t EventHub::subscribers() const {
    std::lock_guard lock(mu_);
    return subs_.size();
}

std::size_t EventHub::backlog_size() const {
    std::lock_guard lock(mu_);
    return backlog_.size();
}

}  // namespace fg::api
