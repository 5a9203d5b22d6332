// SPDX-License-Identifier: Apache-2.0
// NATS JetStream bus: one connection (thread-safe in cnats) shared by publishers and pull
// consumers; durable consumers are created here and then bound to, so closing a consumer never
// deletes server state.
#include "fg/bus/nats.h"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

namespace fg::bus {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kFacesStream = "FG_FACES";
constexpr const char* kResultsStream = "FG_RESULTS";
constexpr const char* kGalleryStream = "FG_GALLERY";

std::int64_t Ns(milliseconds ms) { return static_cast<std::int64_t>(ms.count()) * 1'000'000; }

std::string NatsError(natsStatus s, jsErrCode jerr) {
    std::string text = natsStatus_GetText(s);
    if (jerr != 0) text += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
    const char* last = nats_GetLastError(nullptr);
    if (last != nullptr && *last != '\0' && text.find(last) == std::string::npos) {
        text += ": ";
        text += last;
    }
    return text;
}

/// Statuses that a retry may cure (the server is restarting, the link is down, a timeout).
bool Transient(natsStatus s) {
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_NOT_YET_CONNECTED ||
           s == NATS_CONNECTION_DISCONNECTED || s == NATS_INSUFFICIENT_BUFFER ||
           s == NATS_CONNECTION_CLOSED || s == NATS_IO_ERROR || s == NATS_STALE_CONNECTION ||
           s == NATS_ERR;
}

/// Publish errors no retry cures (anything else, JetStream API errors included, is retried
/// until the deadline: a restarting server answers "temporarily unavailable" for a while).
bool Permanent(natsStatus s) {
    return s == NATS_INVALID_ARG || s == NATS_MAX_PAYLOAD || s == NATS_INVALID_SUBJECT ||
           s == NATS_NOT_PERMITTED;
}

const char* StreamOf(Topic topic) {
    switch (topic) {
        case Topic::kFaces: return kFacesStream;
        case Topic::kResults: return kResultsStream;
        case Topic::kGalleryChanges: return kGalleryStream;
    }
    return kFacesStream;
}

/// Sleep before retry `attempt` (0-based), never past `deadline`. Backoff between attempts of a
/// failed call, not synchronisation.
void RetryPause(int attempt, Clock::time_point deadline) {
    const milliseconds pause = std::min(milliseconds(25) * (1 << std::min(attempt, 5)), milliseconds(500));
    const Clock::time_point until = std::min(Clock::now() + pause, deadline);
    std::this_thread::sleep_until(until);
}

struct Counters {
    std::atomic<std::uint64_t> published{0}, publish_retries{0}, duplicates{0}, publish_failures{0},
        redeliveries{0}, disconnects{0}, reconnects{0};
    std::atomic<bool> closing{false};  ///< our own Close: its disconnect is not news
};

void OnDisconnected(natsConnection*, void* closure) {
    auto* c = static_cast<Counters*>(closure);
    if (c->closing.load()) return;
    c->disconnects.fetch_add(1);
    spdlog::warn("bus: NATS connection lost; reconnecting (publishes buffer and retry)");
}
void OnConnected(natsConnection*, void*) { spdlog::info("bus: NATS connected"); }
void OnReconnected(natsConnection*, void* closure) {
    static_cast<Counters*>(closure)->reconnects.fetch_add(1);
    spdlog::info("bus: NATS connection re-established");
}

class NatsDelivery final : public Delivery {
  public:
    NatsDelivery(natsMsg* msg, milliseconds ack_timeout) : msg_(msg), ack_timeout_(ack_timeout) {
        const char* id = nullptr;
        if (natsMsgHeader_Get(msg_, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) id_ = id;
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, msg_) == NATS_OK && meta != nullptr) {
            count_ = meta->NumDelivered;
            seq_ = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        }
    }
    ~NatsDelivery() override { natsMsg_Destroy(msg_); }
    NatsDelivery(const NatsDelivery&) = delete;
    NatsDelivery& operator=(const NatsDelivery&) = delete;

    std::string_view data() const override {
        return {natsMsg_GetData(msg_), static_cast<std::size_t>(natsMsg_GetDataLength(msg_))};
    }
    const std::string& id() const override { return id_; }
    std::uint64_t delivery_count() const override { return count_; }
    std::uint64_t sequence() const override { return seq_; }

