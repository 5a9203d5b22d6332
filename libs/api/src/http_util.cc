// SPDX-License-Identifier: Apache-2.0
#include "http_util.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "fg/base/log.h"
#include "fg/events/event.h"
#include "fg/image/image_io.h"
#include "fg/vision/attributes.h"
#include "fg/vision/liveness.h"

namespace fg::api {
namespace {

std::string MediaType(const server::Request& r) {
    std::string ct = r.Header("Content-Type");
    ct = ct.substr(0, ct.find(';'));
    ct.erase(std::remove_if(ct.begin(), ct.end(), [](unsigned char c) { return std::isspace(c); }), ct.end());
    std::transform(ct.begin(), ct.end(), ct.begin(), [](unsigned char c) { return std::tolower(c); });
    return ct;
}

bool IsJson(const std::string& media) {
    return media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"));
}

}  // namespace

void Throw(int status, std::string code, std::string message, std::string field) {
    throw ApiError(status, std::move(code), std::move(message), std::move(field));
}

void ThrowStatus(const Status& s, std::string field) {
    switch (s.code()) {
        case StatusCode::kInvalidArgument:
        case StatusCode::kOutOfRange:
            Throw(400, "bad_request", s.message(), std::move(field));
        case StatusCode::kNotFound:
            Throw(404, "not_found", s.message(), std::move(field));
        case StatusCode::kAlreadyExists:
            Throw(409, "already_exists", s.message(), std::move(field));
        case StatusCode::kFailedPrecondition:
            Throw(409, "conflict", s.message(), std::move(field));
        case StatusCode::kResourceExhausted:
        case StatusCode::kUnavailable:
            Throw(503, "unavailable", s.message(), std::move(field));
        default:
            Throw(500, "internal", s.message(), std::move(field));
    }
}

server::Handler Guard(std::function<server::Response(server::Request&)> handler) {
    return [handler = std::move(handler)](server::Request& r) -> server::Response {
        try {
            return handler(r);
        } catch (const ApiError& e) {
            if (e.status >= 500) spdlog::warn("{} {}: {} ({})", r.method, r.path, e.what(), e.code);
            server::Response resp = server::Response::Error(e.status, e.code, e.what(), e.field);
            if (e.status == 503) resp.headers.emplace_back("Retry-After", "1");
            return resp;
        } catch (const std::exception& e) {
            spdlog::error("{} {}: unexpected error: {}", r.method, r.path, e.what());
            return server::Response::Error(500, "internal", "internal error");
        }
    };
}

nlohmann::json JsonBody(const server::Request& r, bool required) {
    const std::string media = MediaType(r);
    if (r.body.empty() && !required) return nlohmann::json::object();
    if (r.body.empty()) Throw(400, "missing_body", "a JSON body is required");
    if (!IsJson(media)) {
        Throw(415, "unsupported_media_type", "Content-Type must be application/json, got '" + media + "'");
    }
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded()) Throw(400, "invalid_json", "the body is not valid JSON");
    if (!j.is_object()) Throw(400, "invalid_json", "the body must be a JSON object");
    return j;
}

std::string DecodeBase64(const std::string& text, const std::string& field) {
    std::string_view t = text;
    if (t.starts_with("data:")) {
        const std::size_t comma = t.find(',');
        if (comma == std::string_view::npos || t.substr(0, comma).find(";base64") == std::string_view::npos) {
            Throw(400, "invalid_base64", field + " is a data URL without ;base64,", field);
        }
        t.remove_prefix(comma + 1);
    }
    Result<std::vector<std::uint8_t>> bytes = events::Base64Decode(t);
    if (!bytes.ok()) Throw(400, "invalid_base64", field + " is not valid base64", field);
    if (bytes->empty()) Throw(400, "invalid_image", field + " is empty", field);
    return std::string(bytes->begin(), bytes->end());
}

