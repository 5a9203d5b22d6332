// SPDX-License-Identifier: Apache-2.0
// The value types of http.h: principals, requests, responses, the router and config checks.
#include <algorithm>
#include <cctype>
#include <utility>

#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "fg/server/http.h"

namespace fg::server {

bool Principal::Has(std::string_view scope) const {
    return scopes.count("admin") > 0 || scopes.count(std::string(scope)) > 0;
}

namespace {
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::vector<std::string> SplitPath(std::string_view path) {
    std::vector<std::string> parts;
    if (!path.empty() && path.front() == '/') path.remove_prefix(1);
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = path.find('/', start);
        parts.emplace_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return parts;
}

bool IsParam(const std::string& part) { return part.size() > 2 && part.front() == '{' && part.back() == '}'; }

// Matches one route against the split path; fills params on success.
bool MatchParts(const std::vector<std::string>& pattern, const std::vector<std::string>& parts,
                std::map<std::string, std::string>* params) {
    if (pattern.size() != parts.size()) return false;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (IsParam(pattern[i])) {
            if (parts[i].empty()) return false;
        } else if (pattern[i] != parts[i]) {
            return false;
        }
    }
    if (params) {
        for (std::size_t i = 0; i < parts.size(); ++i) {
            if (IsParam(pattern[i])) (*params)[pattern[i].substr(1, pattern[i].size() - 2)] = parts[i];
        }
    }
    return true;
}
}  // namespace

std::string Request::Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (EqualsIgnoreCase(key, name)) return value;
    }
    return "";
}

Response Response::Json(int status, const nlohmann::json& body) {
    Response r;
    r.status = status;
    // Replace invalid UTF-8 rather than throw: a handler echoing user input must not 500.
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
}

Response Response::Error(int status, std::string code, std::string message, std::string field) {
    nlohmann::json error = {{"code", std::move(code)}, {"message", std::move(message)}};
    if (!field.empty()) error["field"] = std::move(field);
    return Json(status, {{"error", std::move(error)}});
}

Response Response::Stream(std::string content_type, std::function<void(std::shared_ptr<StreamWriter>)> start) {
    Response r;
    r.status = 200;
    r.content_type = std::move(content_type);
    r.stream = std::move(start);
    return r;
}

Response Response::Deferred(std::function<void(std::shared_ptr<Responder>)> start) {
    Response r;
    r.defer = std::move(start);
    return r;
}

void Router::Add(std::string method, std::string pattern, RouteOptions options, Handler handler) {
    Route route;
    route.parts = SplitPath(pattern);
    route.method = std::move(method);
    route.pattern = std::move(pattern);
    route.options = std::move(options);
    route.handler = std::move(handler);
    routes_.push_back(std::move(route));
}

std::vector<std::pair<std::string, std::string>> Router::Routes() const {
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(routes_.size());
    for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
    return out;
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
    Match match;
    const auto parts = SplitPath(path);
    // A literal route wins over a parameter route of the same shape ("/v1/streams/state" before
    // "/v1/streams/{id}") whatever the order of Add.
    const Route* best = nullptr;
    int best_literals = -1;
    for (const auto& route : routes_) {
        if (!MatchParts(route.parts, parts, nullptr)) continue;
        match.path_known = true;
        if (route.method != method) continue;
        const int literals = static_cast<int>(std::count_if(route.parts.begin(), route.parts.end(),
                                                            [](const std::string& p) { return !IsParam(p); }));
        if (literals > best_literals) {
            best = &route;
            best_literals = literals;
        }
    }
    if (best) {
        MatchParts(best->parts, parts, &match.params);
        match.handler = &best->handler;
        match.options = &best->options;
        match.pattern = best->pattern;
    }
    return match;
}

std::vector<std::string> Router::AllowedMethods(std::string_view path) const {
    std::vector<std::string> methods;
    const auto parts = SplitPath(path);
    for (const auto& route : routes_) {
        if (MatchParts(route.parts, parts, nullptr) &&
            std::find(methods.begin(), methods.end(), route.method) == methods.end()) {
            methods.push_back(route.method);
        }
    }
    std::sort(methods.begin(), methods.end());
    return methods;
}

Status ServerConfig::Validate() const {
    boost::system::error_code ec;
    boost::asio::ip::make_address(listen_address, ec);
    if (ec) return InvalidArgument("listen_address: not an IP address: '" + listen_address + "'");
    if (port < 0 || port > 65535) return InvalidArgument("port: must be 0..65535");
    if (io_threads < 1 || io_threads > 64) return InvalidArgument("io_threads: must be 1..64");
    if (compute_threads < 1 || compute_threads > 256) return InvalidArgument("compute_threads: must be 1..256");
    if (compute_queue < 0) return InvalidArgument("compute_queue: must be >= 0");
    if (max_header_bytes < 1024) return InvalidArgument("max_header_bytes: must be >= 1024");
    if (max_body_bytes < 1) return InvalidArgument("max_body_bytes: must be >= 1");
    for (const auto& [name, value] : {std::pair{"header_timeout", header_timeout}, {"body_timeout", body_timeout},
                                      {"idle_timeout", idle_timeout}, {"write_timeout", write_timeout}}) {
        if (value.count() <= 0) return InvalidArgument(std::string(name) + ": must be > 0 ms");
    }
    if (max_connections < 1) return InvalidArgument("max_connections: must be >= 1");
    if (stream_queue_bytes < 1024) return InvalidArgument("stream_queue_bytes: must be >= 1024");
    for (const auto& origin : cors_origins) {
        if (origin.empty()) return InvalidArgument("cors_origins: empty origin");
    }
    if (rate_limit_per_key < 0) return InvalidArgument("rate_limit_per_key: must be >= 0");
    if (tls && (tls->cert_file.empty() || tls->key_file.empty())) {
        return InvalidArgument("tls: cert_file and key_file are both required");
    }
    return Status::Ok();
}

}  // namespace fg::server
