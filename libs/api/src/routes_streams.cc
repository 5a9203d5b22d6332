// SPDX-License-Identifier: Apache-2.0
// Streams (/v1/streams...), the latest frame (JPEG, MJPEG), live events (SSE), health probes
// and the OpenAPI document.
#include "fg/events/event.h"
#include "fg/gallery/gallery.h"
#include "fg/pipeline/pipeline.h"
#include "fg/pipeline/run_config.h"
#include "http_util.h"
#include "routes.h"
#include "runtime.h"

namespace fg::api {
namespace {

using nlohmann::json;
using server::Request;
using server::Response;

pipeline::Pipeline& P(ApiContext& ctx) {
    if (!ctx.pipeline) Throw(409, "no_pipeline", "the service runs without a stream pipeline");
    return *ctx.pipeline;
}

/// rtsp://user:secret@host/x -> rtsp://***@host/x: camera passwords never leave the service.
std::string RedactUri(const std::string& uri) {
    const std::size_t scheme = uri.find("://");
    if (scheme == std::string::npos) return uri;
    const std::size_t at = uri.find('@', scheme + 3);
    const std::size_t slash = uri.find('/', scheme + 3);
    if (at == std::string::npos || (slash != std::string::npos && at > slash)) return uri;
    return uri.substr(0, scheme + 3) + "***" + uri.substr(at);
}

json StreamJson(const pipeline::StreamRunStats& s, const json* spec) {
    json j = {{"id", s.id},
              {"state", std::string(stream::SourceStateName(s.source.state))},
              {"kind", std::string(stream::SourceKindName(s.source.kind))},
              {"fps", s.source.fps},
              {"width", s.source.width},
              {"height", s.source.height},
              {"frames", s.frames},
              {"frames_decoded", s.source.frames_decoded},
              {"frames_dropped", s.source.frames_dropped},
              {"gated", s.gated},
              {"detector_runs", s.detector_runs},
              {"embeddings", s.embeddings},
              {"tracks_started", s.tracks_started},
              {"events", s.events},
              {"reconnects", s.source.reconnects},
              {"latency_ms", {{"p50", s.latency.p50_ms}, {"p99", s.latency.p99_ms}}},
              {"last_error", s.source.last_error}};
    if (spec) {
        json sp = *spec;
        if (sp.contains("uri") && sp["uri"].is_string()) sp["uri"] = RedactUri(sp["uri"]);
        j["spec"] = sp;
    }
    return j;
}

std::optional<pipeline::StreamRunStats> FindStream(ApiContext& ctx, const std::string& id) {
    for (auto& s : P(ctx).Stats().streams) {
        if (s.id == id) return s;
    }
    return std::nullopt;
}

Response ListStreams(ApiContext& ctx, Request&) {
    json items = json::array();
    const auto stats = P(ctx).Stats();
    std::lock_guard lock(ctx.runtime->streams_mu);
    for (const auto& s : stats.streams) {
        const auto spec = ctx.runtime->specs.find(s.id);
        items.push_back(StreamJson(s, spec == ctx.runtime->specs.end() ? nullptr : &spec->second));
    }
    return Response::Json(200, {{"items", items}});
}

Response GetStream(ApiContext& ctx, Request& r) {
    const std::string& id = r.params.at("id");
    const auto s = FindStream(ctx, id);
    if (!s) Throw(404, "not_found", "stream '" + id + "' not found");
    std::lock_guard lock(ctx.runtime->streams_mu);
    const auto spec = ctx.runtime->specs.find(id);
    return Response::Json(200, StreamJson(*s, spec == ctx.runtime->specs.end() ? nullptr : &spec->second));
}

pipeline::StreamSpec ParseSpec(ApiContext& ctx, const json& j) {
    Result<pipeline::StreamSpec> spec = pipeline::ParseStreamSpec(j, "stream", ctx.options.base_dir);
    if (!spec.ok()) {
        // "stream.uri is required" -> field "uri"
        const std::string& m = spec.status().message();
        std::string field;
        if (m.starts_with("stream.") || m.find(" stream.") != std::string::npos) {
            const std::size_t at = m.find("stream.") + 7;
            field = m.substr(at, m.find_first_of(" :", at) - at);
        }
        Throw(400, "invalid_stream", m, field);
    }
    return std::move(*spec);
}

Response AddStream(ApiContext& ctx, Request& r) {
    pipeline::Pipeline& p = P(ctx);
    const json j = JsonBody(r);
    const pipeline::StreamSpec spec = ParseSpec(ctx, j);
    std::lock_guard lock(ctx.runtime->streams_mu);
    const Status st = p.AddStream(spec);
    if (ctx.audit) ctx.audit(r.principal, "add_stream", spec.source.id, st.ok() ? "ok" : st.message());
    FG_API_CHECK(st, "id");
    ctx.runtime->specs[spec.source.id] = j;
    pipeline::StreamRunStats s;
    s.id = spec.source.id;
    for (auto& x : p.Stats().streams) if (x.id == s.id) s = x;
    return Response::Json(201, StreamJson(s, &ctx.runtime->specs[s.id]));
}

Response PatchStream(ApiContext& ctx, Request& r) {
    pipeline::Pipeline& p = P(ctx);
    const std::string& id = r.params.at("id");
    const json patch = JsonBody(r);
    if (patch.contains("id") && patch["id"] != id) Throw(400, "bad_request", "a stream's id cannot change", "id");
    std::lock_guard lock(ctx.runtime->streams_mu);
    auto it = ctx.runtime->specs.find(id);
    if (it == ctx.runtime->specs.end()) Throw(404, "not_found", "stream '" + id + "' not found");
    json merged = it->second;
    merged.merge_patch(patch);
    std::vector<pipeline::StreamSpec> wanted;
    for (const auto& [sid, sj] : ctx.runtime->specs) wanted.push_back(ParseSpec(ctx, sid == id ? merged : sj));
    const auto update = p.SetStreams(wanted);
    if (ctx.audit) ctx.audit(r.principal, "change_stream", id, update.ok() ? "ok" : update.status().message());
    Value(update);
    it->second = merged;
    pipeline::StreamRunStats s;
    s.id = id;
    for (auto& x : p.Stats().streams) if (x.id == id) s = x;
    return Response::Json(200, StreamJson(s, &it->second));
}

Response DeleteStream(ApiContext& ctx, Request& r) {
    const std::string& id = r.params.at("id");
    std::lock_guard lock(ctx.runtime->streams_mu);
    const Status st = P(ctx).RemoveStream(id);
    if (ctx.audit) ctx.audit(r.principal, "remove_stream", id, st.ok() ? "ok" : st.message());
    FG_API_CHECK(st, "");
    ctx.runtime->specs.erase(id);
    if (ctx.live) ctx.live->Forget(id);
    return Response::Json(200, {{"id", id}, {"deleted", true}});
}

Response Frame(ApiContext& ctx, Request& r) {
    const std::string& id = r.params.at("id");
    if (!FindStream(ctx, id)) Throw(404, "not_found", "stream '" + id + "' not found");
    if (!ctx.live) Throw(404, "no_frame", "the service keeps no frames");
    Result<LiveView::Jpeg> jpeg = ctx.live->Latest(id);
    if (!jpeg.ok()) Throw(404, "no_frame", jpeg.status().message());
    Response resp;
    resp.status = 200;
    resp.content_type = "image/jpeg";
    resp.body = std::move(jpeg->bytes);
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
}

Response Mjpeg(ApiContext& ctx, Request& r) {
    const std::string id = r.params.at("id");
    if (!FindStream(ctx, id)) Throw(404, "not_found", "stream '" + id + "' not found");
    if (ctx.runtime->broadcaster.mjpeg_clients() >= static_cast<std::size_t>(ctx.options.max_mjpeg_clients)) {
        Throw(503, "too_many_clients", "too many MJPEG clients");
    }
    std::weak_ptr<ApiRuntime> rt = ctx.runtime;
    Response resp = Response::Stream(std::string("multipart/x-mixed-replace; boundary=") + kMjpegBoundary,
                                     [rt, id](std::shared_ptr<server::StreamWriter> w) {
                                         auto runtime = rt.lock();
                                         if (!runtime || !runtime->broadcaster.AddMjpeg(w, id)) w->Close();
                                     });
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
}

std::string SseFrame(const HubEvent& e) {
    return "id: " + e.id + "\nevent: " + e.type + "\ndata: " + e.json + "\n\n";
}

Response Events(ApiContext& ctx, Request& r) {
    if (!ctx.events) Throw(409, "no_events", "the service has no event hub");
    SubscribeOptions o;
    if (auto it = r.query.find("stream"); it != r.query.end()) o.stream = it->second;
    if (auto it = r.query.find("type"); it != r.query.end()) {
        if (!events::ParseEventType(it->second).ok()) {
            Throw(400, "bad_request",
                  "type must be one of track_started, recognized, unknown_face, track_ended, "
                  "stream_state, spoof_detected",
                  "type");
        }
        o.type = it->second;
    }
    o.last_event_id = r.Header("Last-Event-ID");
    if (o.last_event_id.empty()) {
        if (auto it = r.query.find("last_event_id"); it != r.query.end()) o.last_event_id = it->second;
    }
    if (o.last_event_id.size() > 128) Throw(400, "bad_request", "Last-Event-ID is too long", "Last-Event-ID");
    if (ctx.runtime->broadcaster.sse_clients() >= static_cast<std::size_t>(ctx.options.max_sse_clients)) {
        Throw(503, "too_many_clients", "too many event subscribers");
    }
    std::weak_ptr<ApiRuntime> rt = ctx.runtime;
    std::shared_ptr<EventHub> hub = ctx.events;
    Response resp = Response::Stream("text/event-stream", [rt, hub, o](std::shared_ptr<server::StreamWriter> w) mutable {
        auto runtime = rt.lock();
        if (!runtime) return w->Close();
        w->Write("retry: 3000\n\n");
        const std::string last = o.last_event_id;
        o.on_gap = [w, last] {
            w->Write(": last-event-id " + last + " is not in the backlog; events may have been missed; "
                     "replaying from the oldest kept\n\n");
        };
        const EventHub::Subscription sub =
            hub->Subscribe(o, [w](const HubEvent& e) { return w->Write(SseFrame(e)); });
        if (!runtime->broadcaster.AddSse(w, sub.id)) {
            hub->Unsubscribe(sub.id);
            w->Close();
        }
    });
    resp.headers.emplace_back("Cache-Control", "no-cache");
    resp.headers.emplace_back("X-Accel-Buffering", "no");
    return resp;
}

Response Ready(ApiContext& ctx, Request&) {
    const bool models = ctx.engine != nullptr;
    const bool gallery_ok = !ctx.gallery_configured || ctx.gallery != nullptr;
    json streams = json::object();
    int live = 0, total = 0;
    if (ctx.pipeline) {
        for (const auto& s : ctx.pipeline->Stats().streams) {
            streams[s.id] = std::string(stream::SourceStateName(s.source.state));
            ++total;
            live += s.source.state == stream::SourceState::kLive;
        }
    }
    const bool ready = models && gallery_ok && ctx.accepting.load();
    json j = {{"ready", ready},
              {"models", models},
              // degraded stays ready: identify still answers from memory (docs/gallery.md, PostgreSQL).
              {"gallery", ctx.gallery ? (ctx.gallery->degraded() ? "degraded" : "open")
                                      : (ctx.gallery_configured ? "failed" : "none")},
              {"accepting", ctx.accepting.load()},
              {"streams", {{"total", total}, {"live", live}, {"states", streams}}}};
    if (ctx.cluster_status) j["cluster"] = ctx.cluster_status();
    Response resp = Response::Json(ready ? 200 : 503, j);
    if (!ready) resp.headers.emplace_back("Retry-After", "1");
    return resp;
}

}  // namespace

void AddStreamRoutes(server::Router& router, ApiContext& ctx) {
    auto h = [&ctx](Response (*f)(ApiContext&, Request&)) {
        return Guard([&ctx, f](Request& r) { return f(ctx, r); });
    };
    router.Add("GET", "/v1/streams", {.scope = "read"}, h(ListStreams));
    router.Add("POST", "/v1/streams", {.scope = "admin"}, h(AddStream));
    router.Add("GET", "/v1/streams/{id}", {.scope = "read"}, h(GetStream));
    router.Add("PATCH", "/v1/streams/{id}", {.scope = "admin"}, h(PatchStream));
    router.Add("DELETE", "/v1/streams/{id}", {.scope = "admin"}, h(DeleteStream));
    router.Add("GET", "/v1/streams/{id}/frame.jpg", {.scope = "read"}, h(Frame));
    router.Add("GET", "/v1/streams/{id}/mjpeg", {.scope = "read"}, h(Mjpeg));
    router.Add("GET", "/v1/events", {.scope = "events"}, h(Events));
    router.Add("GET", "/healthz", {}, Guard([](Request&) { return Response::Json(200, {{"status", "ok"}}); }));
    router.Add("GET", "/readyz", {}, h(Ready));
    if (ctx.metrics) {
        router.Add("GET", "/metrics", {.scope = "read"}, Guard([&ctx](Request&) {
                       Response resp;
                       resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
                       resp.body = ctx.metrics();
                       return resp;
                   }));
    }
    router.Add("GET", "/v1/openapi.json", {}, Guard([&ctx](Request&) {
                   Response resp;
                   resp.body = ctx.openapi;
                   return resp;
               }));
}

}  // namespace fg::api
