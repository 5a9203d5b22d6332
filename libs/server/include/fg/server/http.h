// SPDX-License-Identifier: Apache-2.0
// The HTTP server of `facegate serve`: Boost.Beast on Asio, a small fixed pool of IO threads
// (asynchronous: 256 keep-alive connections and 100 SSE subscribers cost sockets, not threads)
// and a separate bounded pool for handlers that compute (inference), which answers 503 with
// Retry-After when full instead of queueing without bound. JSON errors, size limits, timeouts
// for slow clients, CORS, API-key authentication with scopes, per-key rate limits, optional TLS.
//
//   fg::server::Router router;
//   router.Add("GET", "/v1/subjects/{id}", {.scope = "read"}, [](fg::server::Request& r) {
//       return fg::server::Response::Json(200, {{"id", r.params.at("id")}});
//   });
//   auto server = fg::server::Server::Create(config, std::move(router));
//   (*server)->Start();   // returns once listening; (*server)->port() is the bound port
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "fg/base/status.h"

namespace fg::server {

/// Who made a request (set by the authenticator before the handler runs).
struct Principal {
    std::string key_id;            ///< "" = anonymous (public routes only)
    std::string name;              ///< the key's label, for logs and the audit log
    std::set<std::string> scopes;  ///< admin, enroll, recognize, events, read
    bool Has(std::string_view scope) const;  ///< admin has every scope
};

struct Request {
    std::string method;                          ///< "GET", "POST", ...
    std::string target;                          ///< as sent: path and query
    std::string path;                            ///< percent-decoded path, no query
    std::map<std::string, std::string> query;    ///< decoded query parameters (last one wins)
    std::map<std::string, std::string> params;   ///< path parameters of the route ("{id}")
    std::string body;
    std::string remote;                          ///< peer address
    Principal principal;
    /// Header value by case-insensitive name; "" when absent.
    std::string Header(std::string_view name) const;
    std::vector<std::pair<std::string, std::string>> headers;
};

/// A long-lived response body (SSE, MJPEG). Thread-safe: Write may be called from any thread.
class StreamWriter {
  public:
    virtual ~StreamWriter() = default;
    /// Queues bytes for the client. False once the client is gone or too slow (its bounded
    /// queue is full: the connection is closed rather than letting memory grow); the producer
    /// then drops its reference.
    virtual bool Write(std::string bytes) = 0;
    virtual bool Open() const = 0;
    /// Ends the response and closes the connection.
    virtual void Close() = 0;
};

class Responder;

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    /// Set for a streaming response: called once the headers are sent, on an IO thread; it
    /// keeps the writer and writes from wherever it likes (an event subscription, a timer).
    std::function<void(std::shared_ptr<StreamWriter>)> stream;
    /// Set for a deferred response: called once, on the thread that ran the handler, with the
    /// Responder that sends the real response later, from any thread (e.g. once the request's
    /// audit record is durable). No thread waits meanwhile, and the connection reads no next
    /// request until that response is written.
    std::function<void(std::shared_ptr<Responder>)> defer;

    static Response Json(int status, const nlohmann::json& body);
    /// {"error": {"code": code, "message": message, "field": field}} (field omitted when "").
    /// Codes are stable identifiers (docs/api.md): bad_request, invalid_json, unauthorized,
    /// forbidden, not_found, payload_too_large, unsupported_media_type, rate_limited,
    /// overloaded, ...
    static Response Error(int status, std::string code, std::string message, std::string field = "");
    /// A streaming response (e.g. "text/event-stream").
    static Response Stream(std::string content_type, std::function<void(std::shared_ptr<StreamWriter>)> start);
    /// A response sent later through the Responder given to `start`.
    static Response Deferred(std::function<void(std::shared_ptr<Responder>)> start);
};

/// The other half of a deferred response. Thread-safe. Send is called once, from any thread;
/// later calls are ignored. A Responder dropped without Send answers 500 `internal`. When the
/// client or the server is gone by then, the response is dropped.
class Responder {
  public:
    virtual ~Responder() = default;
    virtual void Send(Response response) = 0;
};

using Handler = std::function<Response(Request&)>;

