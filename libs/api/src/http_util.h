// SPDX-License-Identifier: Apache-2.0
// Internal to fg::api: errors, request bodies (raw image, multipart, JSON with base64) and the
// JSON form of faces. Handlers report a caller's mistake by throwing ApiError; Guard turns it
// into the JSON error response, so every path out of a handler is one line and no mistake
// can escape as a 500.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "fg/api/multipart.h"
#include "fg/base/status.h"
#include "fg/core/embedding.h"
#include "fg/server/http.h"
#include "fg/vision/engine.h"

namespace fg::api {

struct ApiError : std::runtime_error {
    ApiError(int status, std::string code, std::string message, std::string field = "")
        : std::runtime_error(message), status(status), code(std::move(code)), field(std::move(field)) {}
    int status;
    std::string code;
    std::string field;
};

[[noreturn]] void Throw(int status, std::string code, std::string message, std::string field = "");
/// Maps a Status to the HTTP error: InvalidArgument 400 bad_request, NotFound 404 not_found,
/// AlreadyExists 409 conflict, FailedPrecondition 409 conflict, ResourceExhausted/Unavailable
/// 503 unavailable, others 500 internal.
[[noreturn]] void ThrowStatus(const Status& status, std::string field = "");
#define FG_API_CHECK(expr, field)                          \
    do {                                                   \
        const ::fg::Status fg_api_s_ = (expr);              \
        if (!fg_api_s_.ok()) ::fg::api::ThrowStatus(fg_api_s_, field); \
    } while (0)
template <typename T>
T Value(Result<T> r, std::string field = "") {
    if (!r.ok()) ThrowStatus(r.status(), std::move(field));
    return std::move(*r);
}

/// Wraps a handler: ApiError -> its JSON error; any other exception -> 500 internal (logged).
server::Handler Guard(std::function<server::Response(server::Request&)> handler);

/// The request body as JSON (400 invalid_json; 415 unless the Content-Type is JSON).
nlohmann::json JsonBody(const server::Request& r, bool required = true);

/// An uploaded image by its field name ("image" for a raw body).
struct Upload {
    std::string field;
    std::string bytes;
};
/// Images and other fields of an image-carrying request: a raw image body (image/jpeg, image/png,
/// image/*, application/octet-stream), multipart/form-data (file fields and text fields), or JSON
/// (string fields are base64 images when listed in `image_fields`; the rest in `json`).
struct Body {
    std::vector<Upload> images;
    nlohmann::json json = nlohmann::json::object();  ///< JSON body, or multipart text fields
    bool is_json = false;
};
Body ParseBody(const server::Request& r, const std::vector<std::string>& image_fields);
/// Decodes an upload through the guarded decoder (400 invalid_image naming the field).
cv::Mat DecodeUpload(const Upload& u);
/// Standard base64 (a "data:...;base64," prefix is accepted); 400 invalid_base64 naming `field`.
std::string DecodeBase64(const std::string& text, const std::string& field);

/// ?name=true|false|1|0 (400 naming the parameter otherwise).
bool QueryBool(const server::Request& r, const std::string& name, bool fallback = false);
int QueryInt(const server::Request& r, const std::string& name, int fallback, int lo, int hi);

/// A JSON array of numbers -> unit embedding tagged `model_id`; 400 naming `field` when not
/// numbers, empty, non-finite or zero.
Embedding ParseEmbedding(const nlohmann::json& j, const std::string& model_id, const std::string& field);

nlohmann::json BoxJson(const Rect2f& r);
nlohmann::json FaceJson(const vision::Face& f);  ///< box, score, landmarks, quality
nlohmann::json LivenessJson(const vision::LivenessResult& r);
nlohmann::json AttributesJson(const vision::FaceAttributes& a);

}  // namespace fg::api