    Status Ack() override {
        jsOptions o;
        jsOptions_Init(&o);
        o.Wait = ack_timeout_.count();
        jsErrCode jerr = static_cast<jsErrCode>(0);
        // AckSync: the server confirms, so a lost ack is an error here rather than a silent
        // redelivery later (which the result's idempotency still absorbs: nats-server #4786).
        const natsStatus s = natsMsg_AckSync(msg_, &o, &jerr);
        if (s != NATS_OK) return Unavailable("nats ack of '" + id_ + "': " + NatsError(s, jerr));
        return Status::Ok();
    }
    Status Nak(milliseconds delay) override {
        const natsStatus s = delay.count() > 0 ? natsMsg_NakWithDelay(msg_, delay.count(), nullptr)
                                               : natsMsg_Nak(msg_, nullptr);
        if (s != NATS_OK) return Unavailable("nats nak of '" + id_ + "': " + NatsError(s, {}));
        return Status::Ok();
    }
    Status Term() override {
        const natsStatus s = natsMsg_Term(msg_, nullptr);
        if (s != NATS_OK) return Unavailable("nats term of '" + id_ + "': " + NatsError(s, {}));
        return Status::Ok();
    }

  private:
    natsMsg* msg_;
    milliseconds ack_timeout_;
    std::string id_;
    std::uint64_t count_ = 1;
    std::uint64_t seq_ = 0;
};

class NatsConsumer final : public Consumer {
  public:
    NatsConsumer(natsSubscription* sub, milliseconds ack_timeout, Counters* counters)
        : sub_(sub), ack_timeout_(ack_timeout), counters_(counters) {}
    ~NatsConsumer() override { natsSubscription_Destroy(sub_); }
    NatsConsumer(const NatsConsumer&) = delete;
    NatsConsumer& operator=(const NatsConsumer&) = delete;

    Result<std::vector<std::unique_ptr<Delivery>>> Fetch(int max, milliseconds wait) override {
        std::vector<std::unique_ptr<Delivery>> out;
        if (max <= 0) return out;
        natsMsgList list{};
        jsErrCode jerr = static_cast<jsErrCode>(0);
        const natsStatus s =
            natsSubscription_Fetch(&list, sub_, max, std::max<std::int64_t>(wait.count(), 1), &jerr);
        if (s == NATS_TIMEOUT) return out;
        if (s != NATS_OK) {
            natsMsgList_Destroy(&list);
            return Unavailable("nats fetch: " + NatsError(s, jerr));
        }
        out.reserve(static_cast<std::size_t>(list.Count));
        for (int i = 0; i < list.Count; ++i) {
            auto d = std::make_unique<NatsDelivery>(list.Msgs[i], ack_timeout_);
            list.Msgs[i] = nullptr;  // owned by the delivery now
            if (d->delivery_count() > 1) counters_->redeliveries.fetch_add(1);
            out.push_back(std::move(d));
        }
        natsMsgList_Destroy(&list);
        return out;
    }

  private:
    natsSubscription* sub_;
    milliseconds ack_timeout_;
    Counters* counters_;
};

