// SPDX-License-Identifier: Apache-2.0
// Internal to fg::api: the route groups AddRoutes registers.
#pragma once

#include "fg/api/api.h"

namespace fg::gallery {
class Gallery;
}

namespace fg::api {

/// The service's gallery, or 409 no_gallery (an ApiError) when it runs without one.
gallery::Gallery& RequireGallery(ApiContext& ctx);

void AddRecognitionRoutes(server::Router& router, ApiContext& ctx);  // detect, identify, verify
void AddGalleryRoutes(server::Router& router, ApiContext& ctx);      // subjects, faces
void AddStreamRoutes(server::Router& router, ApiContext& ctx);       // streams, frames, events, health
void AddHistoryRoutes(server::Router& router, ApiContext& ctx);      // history, strangers
void AddAuditRoutes(server::Router& router, ApiContext& ctx);        // GET /v1/audit
void AddSettingsRoutes(server::Router& router, ApiContext& ctx);     // settings, calibration
void AddConsoleRoutes(server::Router& router, ApiContext& ctx);      // /v1/session, /console/ files
void AddClusterRoutes(server::Router& router, ApiContext& ctx);      // GET /v1/cluster

}  // namespace fg::api
