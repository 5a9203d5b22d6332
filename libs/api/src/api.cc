// SPDX-License-Identifier: Apache-2.0
#include "fg/api/api.h"

#include <future>

#include "http_util.h"
#include "routes.h"
#include "runtime.h"

namespace fg::api {

extern const unsigned char kOpenApiJson[];  // generated from api/openapi.json (embed_file.cmake)
extern const std::size_t kOpenApiJsonSize;

const std::string& OpenApiDocument() {
    static const std::string doc(reinterpret_cast<const char*>(kOpenApiJson), kOpenApiJsonSize);
    return doc;
}

ApiContext::~ApiContext() {
    if (runtime) runtime->broadcaster.Stop();
}

void AddRoutes(server::Router& router, ApiContext& ctx) {
    if (ctx.openapi.empty()) ctx.openapi = OpenApiDocument();
    if (!ctx.runtime) ctx.runtime = std::make_shared<ApiRuntime>(ctx);
    if (ctx.audit_async && !ctx.audit) {
        // The rarer audited routes (gallery changes, streams, settings, sessions) wait for the
        // record on their thread; a record that cannot be written is a 503, never a 2xx.
        ctx.audit = [hook = ctx.audit_async](const server::Principal& p, const std::string& action,
                                             const std::string& target, const std::string& result) {
            auto done = std::make_shared<std::promise<Status>>();
            auto written = done->get_future();
            hook(p, action, target, result, [done](Status s) { done->set_value(std::move(s)); });
            if (Status s = written.get(); !s.ok()) {
                Throw(503, "audit_unavailable", "the action was not recorded in the audit log: " + s.message());
            }
        };
    }
    AddRecognitionRoutes(router, ctx);
    AddGalleryRoutes(router, ctx);
    AddStreamRoutes(router, ctx);
    AddAuditRoutes(router, ctx);
    AddHistoryRoutes(router, ctx);
    AddSettingsRoutes(router, ctx);
    AddConsoleRoutes(router, ctx);
    AddClusterRoutes(router, ctx);
}

}  // namespace fg::api