/// A served subject: the subscription's callback answers through `handler`; the destructor
/// unsubscribes and waits (OnComplete) until no callback runs any more.
class NatsRpcService final : public RpcService {
  public:
    NatsRpcService(natsConnection* nc, Rpc::Handler handler) : nc_(nc), handler_(std::move(handler)) {}
    ~NatsRpcService() override {
        if (sub_ == nullptr) return;
        std::unique_lock lock(mu_);
        if (natsSubscription_Unsubscribe(sub_) == NATS_OK)
            done_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return done_; });
        lock.unlock();
        natsSubscription_Destroy(sub_);
    }
    NatsRpcService(const NatsRpcService&) = delete;
    NatsRpcService& operator=(const NatsRpcService&) = delete;

    Status Start(const std::string& subject, const std::string& queue) {
        natsStatus s = queue.empty()
                           ? natsConnection_Subscribe(&sub_, nc_, subject.c_str(), &NatsRpcService::OnMsg, this)
                           : natsConnection_QueueSubscribe(&sub_, nc_, subject.c_str(), queue.c_str(),
                                                           &NatsRpcService::OnMsg, this);
        if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(sub_, &NatsRpcService::OnComplete, this);
        // The server must know the subscription before we say we serve (a flush round trip).
        if (s == NATS_OK) s = natsConnection_FlushTimeout(nc_, 2000);
        if (s != NATS_OK) return Unavailable("nats serve " + subject + ": " + NatsError(s, {}));
        return Status::Ok();
    }

  private:
    static void OnMsg(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
        auto* self = static_cast<NatsRpcService*>(closure);
        const char* reply = natsMsg_GetReply(msg);
        if (reply != nullptr && *reply != '\0') {
            std::string answer;
            try {
                answer = self->handler_(std::string_view(natsMsg_GetData(msg),
                                                         static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
            } catch (const std::exception& e) {  // a handler must not take the client thread down
                spdlog::error("rpc handler: {}", e.what());
            }
            if (!answer.empty())
                (void)natsConnection_Publish(nc, reply, answer.data(), static_cast<int>(answer.size()));
        }
        natsMsg_Destroy(msg);
    }
    static void OnComplete(void* closure) {
        auto* self = static_cast<NatsRpcService*>(closure);
        std::lock_guard lock(self->mu_);
        self->done_ = true;
        self->done_cv_.notify_all();
    }

    natsConnection* nc_;
    Rpc::Handler handler_;
    natsSubscription* sub_ = nullptr;
    std::mutex mu_;
    std::condition_variable done_cv_;
    bool done_ = false;
};

class NatsRpc final : public Rpc {
  public:
    explicit NatsRpc(natsConnection* nc) : nc_(nc) {}

    Result<std::string> Request(const std::string& subject, std::string_view data,
                                milliseconds timeout) override {
        if (subject.empty()) return InvalidArgument("rpc: empty subject");
        natsMsg* reply = nullptr;
        const natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), data.data(),
                                                    static_cast<int>(data.size()),
                                                    std::max<std::int64_t>(timeout.count(), 1));
        if (s != NATS_OK) {
            if (reply != nullptr) natsMsg_Destroy(reply);
            if (s == NATS_INVALID_SUBJECT || s == NATS_INVALID_ARG)
                return InvalidArgument("rpc " + subject + ": " + NatsError(s, {}));
            return Unavailable("rpc " + subject + ": " +
                               (s == NATS_NO_RESPONDERS ? std::string("no server answers it") : NatsError(s, {})));
        }
        std::string out(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
        natsMsg_Destroy(reply);
        return out;
    }

    Result<std::vector<std::string>> Gather(const std::string& subject, std::string_view data,
                                            milliseconds window) override {
        if (subject.empty()) return InvalidArgument("rpc: empty subject");
        natsInbox* inbox = nullptr;
        natsSubscription* sub = nullptr;
        natsStatus s = natsInbox_Create(&inbox);
        if (s == NATS_OK) s = natsConnection_SubscribeSync(&sub, nc_, inbox);
        if (s == NATS_OK)
            s = natsConnection_PublishRequest(nc_, subject.c_str(), inbox, data.data(), static_cast<int>(data.size()));
        std::vector<std::string> out;
        const auto deadline = Clock::now() + window;
        while (s == NATS_OK) {
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) break;
            natsMsg* msg = nullptr;
            const natsStatus n = natsSubscription_NextMsg(&msg, sub, left);
            if (n == NATS_TIMEOUT) break;
            if (n != NATS_OK) {
                s = n;
                break;
            }
            if (!natsMsg_IsNoResponders(msg))
                out.emplace_back(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
            natsMsg_Destroy(msg);
        }
        if (sub != nullptr) natsSubscription_Destroy(sub);
        if (inbox != nullptr) natsInbox_Destroy(inbox);
        if (s != NATS_OK) return Unavailable("rpc gather " + subject + ": " + NatsError(s, {}));
        return out;
    }

    Result<std::unique_ptr<RpcService>> Serve(const std::string& subject, const std::string& queue,
                                              Handler handler) override {
        if (subject.empty() || !handler) return InvalidArgument("rpc serve: empty subject or handler");
        auto service = std::make_unique<NatsRpcService>(nc_, std::move(handler));
        FG_RETURN_IF_ERROR(service->Start(subject, queue));
        return std::unique_ptr<RpcService>(std::move(service));
    }

  private:
    natsConnection* nc_;
};

