// SPDX-License-Identifier: Apache-2.0
#include "stream_root.h"

#include "fg/gallery/gallery.h"

namespace fg::cli {

Result<StreamRoot> StreamRoot::Build(const StreamRootConfig& config) {
    StreamRoot root;
    FG_ASSIGN_OR_RETURN(vision::EngineConfig ec, config.engine.ToConfig(true));
    FG_ASSIGN_OR_RETURN(root.engine, vision::Engine::Create(ec));
    FG_ASSIGN_OR_RETURN(root.models, pipeline::MakeEngineModels(root.engine));
    if (!config.gallery.db.empty()) {
        Result<std::unique_ptr<gallery::Gallery>> g = OpenGalleryAt(config.gallery, config.engine);
        if (!g.ok()) return g.status().WithContext("gallery");
        root.gallery = std::move(*g);
        FG_ASSIGN_OR_RETURN(root.identifier,
                            pipeline::MakeGalleryIdentifier(root.gallery, root.models->embedder_model_id()));
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

Result<std::unique_ptr<pipeline::Pipeline>> StreamRoot::MakePipeline(pipeline::PipelineConfig config) const {
    return pipeline::Pipeline::Create(std::move(config), models, identifier, sink);
}

}  // namespace fg::cli
