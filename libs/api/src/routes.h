// SPDX-License-Identifier: Apache-2.0
// Internal to fg::api: the route groups AddRoutes registers.
#pragma once

#include "fg/api/api.h"

namespace fg::api {

void AddRecognitionRoutes(server::Router& router, ApiContext& ctx);  // detect, identify, verify
void AddGalleryRoutes(server::Router& router, ApiContext& ctx);      // subjects, faces
void AddStreamRoutes(server::Router& router, ApiContext& ctx);       // streams, frames, events, health

}  // namespace fg::api
