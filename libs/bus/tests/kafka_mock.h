// SPDX-License-Identifier: Apache-2.0
// librdkafka's mock cluster for the Kafka tests (no Kafka broker is packaged for Debian): three
// in-process brokers hosted by their own librdkafka handle, topics with their partition leaders
// spread over the brokers. Shared by libs/bus's and libs/cluster's Kafka tests.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <string>

namespace fg::bus::testing {

class MockCluster {
  public:
    MockCluster() {
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        char err[256];
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
        rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (rk_ != nullptr) mc_ = rd_kafka_mock_cluster_new(rk_, 3);
    }
    ~MockCluster() {
        if (mc_ != nullptr) rd_kafka_mock_cluster_destroy(mc_);
        if (rk_ != nullptr) rd_kafka_destroy(rk_);
    }
    MockCluster(const MockCluster&) = delete;
    MockCluster& operator=(const MockCluster&) = delete;

    bool ok() const { return mc_ != nullptr; }
    std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(mc_); }
    rd_kafka_mock_cluster_t* get() { return mc_; }

    /// `partitions` partitions, 3 replicas, leaders spread over brokers 1..3. False on failure.
    bool CreateTopic(const std::string& topic, int partitions) {
        if (rd_kafka_mock_topic_create(mc_, topic.c_str(), partitions, 3) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
        for (int p = 0; p < partitions; ++p) {
            if (rd_kafka_mock_partition_set_leader(mc_, topic.c_str(), p, 1 + p % 3) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return false;
        }
        return true;
    }

  private:
    rd_kafka_t* rk_ = nullptr;
    rd_kafka_mock_cluster_t* mc_ = nullptr;
};

}  // namespace fg::bus::testing
