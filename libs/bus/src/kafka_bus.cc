// SPDX-License-Identifier: Apache-2.0
// Kafka bus on librdkafka. Publish is synchronous per message (produce, then poll until its
// delivery report); a consumer commits a partition's offset only up to its lowest unsettled
// message, so nothing is committed before the worker published the result and acked.
#include "fg/bus/kafka.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

namespace fg::bus {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kIdHeader = "fg-msg-id";

/// Sets `pairs` on a new conf; InvalidArgument with librdkafka's message otherwise.
Result<rd_kafka_conf_t*> MakeConf(const std::vector<std::pair<std::string, std::string>>& pairs) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    for (const auto& [k, v] : pairs) {
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return InvalidArgument("kafka config " + k + ": " + err);
        }
    }
    return conf;
}

/// The outcome of one produce call, shared by the publisher and the delivery-report callback
/// (which may run after the publisher gave up waiting).
struct DeliveryState {
    std::mutex mu;
    bool done = false;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    std::int64_t offset = -1;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    auto* holder = static_cast<std::shared_ptr<DeliveryState>*>(m->_private);
    if (holder == nullptr) return;
    {
        std::lock_guard lock((*holder)->mu);
        (*holder)->done = true;
        (*holder)->err = m->err;
        (*holder)->offset = m->offset;
    }
    delete holder;
}

/// What a consumer has fetched and not yet settled, per partition; shared with its deliveries.
struct ConsumerState {
    std::mutex mu;
    rd_kafka_t* rk = nullptr;  ///< null once the consumer closed
    struct Partition {
        std::set<std::int64_t> outstanding;  ///< fetched, not settled
        std::int64_t high = -1;              ///< one past the highest settled offset
        std::int64_t committed = -1;
    };
    std::map<std::pair<std::string, std::int32_t>, Partition> partitions;

    /// Settles `offset` and commits what became contiguous. Ok when the partition moved to
    /// another member meanwhile (its new owner gets the message again; consumers dedupe).
    Status Settle(const std::string& topic, std::int32_t partition, std::int64_t offset) {
        std::lock_guard lock(mu);
        if (rk == nullptr) return Status::Ok();
        auto it = partitions.find({topic, partition});
        if (it == partitions.end() || it->second.outstanding.erase(offset) == 0) return Status::Ok();
        Partition& p = it->second;
        p.high = std::max(p.high, offset + 1);
        const std::int64_t commit = p.outstanding.empty() ? p.high : *p.outstanding.begin();
        if (commit <= p.committed) return Status::Ok();
        rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset = commit;
        const rd_kafka_resp_err_t err = rd_kafka_commit(rk, list, /*async=*/0);
        rd_kafka_topic_partition_list_destroy(list);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return Unavailable("kafka commit " + topic + "[" + std::to_string(partition) + "]@" +
                               std::to_string(commit) + ": " + rd_kafka_err2str(err));
        }
        p.committed = commit;
        return Status::Ok();
    }

    /// Rewinds the partition to `offset`: it and every later message come again.
    Status Rewind(const std::string& topic, std::int32_t partition, std::int64_t offset) {
        std::lock_guard lock(mu);
        if (rk == nullptr) return Status::Ok();
        auto it = partitions.find({topic, partition});
        if (it == partitions.end() || !it->second.outstanding.contains(offset)) return Status::Ok();
        auto& out = it->second.outstanding;
        out.erase(out.lower_bound(offset), out.end());
        rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset = offset;
        rd_kafka_error_t* error = rd_kafka_seek_partitions(rk, list, 5000);
        rd_kafka_topic_partition_list_destroy(list);
        if (error != nullptr) {
            std::string text = rd_kafka_error_string(error);
            rd_kafka_error_destroy(error);
            return Unavailable("kafka seek " + topic + ": " + text);
        }
        return Status::Ok();
    }

    /// A new assignment (or a revocation): what was outstanding is someone else's now.
    void Reset() {
        std::lock_guard lock(mu);
        partitions.clear();
    }
};

void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                 void* opaque) {
    static_cast<ConsumerState*>(opaque)->Reset();
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, nullptr);
    }
}

class KafkaDelivery final : public Delivery {
  public:
    KafkaDelivery(std::shared_ptr<ConsumerState> state, const rd_kafka_message_t* m)
        : state_(std::move(state)),
          data_(static_cast<const char*>(m->payload), m->len),
          topic_(rd_kafka_topic_name(m->rkt)),
          partition_(m->partition),
          offset_(m->offset) {
        rd_kafka_headers_t* headers = nullptr;
        const void* value = nullptr;
        std::size_t size = 0;
        if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(headers, kIdHeader, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            value != nullptr) {
            id_.assign(static_cast<const char*>(value), size);
        }
    }
    std::string_view data() const override { return data_; }
    const std::string& id() const override { return id_; }
    std::uint64_t delivery_count() const override { return 1; }
    std::uint64_t sequence() const override { return static_cast<std::uint64_t>(offset_); }
    Status Ack() override { return state_->Settle(topic_, partition_, offset_); }
    Status Nak(milliseconds) override { return state_->Rewind(topic_, partition_, offset_); }
    Status Term() override { return state_->Settle(topic_, partition_, offset_); }

