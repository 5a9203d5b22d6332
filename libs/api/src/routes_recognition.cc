// SPDX-License-Identifier: Apache-2.0
// POST /v1/detect, /v1/identify, /v1/verify.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>

#include "fg/gallery/gallery.h"
#include "fg/vision/attributes.h"
#include "fg/vision/embedder.h"
#include "fg/vision/liveness.h"
#include "http_util.h"
#include "probe_body.h"
#include "routes.h"
#include "runtime.h"

namespace fg::api {
namespace {

using nlohmann::json;
using server::Request;
using server::Response;

const Upload& OneImage(const Body& b, const std::string& field = "image") {
    if (b.images.empty()) Throw(400, "missing_image", "an image is required", field);
    if (b.images.size() > 1) Throw(400, "bad_request", "exactly one image is expected", b.images[1].field);
    return b.images.front();
}

void CheckFaceCount(const ApiContext& ctx, std::size_t n) {
    if (n > static_cast<std::size_t>(ctx.options.max_faces)) {
        Throw(422, "too_many_faces",
              "the image has " + std::to_string(n) + " faces; at most " +
                  std::to_string(ctx.options.max_faces) + " are answered per request");
    }
}

std::vector<vision::FaceDetection> Detections(const std::vector<vision::Face>& faces) {
    std::vector<vision::FaceDetection> d;
    for (const auto& f : faces) d.push_back(f.detection);
    return d;
}

std::vector<vision::LivenessResult> CheckLiveness(ApiContext& ctx, const cv::Mat& image,
                                                  const std::vector<vision::Face>& faces) {
    std::vector<vision::LivenessResult> out;
    if (faces.empty()) return out;
    auto checker = Value(ctx.runtime->liveness.Acquire());
    const auto d = Detections(faces);
    FG_API_CHECK(checker->CheckBatch(image, d, out), "");
    return out;
}

json CandidateJson(const gallery::Candidate& c) {
    return {{"subject_id", c.subject_id}, {"display_name", c.display_name}, {"score", c.score},
            {"face_id", c.face_id}};
}

json IdentificationJson(const gallery::Identification& id) {
    json cands = json::array();
    for (const auto& c : id.candidates) cands.push_back(CandidateJson(c));
    json j = {{"decision", id.known ? "known" : "unknown"},
              {"reason", id.reason},
              {"candidates", cands},
              {"threshold", id.threshold}};
    j["subject_id"] = id.known ? json(id.subject_id) : json(nullptr);
    return j;
}

/// `ok` once the request's audit record is durable: deferred (no thread waits for the fsync;
/// many requests share one) with the async hook, else through the blocking hook. A record that
/// cannot be written answers 503 audit_unavailable: never a 2xx for what is not recorded.
Response Audited(ApiContext& ctx, const Request& r, const std::string& action, const std::string& target,
                 const std::string& result, Response ok) {
    if (ctx.audit_async) {
        return Response::Deferred([&ctx, p = r.principal, action, target, result,
                                   ok = std::move(ok)](std::shared_ptr<server::Responder> responder) mutable {
            ctx.audit_async(p, action, target, result, [responder, ok = std::move(ok)](Status s) mutable {
                if (s.ok()) return responder->Send(std::move(ok));
                Response e = Response::Error(503, "audit_unavailable", "the request was not recorded in the audit log; retry later");
                e.headers.emplace_back("Retry-After", "1");
                responder->Send(std::move(e));
            });
        });
    }
    if (ctx.audit) ctx.audit(r.principal, action, target, result);
    return ok;
}

/// The identify body's fast reader (probe_body.h), for application/json only; false sends the
/// request down the general parser.
bool ParseProbeFast(const Request& r, FastProbe& out) {
    std::string ct = r.Header("Content-Type");
    ct = ct.substr(0, ct.find(';'));
    std::string media;
    for (unsigned char c : ct) {
        if (!std::isspace(c)) media.push_back(char(std::tolower(c)));
    }
    return media == "application/json" && ParseProbeBodyFast(r.body, out);
}

Response IdentifyProbe(ApiContext& ctx, Request& r, gallery::Gallery& g, const Embedding& probe, int top_k) {
    const auto id = Value(g.Identify(probe, top_k), "embedding");
    json faces = json::array();
    faces.push_back(IdentificationJson(id));
    return Audited(ctx, r, "identify", id.known ? id.subject_id : "", id.known ? "known" : "unknown",
                   Response::Json(200, {{"faces", faces}}));
}

Response Detect(ApiContext& ctx, Request& r) {
    const bool liveness = QueryBool(r, "liveness");
    const bool attributes = QueryBool(r, "attributes");
    const Body body = ParseBody(r, {"image"});
    const cv::Mat image = DecodeUpload(OneImage(body));
    auto worker = Value(ctx.runtime->workers.Acquire());
    const auto faces = Value(worker->Analyze(image, {.embed = false}));
    CheckFaceCount(ctx, faces.size());
    std::vector<vision::LivenessResult> live;
    if (liveness) live = CheckLiveness(ctx, image, faces);
    std::vector<vision::FaceAttributes> attrs;
    if (attributes && !faces.empty()) {
        auto est = Value(ctx.runtime->attributes.Acquire());
        FG_API_CHECK(est->EstimateBatch(image, Detections(faces), est->available(), attrs), "");
    }
    json out = json::array();
    for (std::size_t i = 0; i < faces.size(); ++i) {
        json f = FaceJson(faces[i]);
        if (i < live.size()) f["liveness"] = LivenessJson(live[i]);
        if (i < attrs.size()) f["attributes"] = AttributesJson(attrs[i]);
        out.push_back(std::move(f));
    }
    return Response::Json(200, {{"faces", out}, {"image", {{"width", image.cols}, {"height", image.rows}}}});
}

Response Identify(ApiContext& ctx, Request& r) {
    gallery::Gallery& g = RequireGallery(ctx);
    const int top_k = QueryInt(r, "top_k", ctx.options.top_k, 1, 100);
    const bool liveness = QueryBool(r, "liveness");
    if (FastProbe fast; ParseProbeFast(r, fast)) {
        const std::string model_id = g.model_id();
        if (fast.model_id && !model_id.empty() && *fast.model_id != model_id) {
            Throw(400, "model_mismatch", "the gallery holds embeddings of '" + model_id + "', not '" + *fast.model_id + "'", "model_id");
        }
        Embedding probe{model_id, std::move(fast.values)};
        if (!AllFinite(probe.values)) Throw(400, "invalid_embedding", "embedding has a non-finite value", "embedding");
        if (L2Normalize(probe.values) == 0) Throw(400, "invalid_embedding", "embedding is all zeros", "embedding");
        return IdentifyProbe(ctx, r, g, probe, top_k);
    }
    const Body body = ParseBody(r, {"image"});
    json faces = json::array();
    std::string known;
    if (body.is_json && body.images.empty()) {
        if (!body.json.contains("embedding")) Throw(400, "missing_image", "give an image or an embedding", "image");
        std::string model_id = g.model_id();
        if (body.json.contains("model_id")) {
            if (!body.json["model_id"].is_string()) Throw(400, "bad_request", "model_id must be a string", "model_id");
            const std::string given = body.json["model_id"];
            if (!model_id.empty() && given != model_id) {
                Throw(400, "model_mismatch", "the gallery holds embeddings of '" + model_id + "', not '" + given + "'", "model_id");
            }
        }
        const Embedding probe = ParseEmbedding(body.json["embedding"], model_id, "embedding");
        return IdentifyProbe(ctx, r, g, probe, top_k);
    }
    const cv::Mat image = DecodeUpload(OneImage(body));
    auto worker = Value(ctx.runtime->workers.Acquire());
    const auto found = Value(worker->Analyze(image));
    CheckFaceCount(ctx, found.size());
    std::vector<vision::LivenessResult> live;
    if (liveness) live = CheckLiveness(ctx, image, found);
    int n_known = 0, n_unknown = 0, n_spoof = 0;
    for (std::size_t i = 0; i < found.size(); ++i) {
        json f = FaceJson(found[i]);
        if (i < live.size()) {
            f["liveness"] = LivenessJson(live[i]);
            if (!live[i].live) {  // a presentation attack is never named
                f.update({{"decision", "spoof"}, {"reason", "liveness"}, {"candidates", json::array()},
                          {"subject_id", nullptr}});
                ++n_spoof;
                faces.push_back(std::move(f));
                continue;
            }
        }
        if (!found[i].embedding) {
            f.update({{"decision", "unknown"}, {"reason", "not_embedded"}, {"candidates", json::array()},
                      {"subject_id", nullptr}});
            ++n_unknown;
        } else {
            const auto id = Value(g.Identify(*found[i].embedding, top_k));
            f.update(IdentificationJson(id));
            if (id.known) {
                ++n_known;
                known += (known.empty() ? "" : ",") + id.subject_id;
            } else {
                ++n_unknown;
            }
        }
        faces.push_back(std::move(f));
    }
    return Audited(ctx, r, "identify", known,
                   "faces=" + std::to_string(found.size()) + " known=" + std::to_string(n_known) +
                       " unknown=" + std::to_string(n_unknown) + " spoof=" + std::to_string(n_spoof),
                   Response::Json(200, {{"faces", faces}, {"image", {{"width", image.cols}, {"height", image.rows}}}}));
}

/// The embedding of the largest face of an upload; 422 no_face naming the field.
Embedding EmbedMain(ApiContext& ctx, const Upload& u) {
    const cv::Mat image = DecodeUpload(u);
    auto worker = Value(ctx.runtime->workers.Acquire());
    const auto faces = Value(worker->Analyze(image, {.max_faces = 1}));
    const vision::Face* best = nullptr;
    for (const auto& f : faces) {
        if (f.embedding && (!best || f.detection.box.area() > best->detection.box.area())) best = &f;
    }
    if (!best) Throw(422, "no_face", u.field + ": no face found", u.field);
    return *best->embedding;
}

Response Verify(ApiContext& ctx, Request& r) {
    const Body body = ParseBody(r, {"image1", "image2", "image"});
    const std::string model_id = ctx.engine && ctx.engine->embedder_info() ? ctx.engine->embedder_info()->model_id
                                                                           : (ctx.gallery ? ctx.gallery->model_id() : "");
    auto find = [&](const std::string& f) -> const Upload* {
        for (const auto& u : body.images) if (u.field == f) return &u;
        return nullptr;
    };
    auto probe = [&](const std::string& image_field, const std::string& emb_field) -> Embedding {
        if (const Upload* u = find(image_field)) return EmbedMain(ctx, *u);
        if (body.json.contains(emb_field)) return ParseEmbedding(body.json[emb_field], model_id, emb_field);
        Throw(400, "missing_image", "give " + image_field + " or " + emb_field, image_field);
    };
    float threshold = ctx.options.verify_threshold;
    if (threshold <= 0) {
        threshold = ctx.gallery ? ctx.gallery->settings().threshold
                                : (ctx.engine ? vision::DefaultVerifyThreshold(ctx.engine->pack()) : 0.4f);
    }
    float score = 0;
    std::string target;
    if (body.json.contains("subject_id")) {
        if (!body.json["subject_id"].is_string()) Throw(400, "bad_request", "subject_id must be a string", "subject_id");
        target = body.json["subject_id"];
        gallery::Gallery& g = RequireGallery(ctx);
        const Embedding p = probe("image", "embedding");
        score = Value(g.Verify(p, target), "subject_id");
    } else {
        const Embedding a = probe("image1", "embedding1");
        const Embedding b = probe("image2", "embedding2");
        if (a.values.size() != b.values.size()) {
            Throw(400, "invalid_embedding", "the two embeddings differ in length", "embedding2");
        }
        score = Dot(a.values, b.values);
    }
    const bool same = score >= threshold;
    return Audited(ctx, r, "verify", target, same ? "same" : "different",
                   Response::Json(200, {{"score", score}, {"threshold", threshold}, {"decision", same ? "same" : "different"}}));
}

/// The fast path: a JSON body that cannot hold an image (no "image" field, no escapes that could
/// spell one, small) is an embedding search of well under a millisecond at 100k templates. It
/// runs on the IO thread rather than queueing behind image work on the compute pool. Conservative:
/// anything else (even a false "image" match inside a string) takes the pool.
bool EmbeddingOnly(const Request& r) {
    constexpr std::size_t kMaxInlineBody = 64 * 1024;  // a 2048-d embedding in JSON is ~40 KB
    if (r.body.empty() || r.body.size() > kMaxInlineBody) return false;
    if (r.Header("Content-Type").find("json") == std::string::npos) return false;
    return r.body.find("image") == std::string::npos && r.body.find('\\') == std::string::npos;
}

}  // namespace

void AddRecognitionRoutes(server::Router& router, ApiContext& ctx) {
    router.Add("POST", "/v1/detect", {.scope = "recognize", .compute = true},
               Guard([&ctx](Request& r) { return Detect(ctx, r); }));
    router.Add("POST", "/v1/identify", {.scope = "recognize", .compute = true, .inline_if = EmbeddingOnly},
               Guard([&ctx](Request& r) { return Identify(ctx, r); }));
    router.Add("POST", "/v1/verify", {.scope = "recognize", .compute = true, .inline_if = EmbeddingOnly},
               Guard([&ctx](Request& r) { return Verify(ctx, r); }));
}

}  // namespace fg::api
