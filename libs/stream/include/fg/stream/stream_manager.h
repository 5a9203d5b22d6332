// SPDX-License-Identifier: Apache-2.0
// Many sources behind one consumer interface: add/remove while running, wait for any frame.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fg/base/status.h"
#include "fg/stream/frame.h"
#include "fg/stream/source.h"

namespace fg::stream {

/// Owns a set of Sources keyed by id.
///
/// Thread-safety: all methods are thread-safe; Add/Remove may run while consumers wait in
/// WaitNext. Several consumers may call WaitNext concurrently (each frame goes to one of them).
/// The state callback runs on source threads (see Source), possibly concurrently for different
/// sources; it must be quick and must not call Add/Remove/Stop.
class StreamManager {
  public:
    explicit StreamManager(StateCallback on_state = {});
    /// Stops every source (bounded; see Source::Stop).
    ~StreamManager();
    StreamManager(const StreamManager&) = delete;
    StreamManager& operator=(const StreamManager&) = delete;

    /// Validates and starts a source. AlreadyExists if the id is in use, InvalidArgument for a
    /// bad config, FailedPrecondition after Stop().
    Status Add(SourceConfig config);
    /// Stops and removes a source; its queued frames are discarded. NotFound if unknown.
    Status Remove(const std::string& id);
    /// Ids in insertion order.
    std::vector<std::string> Ids() const;

    /// The next frame of any source, taken round-robin across sources so a fast source cannot
    /// starve a slow one. nullopt on timeout, after Stop(), or when Wake() was called.
    std::optional<Frame> WaitNext(std::chrono::milliseconds timeout);
    /// The oldest queued frame of one source (nullopt if none or unknown id).
    std::optional<Frame> TryPop(const std::string& id);
    /// Makes every current WaitNext return (e.g. to let a consumer notice a shutdown flag).
    void Wake();

    Result<SourceStats> Stats(const std::string& id) const;
    std::vector<SourceStats> AllStats() const;  ///< insertion order
    /// True when every source is exhausted (terminal with an empty queue). True when empty.
    bool AllExhausted() const;

    /// Stops every source; later WaitNext calls return nullopt at once. Idempotent.
    void Stop();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fg::stream
