// SPDX-License-Identifier: Apache-2.0
// GET/PATCH /v1/settings (the gallery's identification settings) and GET /v1/calibration (the
// curve `facegate gallery calibrate --save` stored), for the console's settings page.
#include <string>

#include "fg/gallery/gallery.h"
#include "http_util.h"
#include "routes.h"

namespace fg::api {
namespace {

using nlohmann::json;
using server::Request;
using server::Response;

Response GetSettings(ApiContext& ctx, Request&) {
    return Response::Json(200, RequireGallery(ctx).settings().ToJson());
}

Response PatchSettings(ApiContext& ctx, Request& r) {
    gallery::Gallery& g = RequireGallery(ctx);
    const json j = JsonBody(r);
    if (!j.is_object() || j.empty()) Throw(400, "bad_request", "body must be a non-empty JSON object of settings");
    gallery::GallerySettings s = g.settings();
    std::string keys;
    // One key at a time so the 400 names the field at fault (Update alone does not say which).
    for (auto it = j.begin(); it != j.end(); ++it) {
        FG_API_CHECK(s.Update(json{{it.key(), it.value()}}), it.key());
        keys += (keys.empty() ? "" : ",") + it.key();
    }
    const Status st = g.UpdateSettings(s);
    if (ctx.audit) ctx.audit(r.principal, "settings", keys, st.ok() ? "ok" : st.message());
    FG_API_CHECK(st, "");
    return Response::Json(200, g.settings().ToJson());
}

Response GetCalibration(ApiContext& ctx, Request&) {
    std::optional<json> c = Value(RequireGallery(ctx).Calibration());
    if (!c) Throw(404, "not_found", "no calibration stored (run `facegate gallery calibrate --save`)");
    return Response::Json(200, *c);
}

}  // namespace

void AddSettingsRoutes(server::Router& router, ApiContext& ctx) {
    router.Add("GET", "/v1/settings", {.scope = "read"}, Guard([&ctx](Request& r) { return GetSettings(ctx, r); }));
    router.Add("PATCH", "/v1/settings", {.scope = "admin"},
               Guard([&ctx](Request& r) { return PatchSettings(ctx, r); }));
    router.Add("GET", "/v1/calibration", {.scope = "read"},
               Guard([&ctx](Request& r) { return GetCalibration(ctx, r); }));
}

}  // namespace fg::api
