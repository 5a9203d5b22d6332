// SPDX-License-Identifier: Apache-2.0
// An in-memory bus::Bus for the worker's and the result consumer's unit tests: streams per topic
// and region, consumer groups with explicit ack / nak / term and redelivery, a dedupe on message
// id like NATS's Nats-Msg-Id (switchable, to model a repeat after the window), and switches that
// make publishes, fetches and acks fail the way a real bus does.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "fg/bus/bus.h"

namespace fg::cluster::testing {

/// Thread-safety: every method is safe to call concurrently (one mutex).
class FakeBus final : public bus::Bus {
  public:
    struct Message {
        std::string id;
        std::string data;
        bus::Route route;
    };

    Result<bus::PublishAck> Publish(const bus::Route& route, const std::string& id,
                                    std::string_view data) override {
        std::lock_guard lock(mu_);
        if (publish_failures_ > 0) {
            --publish_failures_;
            return Unavailable("fake bus: publish failed");
        }
        Stream& s = streams_[Key(route.topic, route.region)];
        if (dedupe_ && s.ids.contains(id)) return bus::PublishAck{.duplicate = true, .sequence = 0};
        s.ids.insert(id);
        s.messages.push_back({id, std::string(data), route});
        ++stats_.published;
        return bus::PublishAck{.duplicate = false, .sequence = s.messages.size()};
    }

    Result<std::unique_ptr<bus::Consumer>> Subscribe(const bus::Subscription& sub) override {
        std::lock_guard lock(mu_);
        if (down_) return Unavailable("fake bus: down");
        return std::unique_ptr<bus::Consumer>(std::make_unique<FakeConsumer>(*this, Key(sub.topic, sub.region), sub.group));
    }

    bus::BusStats stats() const override {
        std::lock_guard lock(mu_);
        return stats_;
    }

    // --- controls ---
    void SetDown(bool down) { std::lock_guard l(mu_); down_ = down; }
    void FailPublishes(int n) { std::lock_guard l(mu_); publish_failures_ = n; }
    void FailAcks(int n) { std::lock_guard l(mu_); ack_failures_ = n; }
    void SetDedupe(bool on) { std::lock_guard l(mu_); dedupe_ = on; }
    /// The ack wait passed: every unsettled delivery of every group becomes available again.
    void ExpireInflight() {
        std::lock_guard l(mu_);
        for (auto& [k, g] : groups_)
            for (auto& [i, st] : g.state)
                if (st == kInflight) st = kAvailable;
    }
    std::vector<Message> Messages(bus::Topic topic, const std::string& region) const {
        std::lock_guard l(mu_);
        auto it = streams_.find(Key(topic, region));
        return it == streams_.end() ? std::vector<Message>{} : it->second.messages;
    }
    /// Messages of the stream `group` has settled (acked or terminated) / terminated.
    int Settled(bus::Topic topic, const std::string& region, const std::string& group) const {
        std::lock_guard l(mu_);
        auto it = groups_.find(Key(topic, region) + "|" + group);
        int n = 0;
        if (it != groups_.end())
            for (auto& [i, st] : it->second.state) n += st == kAcked || st == kTermed;
        return n;
    }
    int Termed(bus::Topic topic, const std::string& region, const std::string& group) const {
        std::lock_guard l(mu_);
        auto it = groups_.find(Key(topic, region) + "|" + group);
        int n = 0;
        if (it != groups_.end())
            for (auto& [i, st] : it->second.state) n += st == kTermed;
        return n;
    }
    int naks() const { std::lock_guard l(mu_); return naks_; }

  private:
    enum State { kAvailable, kInflight, kAcked, kTermed };
    struct Stream {
        std::vector<Message> messages;
        std::set<std::string> ids;
    };
    struct Group {
        std::map<std::size_t, State> state;  ///< by message index; absent = available
        std::map<std::size_t, std::uint64_t> deliveries;
    };

    static std::string Key(bus::Topic t, const std::string& region) {
        return std::to_string(static_cast<int>(t)) + "/" + region;
    }

    class FakeDelivery final : public bus::Delivery {
      public:
        FakeDelivery(FakeBus& bus, std::string group, std::size_t index, Message m, std::uint64_t count)
            : bus_(bus), group_(std::move(group)), index_(index), m_(std::move(m)), count_(count) {}
        std::string_view data() const override { return m_.data; }
        const std::string& id() const override { return m_.id; }
        std::uint64_t delivery_count() const override { return count_; }
        std::uint64_t sequence() const override { return index_ + 1; }
        Status Ack() override { return bus_.Settle(group_, index_, kAcked); }
        Status Nak(std::chrono::milliseconds) override { return bus_.Settle(group_, index_, kAvailable); }
        Status Term() override { return bus_.Settle(group_, index_, kTermed); }

      private:
        FakeBus& bus_;
        std::string group_;
        std::size_t index_;
        Message m_;
        std::uint64_t count_;
    };

    class FakeConsumer final : public bus::Consumer {
      public:
        FakeConsumer(FakeBus& bus, std::string stream, std::string group)
            : bus_(bus), stream_(std::move(stream)), group_(std::move(group)) {}
        Result<std::vector<std::unique_ptr<bus::Delivery>>> Fetch(int max, std::chrono::milliseconds) override {
            return bus_.Take(stream_, group_, max);
        }

      private:
        FakeBus& bus_;
        std::string stream_, group_;
    };

    Result<std::vector<std::unique_ptr<bus::Delivery>>> Take(const std::string& stream, const std::string& group,
                                                             int max) {
        std::lock_guard l(mu_);
        if (down_) return Unavailable("fake bus: down");
        std::vector<std::unique_ptr<bus::Delivery>> out;
        const std::string gk = stream + "|" + group;
        Group& g = groups_[gk];
        const std::vector<Message>& msgs = streams_[stream].messages;
        for (std::size_t i = 0; i < msgs.size() && static_cast<int>(out.size()) < max; ++i) {
            auto it = g.state.find(i);
            if (it != g.state.end() && it->second != kAvailable) continue;
            g.state[i] = kInflight;
            const std::uint64_t n = ++g.deliveries[i];
            if (n > 1) ++stats_.redeliveries;
            out.push_back(std::make_unique<FakeDelivery>(*this, gk, i, msgs[i], n));
        }
        return out;
    }

    Status Settle(const std::string& gk, std::size_t index, State to) {
        std::lock_guard l(mu_);
        if (to == kAcked && ack_failures_ > 0) {  // the ack is lost: the message stays in flight
            --ack_failures_;
            return Unavailable("fake bus: ack lost");
        }
        if (to == kAvailable) ++naks_;
        groups_[gk].state[index] = to;
        return Status::Ok();
    }

    mutable std::mutex mu_;
    std::map<std::string, Stream> streams_;
    std::map<std::string, Group> groups_;
    bus::BusStats stats_;
    bool down_ = false;
    bool dedupe_ = true;
    int publish_failures_ = 0;
    int ack_failures_ = 0;
    int naks_ = 0;
};

}  // namespace fg::cluster::testing
