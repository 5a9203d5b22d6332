// SPDX-License-Identifier: Apache-2.0
// The bus on NATS JetStream (the C client libnats, "cnats"). Streams (created or updated at
// start): FG_FACES (work queue on fg.faces.>, explicit acks), FG_RESULTS (fg.results.>) and
// FG_GALLERY (fg.gallery.changes), file storage, a server-side dedupe window on Nats-Msg-Id.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/bus/bus.h"

namespace fg::bus {

struct NatsConfig {
    std::string url = "nats://127.0.0.1:4222";  ///< comma-separated for a cluster
    std::string name = "facegate";               ///< client name (server monitoring)
    /// Publish: each attempt waits this long for the stream's ack...
    std::chrono::milliseconds ack_timeout{2000};
    /// ...and attempts repeat (same Nats-Msg-Id) until this much time passed since the call.
    std::chrono::milliseconds publish_timeout{30000};
    /// Bytes buffered by the client while reconnecting; a publish that does not fit fails its
    /// attempt (and is retried), so memory stays bounded during an outage.
    int reconnect_buffer_bytes = 8 << 20;
    std::chrono::milliseconds reconnect_wait{250};
    /// Server-side dedupe window on Nats-Msg-Id (stream "duplicate_window").
    std::chrono::milliseconds dedupe_window{std::chrono::minutes(2)};
    /// Consumers: time a delivery may stay unacked before it is redelivered, the number of
    /// deliveries before the server gives up on a message, and the redelivery backoff (when not
    /// empty, it replaces ack_wait; max_deliver must exceed its length).
    std::chrono::milliseconds ack_wait{std::chrono::seconds(30)};
    int max_deliver = 10;
    std::vector<std::chrono::milliseconds> backoff;
    /// Stream limits: how long results and gallery changes are kept (face items leave the work
    /// queue when acked, or after max_age if no worker ever takes them).
    std::chrono::milliseconds max_age{std::chrono::hours(24)};
    int replicas = 1;  ///< stream replicas (R=3 on a 3-node NATS cluster)
};

/// Connects (retrying in the background if the server is not up yet: the first publish waits
/// for it within publish_timeout) and creates or updates the three streams.
/// Errors: InvalidArgument for a bad config; Unavailable when the streams cannot be set up
/// within publish_timeout.
Result<std::unique_ptr<Bus>> CreateNatsBus(const NatsConfig& config);

}  // namespace fg::bus
