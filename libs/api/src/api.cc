// SPDX-License-Identifier: Apache-2.0
#include "fg/api/api.h"

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
    AddRecognitionRoutes(router, ctx);
    AddGalleryRoutes(router, ctx);
    AddStreamRoutes(router, ctx);
    AddAuditRoutes(router, ctx);
    AddHistoryRoutes(router, ctx);
    AddSettingsRoutes(router, ctx);
    AddConsoleRoutes(router, ctx);
}

}  // namespace fg::api
