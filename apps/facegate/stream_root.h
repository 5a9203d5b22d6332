// SPDX-License-Identifier: Apache-2.0
// The composition root of every role that runs streams (run, bench stream, bench cameras; next
// serve, edge and worker): it builds the engine, the gallery and its identifier, and the event
// sinks once, and makes pipelines over them. Nothing else in the CLI wires these together.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.h"
#include "fg/events/sink.h"
#include "fg/history/history.h"
#include "fg/pipeline/pipeline.h"
#include "fg/pipeline/run_config.h"

namespace fg::cli {

/// The engine options of a config file's "engine" section (run and serve files share it).
EngineOptions FromSection(const pipeline::EngineSection& e);

struct StreamRootConfig {
    EngineOptions engine;
    GalleryLocation gallery;              ///< gallery.db "" = no gallery (every face unknown)
    std::vector<nlohmann::json> sinks;    ///< events.sinks entries (docs/run-config.md)
    std::string sinks_field = "events.sinks";  ///< named in errors
    /// How often the gallery tails its change log, so enrollments and deletions by other
    /// processes are recognised (docs/gallery.md, "Change log"); 0 = never. The follower stops
    /// with the gallery.
    std::chrono::milliseconds gallery_follow{500};
    /// Recognition history (run and serve set it from their file; off for the bench roles).
    pipeline::HistorySection history{.enabled = false};
    /// Called on the recorder's thread after each stored decision (serve: the SSE "sighting").
    history::Recorder::Callback on_sighting;
};

/// Thread-safety: built once on the main thread; MakePipeline may be called again (bench
/// cameras makes one pipeline per step over the same engine and gallery).
struct StreamRoot {
    std::shared_ptr<vision::Engine> engine;
    std::shared_ptr<pipeline::ModelProvider> models;
    std::shared_ptr<gallery::Gallery> gallery;         ///< null without a gallery
    std::shared_ptr<pipeline::Identifier> identifier;  ///< null without a gallery
    std::shared_ptr<events::Sink> sink;                ///< null without sinks
    std::shared_ptr<history::HistoryStore> history;    ///< null unless history is on (needs a gallery)
    std::shared_ptr<history::Recorder> recorder;       ///< an observer of every pipeline made here

    static Result<StreamRoot> Build(const StreamRootConfig& config);
    /// `extra_sink` (e.g. serve's event hub) gets every event besides `sink`; `observers` see
    /// every stream's events and frames.
    Result<std::unique_ptr<pipeline::Pipeline>> MakePipeline(
        pipeline::PipelineConfig config, std::shared_ptr<events::Sink> extra_sink = nullptr,
        std::vector<std::shared_ptr<pipeline::PipelineObserver>> observers = {}) const;
};

}  // namespace fg::cli
