// SPDX-License-Identifier: Apache-2.0
// Subjects and faces: /v1/subjects[/{id}[/merge|/faces[/{face_id}]]], mirroring the gallery.
#include <opencv2/imgcodecs.hpp>

#include "fg/gallery/gallery.h"
#include "fg/vision/enroll_gate.h"
#include "http_util.h"
#include "routes.h"
#include "runtime.h"

namespace fg::api {

gallery::Gallery& RequireGallery(ApiContext& ctx) {
    if (!ctx.gallery) Throw(409, "no_gallery", "the service runs without a gallery");
    return *ctx.gallery;
}

namespace {

using nlohmann::json;
using server::Request;
using server::Response;

void Audit(ApiContext& ctx, const Request& r, const std::string& action, const std::string& target,
           const std::string& result) {
    if (ctx.audit) ctx.audit(r.principal, action, target, result);
}

json SubjectJson(const gallery::Subject& s) {
    json meta = json::parse(s.metadata, nullptr, false);
    if (meta.is_discarded()) meta = json::object();
    return {{"id", s.id},           {"display_name", s.display_name}, {"metadata", meta},
            {"created_at", s.created_at}, {"updated_at", s.updated_at},     {"face_count", s.face_count}};
}

json FaceInfoJson(const gallery::FaceInfo& f) {
    return {{"face_id", f.face_id}, {"subject_id", f.subject_id}, {"model_id", f.model_id},
            {"quality", f.quality}, {"source", f.source},         {"created_at", f.created_at},
            {"has_crop", f.has_crop}};
}

std::string StringField(const json& j, const std::string& key, bool required) {
    if (!j.contains(key) || j[key].is_null()) {
        if (required) Throw(400, "bad_request", key + " is required", key);
        return "";
    }
    if (!j[key].is_string()) Throw(400, "bad_request", key + " must be a string", key);
    return j[key].get<std::string>();
}

std::string MetadataField(const json& j) {
    if (!j.contains("metadata")) return "{}";
    if (!j["metadata"].is_object()) Throw(400, "bad_request", "metadata must be a JSON object", "metadata");
    std::string text = j["metadata"].dump();
    if (text.size() > 64 * 1024) Throw(400, "bad_request", "metadata is larger than 64 KiB", "metadata");
    return text;
}

void CheckId(const std::string& id, const std::string& field) {
    if (id.empty() || id.size() > 256) Throw(400, "bad_request", field + " must be 1..256 characters", field);
    for (unsigned char c : id) {
        if (c < 0x20) Throw(400, "bad_request", field + " has a control character", field);
    }
}

Response ListSubjects(ApiContext& ctx, Request& r) {
    const int limit = QueryInt(r, "limit", ctx.options.default_page, 1, ctx.options.max_page);
    const auto it = r.query.find("after");
    const std::string after = it == r.query.end() ? "" : it->second;
    const auto page = Value(RequireGallery(ctx).ListSubjects(after, limit));
    json items = json::array();
    for (const auto& s : page.subjects) items.push_back(SubjectJson(s));
    return Response::Json(200, {{"items", items}, {"next", page.next_after.empty() ? json(nullptr) : json(page.next_after)}});
}

Response CreateSubject(ApiContext& ctx, Request& r) {
    const json j = JsonBody(r);
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() != "id" && it.key() != "display_name" && it.key() != "metadata") {
            Throw(400, "bad_request", "unknown field " + it.key(), it.key());
        }
    }
    gallery::Subject s;
    s.id = StringField(j, "id", true);
    CheckId(s.id, "id");
    s.display_name = StringField(j, "display_name", false);
    if (s.display_name.empty()) s.display_name = s.id;
    s.metadata = MetadataField(j);
    const Status st = RequireGallery(ctx).CreateSubject(s);
    Audit(ctx, r, "create_subject", s.id, st.ok() ? "ok" : st.message());
    FG_API_CHECK(st, "id");
    return Response::Json(201, SubjectJson(Value(RequireGallery(ctx).GetSubject(s.id))));
}

