// SPDX-License-Identifier: Apache-2.0
// One command-line spelling of a bus for every role: nats://host:port[,nats://host:port...] or
// kafka://host:port[,host:port...].
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "fg/base/status.h"
#include "fg/bus/bus.h"

namespace fg::cluster {

struct BusOptions {
    std::string client_name = "facegate";
    /// A publish gives up (Unavailable) after this long; the worker then naks the item.
    std::chrono::milliseconds publish_timeout{10000};
    /// NATS: how long a fetched item may stay unacked before another worker gets it (a worker
    /// killed with -9 delays its in-flight items by this much). Kafka: the group's session
    /// timeout plays that part.
    std::chrono::milliseconds ack_wait{std::chrono::seconds(30)};
    int max_deliver = 10;
};

/// Connects to the bus `url` names. InvalidArgument (naming --bus) for another scheme or an
/// empty address; the bus's own errors otherwise.
Result<std::unique_ptr<bus::Bus>> ConnectBus(std::string_view url, const BusOptions& options = {});

}  // namespace fg::cluster