  private:
    std::shared_ptr<ConsumerState> state_;
    std::string data_;
    std::string id_;
    std::string topic_;
    std::int32_t partition_;
    std::int64_t offset_;
};

class KafkaConsumer final : public Consumer {
  public:
    explicit KafkaConsumer(std::shared_ptr<ConsumerState> state) : state_(std::move(state)) {}
    ~KafkaConsumer() override {
        rd_kafka_t* rk = state_->rk;
        rd_kafka_consumer_close(rk);  // leaves the group (revokes: OnRebalance runs here)
        {
            std::lock_guard lock(state_->mu);
            state_->rk = nullptr;
        }
        rd_kafka_destroy(rk);
    }
    KafkaConsumer(const KafkaConsumer&) = delete;
    KafkaConsumer& operator=(const KafkaConsumer&) = delete;

    Result<std::vector<std::unique_ptr<Delivery>>> Fetch(int max, milliseconds wait) override {
        std::vector<std::unique_ptr<Delivery>> out;
        rd_kafka_t* rk = state_->rk;
        const auto deadline = Clock::now() + wait;
        while (static_cast<int>(out.size()) < max) {
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
            // Wait for the first message only; then take what is already there.
            rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, out.empty() ? std::max<int>(0, left.count()) : 0);
            if (m == nullptr) {
                if (!out.empty() || Clock::now() >= deadline) break;
                continue;
            }
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                // Broker and partition events: librdkafka recovers by itself unless fatal.
                const std::string text = rd_kafka_message_errstr(m);
                rd_kafka_message_destroy(m);
                char fatal[256];
                if (rd_kafka_fatal_error(rk, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                    return Internal(std::string("kafka consumer: fatal: ") + fatal);
                }
                spdlog::debug("bus: kafka consumer event: {}", text);
                continue;
            }
            {
                std::lock_guard lock(state_->mu);
                state_->partitions[{rd_kafka_topic_name(m->rkt), m->partition}].outstanding.insert(m->offset);
            }
            out.push_back(std::make_unique<KafkaDelivery>(state_, m));
            rd_kafka_message_destroy(m);
        }
        return out;
    }

  private:
    std::shared_ptr<ConsumerState> state_;
};

class KafkaBus final : public Bus {
  public:
    explicit KafkaBus(KafkaConfig config) : config_(std::move(config)) {}
    ~KafkaBus() override {
        if (producer_ == nullptr) return;
        rd_kafka_flush(producer_, 2000);
        rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(producer_, 0);  // serves the purged messages' reports (frees their state)
        rd_kafka_destroy(producer_);
    }
    KafkaBus(const KafkaBus&) = delete;
    KafkaBus& operator=(const KafkaBus&) = delete;

    Status Start() {
        FG_ASSIGN_OR_RETURN(rd_kafka_conf_t * conf,
                            MakeConf({{"bootstrap.servers", config_.bootstrap_servers},
                                      {"client.id", config_.client_id},
                                      {"enable.idempotence", "true"},  // acks=all, ordered retries
                                      {"linger.ms", "1"},
                                      {"message.timeout.ms", std::to_string(config_.publish_timeout.count())}}));
        rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
        char err[512];
        producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (producer_ == nullptr) {
            rd_kafka_conf_destroy(conf);
            return InvalidArgument(std::string("kafka producer: ") + err);
        }
        return Status::Ok();
    }

