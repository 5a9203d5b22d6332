// SPDX-License-Identifier: Apache-2.0
// The bus on Kafka through librdkafka: a topic per region (fg.faces.<region>,
// fg.results.<region>) keyed by camera (order per camera), fg.gallery.changes, consumer groups,
// an idempotent producer (acks=all) and offsets committed only when a message is settled, i.e.
// after the worker published its result. No Kafka broker is packaged for Debian: the tests run
// against librdkafka's mock cluster (rdkafka_mock.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "fg/base/status.h"
#include "fg/bus/bus.h"

namespace fg::bus {

struct KafkaConfig {
    std::string bootstrap_servers = "127.0.0.1:9092";
    std::string client_id = "facegate";
    /// Publish waits for the delivery report (acks=all) this long; librdkafka retries inside
    /// it (idempotently: the broker drops the producer's own duplicates).
    std::chrono::milliseconds publish_timeout{30000};
    /// Consumer group liveness: a member silent this long loses its partitions to the others.
    std::chrono::milliseconds session_timeout{10000};
    /// Topics are expected to exist (created by operations, or auto-created by the broker).
};

/// Creates the producer. Errors: InvalidArgument for a bad config (librdkafka's message).
Result<std::unique_ptr<Bus>> CreateKafkaBus(const KafkaConfig& config);

}  // namespace fg::bus
