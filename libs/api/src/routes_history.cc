// SPDX-License-Identifier: Apache-2.0
// Recognition history and strangers (docs/api.md "History", docs/history.md): list/get/crop of
// sightings, search by face, strangers list/get/enroll/merge/dismiss. 409 no_history when the
// service runs without one.
#include <algorithm>

#include "fg/gallery/gallery.h"
#include "fg/history/history.h"
#include "http_util.h"
#include "routes.h"
#include "runtime.h"

namespace fg::api {
namespace {

using nlohmann::json;
using server::Request;
using server::Response;

history::HistoryStore& H(ApiContext& ctx) {
    if (!ctx.history) Throw(409, "no_history", "the service keeps no history (history.enabled, a gallery)");
    return *ctx.history;
}

std::string Text(const Request& r, const std::string& name) {
    const auto it = r.query.find(name);
    return it == r.query.end() ? "" : it->second;
}

std::int64_t Id(const std::string& text, const std::string& field) {
    std::size_t used = 0;
    std::int64_t v = -1;
    try {
        v = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (text.empty() || used != text.size() || v <= 0) Throw(400, "bad_request", field + " must be a positive integer", field);
    return v;
}

std::optional<std::int64_t> Time(const Request& r, const std::string& name) {
    if (!r.query.count(name)) return std::nullopt;
    Result<std::int64_t> t = history::ParseTime(Text(r, name));
    if (!t.ok()) Throw(400, "bad_request", name + ": " + t.status().message(), name);
    return *t;
}

int Limit(ApiContext& ctx, const Request& r) {
    return QueryInt(r, "limit", std::min(ctx.options.default_page, 100), 1, std::min(ctx.options.max_page, 1000));
}

void Audit(ApiContext& ctx, const Request& r, const std::string& action, const std::string& target,
           const std::string& result) {
    if (ctx.audit) ctx.audit(r.principal, action, target, result);
}

Response List(ApiContext& ctx, Request& r) {
    history::HistoryStore& h = H(ctx);
    history::HistoryQuery q;
    q.from_ms = Time(r, "from");
    q.to_ms = Time(r, "to");
    if (q.from_ms && q.to_ms && *q.from_ms > *q.to_ms) Throw(400, "bad_request", "from is after to", "from");
    q.stream = Text(r, "stream");
    q.subject = Text(r, "subject");
    if (r.query.count("outcome")) q.outcome = Value(history::ParseOutcome(Text(r, "outcome")), "outcome");
    if (r.query.count("stranger")) q.stranger = Id(Text(r, "stranger"), "stranger");
    q.cursor = Text(r, "cursor");
    q.limit = Limit(ctx, r);
    const history::HistoryPage page = Value(h.List(q), q.cursor.empty() ? "" : "cursor");
    json items = json::array();
    for (const auto& s : page.items) items.push_back(history::ToJson(s));
    return Response::Json(200, {{"items", items},
                                {"next_cursor", page.next_cursor.empty() ? json(nullptr) : json(page.next_cursor)}});
}

Response Get(ApiContext& ctx, Request& r) {
    return Response::Json(200, history::ToJson(Value(H(ctx).Get(Id(r.params.at("id"), "id")))));
}

Response Crop(ApiContext& ctx, Request& r) {
    const std::int64_t id = Id(r.params.at("id"), "id");
    Result<std::vector<std::uint8_t>> jpeg = H(ctx).Crop(id);
    if (!jpeg.ok() && jpeg.status().code() == StatusCode::kDataLoss) {
        Throw(500, "data_loss", jpeg.status().message());  // that row only; the rest stays readable
    }
    Response resp;
    resp.status = 200;
    resp.content_type = "image/jpeg";
    const std::vector<std::uint8_t> bytes = Value(std::move(jpeg));
    resp.body.assign(bytes.begin(), bytes.end());
    resp.headers.emplace_back("Cache-Control", "private, no-store");
    Audit(ctx, r, "history_crop", std::to_string(id), "ok");
    return resp;
}

Response Search(ApiContext& ctx, Request& r) {
    history::HistoryStore& h = H(ctx);
    const int limit = QueryInt(r, "limit", 50, 1, 1000);
    // The gallery's threshold as it is now (PATCH /v1/settings, a saved calibration), as
    // identify reads it; the store's stranger_threshold is only its value at start-up.
    float min_score = ctx.gallery ? ctx.gallery->settings().threshold : h.options().stranger_threshold;
    if (r.query.count("min_score")) {
        try {
            std::size_t used = 0;
            min_score = std::stof(Text(r, "min_score"), &used);
            if (used != Text(r, "min_score").size() || !(min_score >= -1.f && min_score <= 1.f)) throw std::out_of_range("");
        } catch (const std::exception&) {
            Throw(400, "bad_request", "min_score must be a number in [-1, 1]", "min_score");
        }
    }
    const Body body = ParseBody(r, {"image"});
    if (body.images.empty()) Throw(400, "missing_image", "an image is required", "image");
    if (body.images.size() > 1) Throw(400, "bad_request", "exactly one image is expected", body.images[1].field);
    const cv::Mat image = DecodeUpload(body.images.front());
    auto worker = Value(ctx.runtime->workers.Acquire());
    const auto found = Value(worker->Analyze(image));
    if (found.size() > static_cast<std::size_t>(ctx.options.max_faces)) {
        Throw(422, "too_many_faces", "the image has " + std::to_string(found.size()) + " faces; at most " +
                                         std::to_string(ctx.options.max_faces) + " are answered per request");
    }
    json faces = json::array();
    for (const auto& f : found) {
        json face = FaceJson(f);
        json matches = json::array();
        if (f.embedding) {
            for (const auto& [s, score] : Value(h.Search(f.embedding->values, limit, min_score))) {
                json m = history::ToJson(s);
                m["similarity"] = score;
                matches.push_back(std::move(m));
            }
        }
        face["matches"] = std::move(matches);
        faces.push_back(std::move(face));
    }
    Audit(ctx, r, "history_search", "", "faces=" + std::to_string(found.size()));
    return Response::Json(200, {{"faces", faces}});
}

Response ListStrangers(ApiContext& ctx, Request& r) {
    history::StrangerQuery q;
    q.stream = Text(r, "stream");
    q.since_ms = Time(r, "since");
    q.cursor = Text(r, "cursor");
    q.limit = Limit(ctx, r);
    const history::StrangerPage page = Value(H(ctx).ListStrangers(q), q.cursor.empty() ? "" : "cursor");
    json items = json::array();
    for (const auto& s : page.items) items.push_back(history::ToJson(s));
    return Response::Json(200, {{"items", items},
                                {"next_cursor", page.next_cursor.empty() ? json(nullptr) : json(page.next_cursor)}});
}

Response GetStranger(ApiContext& ctx, Request& r) {
    history::HistoryStore& h = H(ctx);
    const std::int64_t id = Id(r.params.at("id"), "id");
    json j = history::ToJson(Value(h.GetStranger(id)));
    history::HistoryQuery q{.stranger = id, .limit = Limit(ctx, r)};
    json sightings = json::array();
    for (const auto& s : Value(h.List(q)).items) sightings.push_back(history::ToJson(s));
    j["sightings"] = std::move(sightings);
    return Response::Json(200, j);
}

// Names a stranger: enrolls a subject from the fused embeddings of its best sightings (the
// same model as the gallery's), then closes the stranger (its sightings get the subject).
Response Enroll(ApiContext& ctx, Request& r) {
    history::HistoryStore& h = H(ctx);
    RequireGallery(ctx);
    const std::int64_t id = Id(r.params.at("id"), "id");
    const json body = JsonBody(r);
    if (!body.contains("subject_id") || !body["subject_id"].is_string() || body["subject_id"].get<std::string>().empty()) {
        Throw(400, "bad_request", "subject_id (a non-empty string) is required", "subject_id");
    }
    const std::string subject = body["subject_id"];
    std::string display;
    if (body.contains("display_name")) {
        if (!body["display_name"].is_string()) Throw(400, "bad_request", "display_name must be a string", "display_name");
        display = body["display_name"];
    }
    (void)Value(h.GetStranger(id));
    if (ctx.gallery->model_id() != h.options().model_id && !ctx.gallery->model_id().empty()) {
        Throw(409, "model_mismatch", "the history holds embeddings of another model than the gallery");
    }
    std::vector<history::Sighting> members = Value(h.List({.stranger = id, .limit = 1000})).items;
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.quality > b.quality; });
    std::vector<gallery::NewFace> faces;
    for (const auto& s : members) {
        if (faces.size() >= 5) break;
        Result<std::vector<float>> e = h.Embedding(s.id);
        if (!e.ok()) continue;  // a tampered row is skipped, not enrolled
        faces.push_back({.embedding = std::move(*e), .quality = s.quality, .source = "history:" + std::to_string(s.id)});
    }
    if (faces.empty()) Throw(409, "no_faces", "the stranger has no readable sightings to enroll from");
    const gallery::EnrollResult res = Value(ctx.gallery->Enroll(
        subject, {.model_id = h.options().model_id, .create_subject = true, .display_name = display}, faces));
    if (res.face_ids.empty()) {
        Throw(409, res.rejected.empty() ? "conflict" : res.rejected.front().reason,
              res.rejected.empty() ? "nothing enrolled" : res.rejected.front().detail);
    }
    FG_API_CHECK(h.NameStranger(id, subject, display.empty() ? subject : display), "");
    Audit(ctx, r, "stranger_enroll", subject, "enrolled=" + std::to_string(res.face_ids.size()));
    return Response::Json(201, {{"subject_id", subject}, {"faces_enrolled", res.face_ids.size()}});
}

Response Merge(ApiContext& ctx, Request& r) {
    const std::int64_t id = Id(r.params.at("id"), "id");
    const json body = JsonBody(r);
    if (!body.contains("into") || !body["into"].is_number_integer()) {
        Throw(400, "bad_request", "into (a stranger id) is required", "into");
    }
    const history::Stranger merged = Value(H(ctx).MergeStrangers(id, body["into"].get<std::int64_t>()), "into");
    Audit(ctx, r, "stranger_merge", std::to_string(id), "ok");
    return Response::Json(200, history::ToJson(merged));
}

Response Dismiss(ApiContext& ctx, Request& r) {
    const std::int64_t id = Id(r.params.at("id"), "id");
    FG_API_CHECK(H(ctx).DismissStranger(id), "");
    Audit(ctx, r, "stranger_dismiss", std::to_string(id), "ok");
    Response resp;
    resp.status = 204;
    return resp;
}

}  // namespace

void AddHistoryRoutes(server::Router& router, ApiContext& ctx) {
    auto h = [&ctx](Response (*f)(ApiContext&, Request&)) { return Guard([&ctx, f](Request& r) { return f(ctx, r); }); };
    router.Add("GET", "/v1/history", {.scope = "read"}, h(List));
    router.Add("GET", "/v1/history/{id}", {.scope = "read"}, h(Get));
    router.Add("GET", "/v1/history/{id}/crop.jpg", {.scope = "read"}, h(Crop));
    router.Add("POST", "/v1/history/search", {.scope = "recognize", .compute = true}, h(Search));
    router.Add("GET", "/v1/strangers", {.scope = "read"}, h(ListStrangers));
    router.Add("GET", "/v1/strangers/{id}", {.scope = "read"}, h(GetStranger));
    router.Add("POST", "/v1/strangers/{id}/enroll", {.scope = "enroll"}, h(Enroll));
    router.Add("POST", "/v1/strangers/{id}/merge", {.scope = "enroll"}, h(Merge));
    router.Add("DELETE", "/v1/strangers/{id}", {.scope = "enroll"}, h(Dismiss));
}

}  // namespace fg::api
