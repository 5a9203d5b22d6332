// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/bus_url.h"

#include "fg/bus/kafka.h"
#include "fg/bus/nats.h"

namespace fg::cluster {

Result<std::unique_ptr<bus::Bus>> ConnectBus(std::string_view url, const BusOptions& options) {
    constexpr std::string_view kNats = "nats://", kKafka = "kafka://";
    if (url.starts_with(kNats) && url.size() > kNats.size()) {
        bus::NatsConfig c;
        c.url = std::string(url);
        c.name = options.client_name;
        c.publish_timeout = options.publish_timeout;
        c.ack_wait = options.ack_wait;
        c.max_deliver = options.max_deliver;
        return bus::CreateNatsBus(c);
    }
    if (url.starts_with(kKafka) && url.size() > kKafka.size()) {
        bus::KafkaConfig c;
        // kafka://a:9092,b:9092 (a "kafka://" before each broker is accepted too).
        std::string servers(url.substr(kKafka.size()));
        for (std::size_t p; (p = servers.find(kKafka)) != std::string::npos;) servers.erase(p, kKafka.size());
        c.bootstrap_servers = servers;
        c.client_id = options.client_name;
        c.publish_timeout = options.publish_timeout;
        return bus::CreateKafkaBus(c);
    }
    return InvalidArgument("--bus: '" + std::string(url) +
                           "' is not nats://HOST:PORT or kafka://HOST:PORT[,HOST:PORT...]");
}

}  // namespace fg::cluster