    Result<PublishAck> Publish(const Route& route, const std::string& id, std::string_view data) override {
        if (route.topic != Topic::kGalleryChanges) {
            FG_RETURN_IF_ERROR(ValidToken(route.region, "region"));
            FG_RETURN_IF_ERROR(ValidToken(route.camera, "camera"));
        }
        if (id.empty()) return InvalidArgument("kafka publish: empty message id");
        const std::string topic = KafkaTopic(route);
        const std::string& key = route.topic == Topic::kGalleryChanges ? route.region : route.camera;
        auto state = std::make_shared<DeliveryState>();
        auto* holder = new std::shared_ptr<DeliveryState>(state);
        const auto deadline = Clock::now() + config_.publish_timeout;
        // rd_kafka_produceva rather than the RD_KAFKA_V_* macros (GNU statement expressions).
        rd_kafka_vu_t vus[6] = {};
        vus[0].vtype = RD_KAFKA_VTYPE_TOPIC;
        vus[0].u.cstr = topic.c_str();
        vus[1].vtype = RD_KAFKA_VTYPE_KEY;
        vus[1].u.mem = {const_cast<char*>(key.data()), key.size()};
        vus[2].vtype = RD_KAFKA_VTYPE_VALUE;
        vus[2].u.mem = {const_cast<char*>(data.data()), data.size()};
        vus[3].vtype = RD_KAFKA_VTYPE_HEADER;
        vus[3].u.header = {kIdHeader, id.data(), static_cast<ssize_t>(id.size())};
        vus[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
        vus[4].u.i = RD_KAFKA_MSG_F_COPY;
        vus[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
        vus[5].u.ptr = holder;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (;;) {
            rd_kafka_error_t* error = rd_kafka_produceva(producer_, vus, 6);
            err = error == nullptr ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_error_code(error);
            if (error != nullptr) rd_kafka_error_destroy(error);
            // A full local queue drains as reports are served: wait for room, bounded.
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || Clock::now() >= deadline) break;
            rd_kafka_poll(producer_, 10);
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            delete holder;
            publish_failures_.fetch_add(1);
            return Unavailable("kafka publish of '" + id + "' to " + topic + ": " + rd_kafka_err2str(err));
        }
        // librdkafka fails the message itself at message.timeout.ms (= publish_timeout), so this
        // wait ends; the margin covers the report's way back.
        const auto wait_until = deadline + milliseconds(2000);
        for (;;) {
            {
                std::lock_guard lock(state->mu);
                if (state->done) break;
            }
            if (Clock::now() >= wait_until) {
                publish_failures_.fetch_add(1);
                return Unavailable("kafka publish of '" + id + "' to " + topic + ": no delivery report");
            }
            rd_kafka_poll(producer_, 5);
        }
        std::lock_guard lock(state->mu);
        if (state->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            publish_failures_.fetch_add(1);
            return Unavailable("kafka publish of '" + id + "' to " + topic + ": " + rd_kafka_err2str(state->err));
        }
        published_.fetch_add(1);
        return PublishAck{.duplicate = false, .sequence = static_cast<std::uint64_t>(state->offset)};
    }

    Result<std::unique_ptr<Consumer>> Subscribe(const Subscription& sub) override {
        FG_RETURN_IF_ERROR(ValidToken(sub.group, "group"));
        if (sub.topic != Topic::kGalleryChanges) FG_RETURN_IF_ERROR(ValidToken(sub.region, "region"));
        const std::string topic = KafkaTopic(Route{.topic = sub.topic, .region = sub.region});
        auto state = std::make_shared<ConsumerState>();
        FG_ASSIGN_OR_RETURN(rd_kafka_conf_t * conf,
                            MakeConf({{"bootstrap.servers", config_.bootstrap_servers},
                                      {"client.id", config_.client_id},
                                      {"group.id", "fg." + sub.group + "." + topic},
                                      {"enable.auto.commit", "false"},
                                      {"enable.auto.offset.store", "false"},
                                      {"auto.offset.reset", "earliest"},
                                      {"session.timeout.ms", std::to_string(config_.session_timeout.count())},
                                      {"heartbeat.interval.ms",
                                       std::to_string(std::max<long>(config_.session_timeout.count() / 5, 100))}}));
        rd_kafka_conf_set_rebalance_cb(conf, OnRebalance);
        rd_kafka_conf_set_opaque(conf, state.get());
        char err[512];
        rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        if (rk == nullptr) {
            rd_kafka_conf_destroy(conf);
            return InvalidArgument(std::string("kafka consumer: ") + err);
        }
        rd_kafka_poll_set_consumer(rk);
        state->rk = rk;
        auto consumer = std::make_unique<KafkaConsumer>(state);  // owns rk from here
        rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
        const rd_kafka_resp_err_t serr = rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (serr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return Unavailable("kafka subscribe " + topic + ": " + rd_kafka_err2str(serr));
        }
        return std::unique_ptr<Consumer>(std::move(consumer));
    }

    BusStats stats() const override {
        return {.published = published_.load(), .publish_failures = publish_failures_.load()};
    }

  private:
    KafkaConfig config_;
    rd_kafka_t* producer_ = nullptr;
    std::atomic<std::uint64_t> published_{0}, publish_failures_{0};
};

}  // namespace

Result<std::unique_ptr<Bus>> CreateKafkaBus(const KafkaConfig& config) {
    if (config.bootstrap_servers.empty()) return InvalidArgument("kafka: empty bootstrap_servers");
    if (config.publish_timeout.count() <= 0) return InvalidArgument("kafka: publish_timeout must be > 0");
    auto bus = std::make_unique<KafkaBus>(config);
    FG_RETURN_IF_ERROR(bus->Start());
    return std::unique_ptr<Bus>(std::move(bus));
}

}  // namespace fg::bus