struct RouteOptions {
    std::string scope;            ///< required scope; "" = public (no key needed)
    bool compute = false;         ///< runs on the bounded compute pool (503 when full)
    /// For a compute route: true when this request is cheap and bounded (an identify carrying an
    /// embedding, not an image), so it runs inline on the IO thread instead of queueing behind
    /// image work. Called on the IO thread after authentication; must be fast and not throw.
    std::function<bool(const Request&)> inline_if;
    std::string name;             ///< route label for metrics ("" = the pattern)
};

/// Method + path pattern ("/v1/subjects/{id}/faces") to handler. Not thread-safe while being
/// built; immutable once given to the server.
class Router {
  public:
    void Add(std::string method, std::string pattern, RouteOptions options, Handler handler);
    /// Every (method, pattern) added, for checking against the OpenAPI file.
    std::vector<std::pair<std::string, std::string>> Routes() const;

    struct Match {
        const Handler* handler = nullptr;
        const RouteOptions* options = nullptr;
        std::string pattern;
        std::map<std::string, std::string> params;
        bool path_known = false;  ///< the path matched some route (405 rather than 404)
    };
    /// A literal segment beats a "{param}" one when two routes match ("/v1/streams/state" wins
    /// over "/v1/streams/{id}"). Parameters cannot contain '/' (the path is decoded first).
    Match Find(std::string_view method, std::string_view path) const;
    /// Methods of every route matching `path`, sorted (the Allow header of a 405 or OPTIONS).
    std::vector<std::string> AllowedMethods(std::string_view path) const;

  private:
    struct Route {
        std::string method;
        std::string pattern;
        std::vector<std::string> parts;  // "{x}" = parameter
        RouteOptions options;
        Handler handler;
    };
    std::vector<Route> routes_;
};

struct TlsConfig {
    std::string cert_file;  ///< PEM certificate chain
    std::string key_file;   ///< PEM private key
};

struct ServerConfig {
    std::string listen_address = "127.0.0.1";
    int port = 8080;                       ///< 0 = any free port (see Server::port())
    int io_threads = 2;
    int compute_threads = 2;
    int compute_queue = 16;                ///< waiting compute requests beyond the threads: 503 past it
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_body_bytes = 16 * 1024 * 1024;
    std::chrono::milliseconds header_timeout{10000};  ///< slowloris: the request head must arrive in time
    std::chrono::milliseconds body_timeout{30000};
    std::chrono::milliseconds idle_timeout{60000};    ///< keep-alive connection with no request
    std::chrono::milliseconds write_timeout{30000};
    int max_connections = 1024;
    std::size_t stream_queue_bytes = 4 * 1024 * 1024;  ///< per streaming client before it is cut off
    std::vector<std::string> cors_origins;  ///< allowed origins; "*" = any; empty = no CORS headers
    double rate_limit_per_key = 0;          ///< requests per second per key (burst = 2 s); 0 = off
    std::optional<TlsConfig> tls;
    Status Validate() const;
};

/// Decides who a request comes from: Bearer token or X-API-Key. Returns an anonymous principal
/// when the request carries no key, Unauthenticated for a wrong key. Called on every request;
/// on a route with a scope an error answers 401 (403 for PermissionDenied, 503 for Unavailable
/// or Internal: the key store failed); on a public route the request goes on anonymously.
using Authenticator = std::function<Result<Principal>(const Request&)>;

/// Called after every response (route label, status, seconds): metrics.
using RequestObserver = std::function<void(const std::string& route, int status, double seconds)>;

/// Thread-safety: Start/Stop from one thread; port() and stats from any.
class Server {
  public:
    static Result<std::unique_ptr<Server>> Create(ServerConfig config, Router router,
                                                  Authenticator auth = nullptr,
                                                  RequestObserver observer = nullptr);
    virtual ~Server() = default;
    /// Binds and starts the IO and compute threads. Errors: the address is in use, TLS files.
    virtual Status Start() = 0;
    /// Stops accepting, closes connections (streams end), joins the threads. Idempotent.
    virtual void Stop() = 0;
    virtual int port() const = 0;
    virtual std::size_t open_connections() const = 0;
    virtual std::size_t compute_queue_depth() const = 0;
    /// Seconds the compute threads spent running handlers since Start (for utilisation metrics).
    virtual double compute_busy_seconds() const = 0;
};

}  // namespace fg::server