Body ParseBody(const server::Request& r, const std::vector<std::string>& image_fields) {
    Body body;
    const std::string media = MediaType(r);
    if (r.body.empty()) Throw(400, "missing_image", "the request has no body (an image is required)");
    if (IsJson(media)) {
        body.json = JsonBody(r);
        body.is_json = true;
        for (const std::string& f : image_fields) {
            if (!body.json.contains(f)) continue;
            const nlohmann::json& v = body.json[f];
            if (v.is_string()) {
                body.images.push_back({f, DecodeBase64(v.get<std::string>(), f)});
            } else if (v.is_array()) {
                for (std::size_t i = 0; i < v.size(); ++i) {
                    const std::string name = f + "[" + std::to_string(i) + "]";
                    if (!v[i].is_string()) Throw(400, "bad_request", name + " must be a base64 string", name);
                    body.images.push_back({name, DecodeBase64(v[i].get<std::string>(), name)});
                }
            } else {
                Throw(400, "bad_request", f + " must be a base64 string", f);
            }
        }
        return body;
    }
    if (media == "multipart/form-data") {
        Result<std::string> boundary = MultipartBoundary(r.Header("Content-Type"));
        if (!boundary.ok()) Throw(400, "invalid_multipart", boundary.status().message());
        Result<std::vector<MultipartPart>> parts = ParseMultipart(r.body, *boundary);
        if (!parts.ok()) Throw(400, "invalid_multipart", parts.status().message());
        for (MultipartPart& p : *parts) {
            const bool image = std::find(image_fields.begin(), image_fields.end(), p.name) != image_fields.end();
            if (image) {
                body.images.push_back({p.name, std::move(p.body)});
            } else if (p.filename.empty()) {
                body.json[p.name] = p.body;  // a text field
            } else {
                Throw(400, "bad_request", "unexpected file field '" + p.name + "'", p.name);
            }
        }
        return body;
    }
    if (media.starts_with("image/") || media == "application/octet-stream") {
        body.images.push_back({image_fields.empty() ? "image" : image_fields.front(), r.body});
        return body;
    }
    Throw(415, "unsupported_media_type",
          "Content-Type must be an image (image/jpeg, image/png), multipart/form-data or "
          "application/json, got '" + media + "'");
}

cv::Mat DecodeUpload(const Upload& u) {
    Result<cv::Mat> m = DecodeImage(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(u.bytes.data()), u.bytes.size()));
    if (!m.ok()) Throw(400, "invalid_image", u.field + ": " + m.status().message(), u.field);
    return std::move(*m);
}

bool QueryBool(const server::Request& r, const std::string& name, bool fallback) {
    const auto it = r.query.find(name);
    if (it == r.query.end()) return fallback;
    if (it->second == "true" || it->second == "1" || it->second.empty()) return true;
    if (it->second == "false" || it->second == "0") return false;
    Throw(400, "bad_request", name + " must be true or false", name);
}

int QueryInt(const server::Request& r, const std::string& name, int fallback, int lo, int hi) {
    const auto it = r.query.find(name);
    if (it == r.query.end()) return fallback;
    try {
        std::size_t used = 0;
        const long v = std::stol(it->second, &used);
        if (used == it->second.size() && v >= lo && v <= hi) return static_cast<int>(v);
    } catch (const std::exception&) {
    }
    Throw(400, "bad_request",
          name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", name);
}

Embedding ParseEmbedding(const nlohmann::json& j, const std::string& model_id, const std::string& field) {
    if (!j.is_array() || j.empty()) Throw(400, "invalid_embedding", field + " must be a non-empty array of numbers", field);
    if (j.size() > 4096) Throw(400, "invalid_embedding", field + " has more than 4096 values", field);
    Embedding e{model_id, {}};
    e.values.reserve(j.size());
    for (const auto& v : j) {
        if (!v.is_number()) Throw(400, "invalid_embedding", field + " must contain numbers only", field);
        e.values.push_back(v.get<float>());
    }
    if (!AllFinite(e.values)) Throw(400, "invalid_embedding", field + " has a non-finite value", field);
    if (L2Normalize(e.values) == 0) Throw(400, "invalid_embedding", field + " is all zeros", field);
    return e;
}

nlohmann::json BoxJson(const Rect2f& r) {
    return {{"x", r.x}, {"y", r.y}, {"width", r.width}, {"height", r.height}};
}

nlohmann::json FaceJson(const vision::Face& f) {
    nlohmann::json lm = nlohmann::json::array();
    for (const auto& p : f.detection.landmarks) lm.push_back({p.x, p.y});
    const vision::QualityReport& q = f.quality;
    return {{"box", BoxJson(f.detection.box)},
            {"score", f.detection.score},
            {"landmarks", lm},
            {"quality",
             {{"score", q.score},
              {"face_size_px", q.face_size_px},
              {"sharpness", q.sharpness},
              {"brightness", q.brightness},
              {"pose", {{"yaw", q.pose.yaw}, {"pitch", q.pose.pitch}, {"roll", q.pose.roll}}}}}};
}

nlohmann::json LivenessJson(const vision::LivenessResult& r) {
    return {{"score", r.score}, {"live", r.live}};
}

nlohmann::json AttributesJson(const vision::FaceAttributes& a) {
    nlohmann::json j = nlohmann::json::object();
    if (a.age) j["age"] = *a.age;
    if (a.male) j["gender"] = *a.male >= 0.5f ? "male" : "female";
    if (a.male) j["male"] = *a.male;
    if (a.eyes) j["eyes"] = {{"left_open", a.eyes->left_open}, {"right_open", a.eyes->right_open}, {"open", a.eyes->open()}};
    if (a.pose) j["pose"] = {{"yaw", a.pose->yaw}, {"pitch", a.pose->pitch}, {"roll", a.pose->roll}};
    return j;
}

}  // namespace fg::api
