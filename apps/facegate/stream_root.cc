// SPDX-License-Identifier: Apache-2.0
#include "stream_root.h"

#include "fg/base/log.h"
#include "fg/gallery/gallery.h"

namespace fg::cli {

EngineOptions FromSection(const pipeline::EngineSection& e) {
    EngineOptions o;
    o.pack = e.pack;
    o.detector_pack = e.detector_pack;
    o.embedder_pack = e.embedder_pack;
    o.backend = e.backend;
    o.threads = e.threads;
    o.score_threshold = e.score_threshold;
    o.min_face = e.min_face;
    o.no_flip = !e.flip;
    return o;
}

namespace {

/// The history beside the gallery, its purge/follow thread and the recorder the pipelines feed.
Status OpenHistory(const StreamRootConfig& config, StreamRoot& root) {
    const pipeline::HistorySection& h = config.history;
    history::HistoryOptions o;
    // history.location, else beside a SQLite gallery or in a PostgreSQL gallery's database.
    history::SetHistoryLocation(o, config.gallery.db, h.location);
    FG_ASSIGN_OR_RETURN(o.keys, ResolveGalleryKeys(config.gallery));
    o.model_id = root.models->embedder_model_id();
    o.dim = root.gallery->dim() > 0 ? root.gallery->dim() : 512;
    o.retention_days = h.retention_days;
    o.keep_crops = h.keep_crops;
    o.stranger_threshold = root.gallery->settings().threshold;
    o.gallery = root.gallery;
    FG_ASSIGN_OR_RETURN(std::unique_ptr<history::HistoryStore> store, history::HistoryStore::Open(o));
    root.history = std::move(store);
    root.history->StartBackground();
    root.recorder = std::make_shared<history::Recorder>(root.history, config.on_sighting);
    return Status::Ok();
}

}  // namespace

Result<StreamRoot> StreamRoot::Build(const StreamRootConfig& config) {
    StreamRoot root;
    FG_ASSIGN_OR_RETURN(vision::EngineConfig ec, config.engine.ToConfig(true));
    FG_ASSIGN_OR_RETURN(root.engine, vision::Engine::Create(ec));
    FG_ASSIGN_OR_RETURN(root.models, pipeline::MakeEngineModels(root.engine));
    if (!config.gallery.db.empty()) {
        Result<std::unique_ptr<gallery::Gallery>> g = OpenGalleryAt(config.gallery, config.engine);
        if (!g.ok()) return g.status().WithContext("gallery");
        root.gallery = std::move(*g);
        if (config.gallery_follow.count() > 0)
            FG_RETURN_IF_ERROR(root.gallery->StartFollowing(config.gallery_follow));
        FG_ASSIGN_OR_RETURN(root.identifier,
                            pipeline::MakeGalleryIdentifier(root.gallery, root.models->embedder_model_id()));
    }
    if (config.history.enabled && root.gallery) {
        // History is an observation log: one that cannot open (a read-only folder, a foreign
        // file) is reported loudly, and the streams run without it (the routes say no_history).
        if (Status st = OpenHistory(config, root); !st.ok()) {
            spdlog::error("history: off: {}", st.ToString());
            root.history.reset();
            root.recorder.reset();
        }
    }
    if (!config.sinks.empty()) {
        std::vector<std::unique_ptr<events::Sink>> sinks;
        for (std::size_t i = 0; i < config.sinks.size(); ++i) {
            FG_ASSIGN_OR_RETURN(std::unique_ptr<events::Sink> s,
                                events::CreateSinkFromJson(config.sinks[i], config.sinks_field + "[" +
                                                                                 std::to_string(i) + "]"));
            sinks.push_back(std::move(s));
        }
        root.sink = std::make_shared<events::MultiSink>(std::move(sinks));
    }
    return root;
}

namespace {

/// Forwards to two sinks that outlive it (shared), without taking them over like MultiSink.
class TeeSink final : public events::Sink {
  public:
    TeeSink(std::shared_ptr<events::Sink> a, std::shared_ptr<events::Sink> b)
        : a_(std::move(a)), b_(std::move(b)) {}
    Status Publish(const events::Event& e) override {
        const Status sa = a_->Publish(e);
        const Status sb = b_->Publish(e);
        return sa.ok() ? sb : sa;
    }
    Status Flush(events::Deadline deadline) override {
        const Status sa = a_->Flush(deadline);
        const Status sb = b_->Flush(deadline);
        return sa.ok() ? sb : sa;
    }
    events::SinkStats stats() const override { return a_->stats(); }
    std::string name() const override { return a_->name() + "+" + b_->name(); }

  private:
    std::shared_ptr<events::Sink> a_, b_;
};

}  // namespace

Result<std::unique_ptr<pipeline::Pipeline>> StreamRoot::MakePipeline(
    pipeline::PipelineConfig config, std::shared_ptr<events::Sink> extra_sink,
    std::vector<std::shared_ptr<pipeline::PipelineObserver>> observers) const {
    std::shared_ptr<events::Sink> s = sink;
    if (extra_sink) s = s ? std::make_shared<TeeSink>(s, std::move(extra_sink)) : std::move(extra_sink);
    if (recorder) observers.push_back(recorder);
    return pipeline::Pipeline::Create(std::move(config), models, identifier, std::move(s),
                                      std::move(observers));
}

}  // namespace fg::cli