Response GetSubject(ApiContext& ctx, Request& r) {
    return Response::Json(200, SubjectJson(Value(RequireGallery(ctx).GetSubject(r.params.at("id")))));
}

Response PatchSubject(ApiContext& ctx, Request& r) {
    const std::string& id = r.params.at("id");
    const json j = JsonBody(r);
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() != "display_name" && it.key() != "metadata") {
            Throw(400, "bad_request", "unknown field " + it.key() + " (display_name and metadata can change)", it.key());
        }
    }
    Value(RequireGallery(ctx).GetSubject(id));  // 404 before any change
    if (j.contains("display_name")) {
        const std::string name = StringField(j, "display_name", true);
        if (name.empty()) Throw(400, "bad_request", "display_name must not be empty", "display_name");
        FG_API_CHECK(RequireGallery(ctx).RenameSubject(id, name), "display_name");
    }
    if (j.contains("metadata")) FG_API_CHECK(RequireGallery(ctx).UpdateMetadata(id, MetadataField(j)), "metadata");
    Audit(ctx, r, "update_subject", id, "ok");
    return Response::Json(200, SubjectJson(Value(RequireGallery(ctx).GetSubject(id))));
}

Response DeleteSubject(ApiContext& ctx, Request& r) {
    const std::string& id = r.params.at("id");
    const Status st = RequireGallery(ctx).DeleteSubject(id);
    Audit(ctx, r, "delete", id, st.ok() ? "ok" : st.message());
    FG_API_CHECK(st, "");
    return Response::Json(200, {{"id", id}, {"deleted", true}});
}

Response Merge(ApiContext& ctx, Request& r) {
    const std::string& id = r.params.at("id");
    const json j = JsonBody(r);
    const std::string into = StringField(j, "into", true);
    if (into == id) Throw(400, "bad_request", "cannot merge a subject into itself", "into");
    Value(RequireGallery(ctx).GetSubject(id));
    Value(RequireGallery(ctx).GetSubject(into), "into");
    const Status st = RequireGallery(ctx).MergeSubjects(id, into);
    Audit(ctx, r, "merge", id + "->" + into, st.ok() ? "ok" : st.message());
    FG_API_CHECK(st, "into");
    return Response::Json(200, SubjectJson(Value(RequireGallery(ctx).GetSubject(into))));
}

Response ListFaces(ApiContext& ctx, Request& r) {
    const auto faces = Value(RequireGallery(ctx).ListFaces(r.params.at("id")));
    json items = json::array();
    for (const auto& f : faces) items.push_back(FaceInfoJson(f));
    return Response::Json(200, {{"items", items}});
}