class NatsBus final : public Bus {
  public:
    explicit NatsBus(NatsConfig config) : config_(std::move(config)) {}
    ~NatsBus() override {
        if (js_ != nullptr) jsCtx_Destroy(js_);
        if (nc_ != nullptr) {
            counters_.closing.store(true);
            natsConnection_Close(nc_);
            natsConnection_Destroy(nc_);
        }
        if (opts_ != nullptr) natsOptions_Destroy(opts_);
    }
    NatsBus(const NatsBus&) = delete;
    NatsBus& operator=(const NatsBus&) = delete;

    Status Start() {
        natsStatus s = natsOptions_Create(&opts_);
        std::vector<const char*>& servers = ServerList();
        if (servers.empty()) return InvalidArgument("nats: no server in url '" + config_.url + "'");
        if (s == NATS_OK) s = natsOptions_SetServers(opts_, servers.data(), static_cast<int>(servers.size()));
        if (s == NATS_OK) s = natsOptions_SetName(opts_, config_.name.c_str());
        if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts_, -1);  // forever; publish bounds the wait
        if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts_, config_.reconnect_wait.count());
        if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts_, config_.reconnect_buffer_bytes);
        if (s == NATS_OK) s = natsOptions_SetTimeout(opts_, 2000);
        // With a callback, Connect returns at once and keeps trying in the background (without
        // one it would block for MaxReconnect attempts: forever).
        if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts_, true, OnConnected, nullptr);
        if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts_, OnDisconnected, &counters_);
        if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts_, OnReconnected, &counters_);
        if (s != NATS_OK) return InvalidArgument("nats options: " + NatsError(s, {}));
        s = natsConnection_Connect(&nc_, opts_);
        if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
            return Unavailable("nats connect to " + config_.url + ": " + NatsError(s, {}));
        }
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = config_.ack_timeout.count();
        s = natsConnection_JetStream(&js_, nc_, &jo);
        if (s != NATS_OK) return Internal("nats JetStream context: " + NatsError(s, {}));
        rpc_ = std::make_unique<NatsRpc>(nc_);
        const auto deadline = Clock::now() + config_.publish_timeout;
        FG_RETURN_IF_ERROR(EnsureStream(kFacesStream, "fg.faces.>", js_WorkQueuePolicy, deadline));
        FG_RETURN_IF_ERROR(EnsureStream(kResultsStream, "fg.results.>", js_LimitsPolicy, deadline));
        FG_RETURN_IF_ERROR(EnsureStream(kGalleryStream, "fg.gallery.changes", js_LimitsPolicy, deadline));
        return Status::Ok();
    }

    Result<PublishAck> Publish(const Route& route, const std::string& id, std::string_view data) override {
        FG_RETURN_IF_ERROR(CheckRoute(route));
        if (id.empty()) return InvalidArgument("nats publish: empty message id");
        const std::string subject = NatsSubject(route);
        const auto start = Clock::now();
        const auto deadline = start + config_.publish_timeout;
        for (int attempt = 0;; ++attempt) {
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MsgId = id.c_str();
            po.ExpectStream = StreamOf(route.topic);
            po.MaxWait = std::clamp(left, milliseconds(1), config_.ack_timeout).count();
            jsPubAck* pa = nullptr;
            jsErrCode jerr = static_cast<jsErrCode>(0);
            const natsStatus s = js_Publish(&pa, js_, subject.c_str(), data.data(),
                                            static_cast<int>(data.size()), &po, &jerr);
            if (s == NATS_OK) {
                PublishAck ack{.duplicate = pa->Duplicate, .sequence = pa->Sequence};
                jsPubAck_Destroy(pa);
                counters_.published.fetch_add(1);
                if (ack.duplicate) counters_.duplicates.fetch_add(1);
                return ack;
            }
            if (Permanent(s)) {
                counters_.publish_failures.fetch_add(1);
                return InvalidArgument("nats publish of '" + id + "' to " + subject + ": " + NatsError(s, jerr));
            }
            if (Clock::now() >= deadline) {
                counters_.publish_failures.fetch_add(1);
                const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
                return Unavailable("nats publish of '" + id + "' to " + subject + ": " + NatsError(s, jerr) +
                                   " (gave up after " + std::to_string(attempt + 1) + " attempts in " +
                                   std::to_string(ms) + " ms)");
            }
            counters_.publish_retries.fetch_add(1);
            RetryPause(attempt, deadline);
        }
    }

    Result<std::unique_ptr<Consumer>> Subscribe(const Subscription& sub) override {
        FG_RETURN_IF_ERROR(ValidToken(sub.group, "group"));
        std::string filter, durable;
        if (sub.topic == Topic::kGalleryChanges) {
            filter = "fg.gallery.changes";
            durable = "gallery_" + sub.group;
        } else {
            FG_RETURN_IF_ERROR(ValidToken(sub.region, "region"));
            filter = (sub.topic == Topic::kFaces ? "fg.faces." : "fg.results.") + sub.region + ".*";
            durable = sub.group + "_" + sub.region;
        }
        const char* stream = StreamOf(sub.topic);

        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = durable.c_str();
        cc.FilterSubject = filter.c_str();
        cc.AckPolicy = js_AckExplicit;
        cc.DeliverPolicy = js_DeliverAll;
        cc.MaxDeliver = config_.max_deliver;
        // One gallery-change consumer per worker (each needs every change): the server forgets
        // one whose worker has been gone an hour, so restarts under new ids leave nothing behind.
        if (sub.topic == Topic::kGalleryChanges) cc.InactiveThreshold = Ns(std::chrono::hours(1));
        std::vector<std::int64_t> backoff;
        for (milliseconds b : config_.backoff) backoff.push_back(Ns(b));
        // The server takes the first backoff step as the ack wait.
        cc.AckWait = backoff.empty() ? Ns(config_.ack_wait) : backoff.front();
        if (!backoff.empty()) {
            cc.BackOff = backoff.data();
            cc.BackOffLen = static_cast<int>(backoff.size());
        }
        const auto deadline = Clock::now() + config_.publish_timeout;
        for (int attempt = 0;; ++attempt) {
            jsErrCode jerr = static_cast<jsErrCode>(0);
            jsConsumerInfo* ci = nullptr;
            natsStatus s = js_AddConsumer(&ci, js_, stream, &cc, nullptr, &jerr);
            if (s != NATS_OK && jerr != 0) {  // exists with another config: update it
                jerr = static_cast<jsErrCode>(0);
                s = js_UpdateConsumer(&ci, js_, stream, &cc, nullptr, &jerr);
            }
            if (ci != nullptr) jsConsumerInfo_Destroy(ci);
            if (s == NATS_OK) break;
            if (!Transient(s) || jerr != 0 || Clock::now() >= deadline) {
                return Unavailable("nats consumer '" + durable + "' on " + stream + " (" + filter +
                                   "): " + NatsError(s, jerr));
            }
            RetryPause(attempt, deadline);
        }
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Consumer = durable.c_str();  // bind: never create or delete it from here
        natsSubscription* nsub = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        const natsStatus s = js_PullSubscribe(&nsub, js_, filter.c_str(), durable.c_str(), nullptr, &so, &jerr);
        if (s != NATS_OK) {
            return Unavailable("nats pull subscribe '" + durable + "': " + NatsError(s, jerr));
        }
        return std::unique_ptr<Consumer>(std::make_unique<NatsConsumer>(nsub, config_.ack_timeout, &counters_));
    }

    BusStats stats() const override {
        return {.published = counters_.published.load(),
                .publish_retries = counters_.publish_retries.load(),
                .duplicates = counters_.duplicates.load(),
                .publish_failures = counters_.publish_failures.load(),
                .redeliveries = counters_.redeliveries.load(),
                .disconnects = counters_.disconnects.load(),
                .reconnects = counters_.reconnects.load()};
    }

    Rpc* rpc() override { return rpc_.get(); }

    Result<std::uint64_t> Backlog(const std::string& region, const std::string& group) override {
        FG_RETURN_IF_ERROR(ValidToken(region, "region"));
        FG_RETURN_IF_ERROR(ValidToken(group, "group"));
        const std::string durable = group + "_" + region;
        jsConsumerInfo* ci = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        const natsStatus s = js_GetConsumerInfo(&ci, js_, kFacesStream, durable.c_str(), nullptr, &jerr);
        if (s != NATS_OK) {
            if (jerr == JSConsumerNotFoundErr) return NotFound("no workers ever consumed region " + region);
            return Unavailable("nats consumer info '" + durable + "': " + NatsError(s, jerr));
        }
        const std::uint64_t n = ci->NumPending + static_cast<std::uint64_t>(std::max<std::int64_t>(ci->NumAckPending, 0));
        jsConsumerInfo_Destroy(ci);
        return n;
    }

  private:
    std::vector<const char*>& ServerList() {
        std::string rest = config_.url;
        std::size_t pos = 0;
        while (pos <= rest.size()) {
            const std::size_t comma = std::min(rest.find(',', pos), rest.size());
            if (comma > pos) urls_.push_back(rest.substr(pos, comma - pos));
            pos = comma + 1;
        }
        for (const std::string& u : urls_) servers_.push_back(u.c_str());
        return servers_;
    }

    static Status CheckRoute(const Route& route) {
        if (route.topic == Topic::kGalleryChanges) return Status::Ok();
        FG_RETURN_IF_ERROR(ValidToken(route.region, "region"));
        return ValidToken(route.camera, "camera");
    }

    Status EnsureStream(const char* name, const char* subject, jsRetentionPolicy retention,
                        Clock::time_point deadline) {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = name;
        const char* subjects[] = {subject};
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Retention = retention;
        sc.Storage = js_FileStorage;
        sc.Duplicates = Ns(config_.dedupe_window);
        sc.MaxAge = Ns(config_.max_age);
        sc.Replicas = config_.replicas;
        for (int attempt = 0;; ++attempt) {
            jsStreamInfo* si = nullptr;
            jsErrCode jerr = static_cast<jsErrCode>(0);
            natsStatus s = js_AddStream(&si, js_, &sc, nullptr, &jerr);
            if (s != NATS_OK && jerr == JSStreamNameExistErr) {
                jerr = static_cast<jsErrCode>(0);
                s = js_UpdateStream(&si, js_, &sc, nullptr, &jerr);
            }
            if (si != nullptr) jsStreamInfo_Destroy(si);
            if (s == NATS_OK) return Status::Ok();
            if (!Transient(s) || jerr != 0) {
                return InvalidArgument(std::string("nats stream ") + name + ": " + NatsError(s, jerr));
            }
            if (Clock::now() >= deadline) {
                return Unavailable(std::string("nats stream ") + name + " at " + config_.url + ": " +
                                   NatsError(s, jerr));
            }
            RetryPause(attempt, deadline);
        }
    }

    NatsConfig config_;
    std::vector<std::string> urls_;
    std::vector<const char*> servers_;
    Counters counters_;
    natsOptions* opts_ = nullptr;
    natsConnection* nc_ = nullptr;
    jsCtx* js_ = nullptr;
    std::unique_ptr<NatsRpc> rpc_;  // over nc_: destroyed before it (declared after)
};

}  // namespace

Result<std::unique_ptr<Bus>> CreateNatsBus(const NatsConfig& config) {
    if (config.url.empty()) return InvalidArgument("nats: empty url");
    if (config.ack_timeout.count() <= 0 || config.publish_timeout.count() <= 0) {
        return InvalidArgument("nats: ack_timeout and publish_timeout must be > 0");
    }
    if (config.max_deliver < 1) return InvalidArgument("nats: max_deliver must be >= 1");
    if (!config.backoff.empty() && config.max_deliver <= static_cast<int>(config.backoff.size())) {
        return InvalidArgument("nats: max_deliver must exceed the number of backoff steps");
    }
    if (config.reconnect_buffer_bytes <= 0) return InvalidArgument("nats: reconnect_buffer_bytes must be > 0");
    auto bus = std::make_unique<NatsBus>(config);
    FG_RETURN_IF_ERROR(bus->Start());
    return std::unique_ptr<Bus>(std::move(bus));
}

}  // namespace fg::bus