Response Enroll(ApiContext& ctx, Request& r) {
    gallery::Gallery& g = RequireGallery(ctx);
    const std::string& id = r.params.at("id");
    const bool force = QueryBool(r, "force");
    const Body body = ParseBody(r, {"image", "images"});
    if (body.images.empty()) Throw(400, "missing_image", "at least one image is required", "image");
    if (body.images.size() > static_cast<std::size_t>(ctx.options.max_images)) {
        Throw(400, "too_many_images", "at most " + std::to_string(ctx.options.max_images) + " images per request", "image");
    }
    Value(g.GetSubject(id));  // 404 before any inference
    const bool keep_crops = g.settings().keep_crops;
    std::vector<gallery::NewFace> faces;
    std::vector<std::string> fields;
    json rejected = json::array();
    auto worker = Value(ctx.runtime->workers.Acquire());
    for (const Upload& u : body.images) {
        const cv::Mat image = DecodeUpload(u);
        const auto found = Value(worker->Analyze(image, {.embed = true, .keep_aligned = keep_crops}));
        vision::GateDecision d = vision::CheckEnrollmentFaces(found);
        if (!d.accepted && (!ctx.options.enroll_gate || force) && d.face >= 0) d.accepted = true;
        if (!d.accepted || d.face < 0 || !found[d.face].embedding) {
            rejected.push_back({{"field", u.field},
                                {"reason", d.reasons.empty() ? "no_face" : d.reasons.front()},
                                {"reasons", d.reasons},
                                {"detail", d.detail}});
            continue;
        }
        const vision::Face& f = found[d.face];
        gallery::NewFace nf{f.embedding->values, f.quality.score, "api:" + u.field, {}};
        if (keep_crops && !f.aligned.image.empty()) cv::imencode(".png", f.aligned.image, nf.crop);
        faces.push_back(std::move(nf));
        fields.push_back(u.field);
    }
    json face_ids = json::array();
    if (!faces.empty()) {
        const auto res = Value(g.Enroll(id, {.model_id = g.model_id().empty() && ctx.engine && ctx.engine->embedder_info()
                                                              ? ctx.engine->embedder_info()->model_id
                                                              : g.model_id(),
                                            .create_subject = false, .force = force},
                                        faces));
        for (auto fid : res.face_ids) face_ids.push_back(fid);
        for (const auto& rej : res.rejected) {
            rejected.push_back({{"field", rej.face < fields.size() ? fields[rej.face] : ""},
                                {"reason", rej.reason}, {"reasons", {rej.reason}}, {"detail", rej.detail}});
        }
    }
    Audit(ctx, r, "enroll", id, "enrolled=" + std::to_string(face_ids.size()) + " rejected=" + std::to_string(rejected.size()));
    if (face_ids.empty()) {
        const std::string reason = rejected.empty() ? "no_face" : rejected[0]["reason"].get<std::string>();
        Response resp = Response::Error(422, "enrollment_rejected",
                                        "no face was enrolled: " + reason + " (see details)", rejected[0].value("field", ""));
        json err = json::parse(resp.body, nullptr, false);
        if (!err.is_discarded()) {
            err["error"]["rejected"] = rejected;
            resp.body = err.dump();
        }
        return resp;
    }
    return Response::Json(201, {{"subject_id", id}, {"face_ids", face_ids}, {"rejected", rejected}});
}

Response DeleteFace(ApiContext& ctx, Request& r) {
    const std::string& id = r.params.at("id");
    const std::string& fid_text = r.params.at("face_id");
    std::int64_t fid = 0;
    try {
        std::size_t used = 0;
        fid = std::stoll(fid_text, &used);
        if (used != fid_text.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        Throw(400, "bad_request", "face_id must be an integer", "face_id");
    }
    const auto faces = Value(RequireGallery(ctx).ListFaces(id));
    const bool owned = std::any_of(faces.begin(), faces.end(), [&](const auto& f) { return f.face_id == fid; });
    if (!owned) Throw(404, "not_found", "subject '" + id + "' has no face " + fid_text, "face_id");
    const Status st = RequireGallery(ctx).RemoveFace(fid);
    Audit(ctx, r, "delete_face", id + "/" + fid_text, st.ok() ? "ok" : st.message());
    FG_API_CHECK(st, "face_id");
    return Response::Json(200, {{"face_id", fid}, {"deleted", true}});
}

}  // namespace

void AddGalleryRoutes(server::Router& router, ApiContext& ctx) {
    auto h = [&ctx](Response (*f)(ApiContext&, Request&)) {
        return Guard([&ctx, f](Request& r) { return f(ctx, r); });
    };
    router.Add("GET", "/v1/subjects", {.scope = "read"}, h(ListSubjects));
    router.Add("POST", "/v1/subjects", {.scope = "enroll"}, h(CreateSubject));
    router.Add("GET", "/v1/subjects/{id}", {.scope = "read"}, h(GetSubject));
    router.Add("PATCH", "/v1/subjects/{id}", {.scope = "enroll"}, h(PatchSubject));
    router.Add("DELETE", "/v1/subjects/{id}", {.scope = "enroll"}, h(DeleteSubject));
    router.Add("POST", "/v1/subjects/{id}/merge", {.scope = "enroll"}, h(Merge));
    router.Add("GET", "/v1/subjects/{id}/faces", {.scope = "read"}, h(ListFaces));
    router.Add("POST", "/v1/subjects/{id}/faces", {.scope = "enroll", .compute = true}, h(Enroll));
    router.Add("DELETE", "/v1/subjects/{id}/faces/{face_id}", {.scope = "enroll"}, h(DeleteFace));
}

}  // namespace fg::api
