// SPDX-License-Identifier: Apache-2.0
#include "fg/api/serve_config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace fg::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// Reads one section's keys; unknown keys and wrong types are errors naming "section.key".
class Section {
  public:
    Section(const json& top, std::string name) : name_(std::move(name)) {
        if (top.contains(name_)) j_ = top.at(name_);
    }
    Status Check(const std::set<std::string>& known) const {
        if (j_.is_null()) return Status::Ok();
        if (!j_.is_object()) return InvalidArgument(name_ + " must be an object");
        for (auto it = j_.begin(); it != j_.end(); ++it) {
            if (!known.count(it.key())) return InvalidArgument("unknown option " + name_ + "." + it.key());
        }
        return Status::Ok();
    }
    bool Has(const std::string& k) const { return j_.is_object() && j_.contains(k) && !j_.at(k).is_null(); }
    std::string Path(const std::string& k) const { return name_ + "." + k; }
    Status Str(const std::string& k, std::string& out) const {
        if (!Has(k)) return Status::Ok();
        if (!j_.at(k).is_string()) return InvalidArgument(Path(k) + " must be a string");
        out = j_.at(k).get<std::string>();
        return Status::Ok();
    }
    Status File(const std::string& k, std::string& out, const fs::path& base) const {
        FG_RETURN_IF_ERROR(Str(k, out));
        if (!out.empty() && fs::path(out).is_relative()) out = (base / out).lexically_normal().string();
        return Status::Ok();
    }
    Status Bool(const std::string& k, bool& out) const {
        if (!Has(k)) return Status::Ok();
        if (!j_.at(k).is_boolean()) return InvalidArgument(Path(k) + " must be true or false");
        out = j_.at(k).get<bool>();
        return Status::Ok();
    }
    template <typename T>
    Status Int(const std::string& k, T& out, long long lo, long long hi) const {
        if (!Has(k)) return Status::Ok();
        if (!j_.at(k).is_number_integer()) return InvalidArgument(Path(k) + " must be an integer");
        const long long v = j_.at(k).get<long long>();
        if (v < lo || v > hi) {
            return InvalidArgument(Path(k) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                   "], got " + std::to_string(v));
        }
        out = static_cast<T>(v);
        return Status::Ok();
    }
    template <typename T>
    Status Num(const std::string& k, T& out, double lo, double hi) const {
        if (!Has(k)) return Status::Ok();
        if (!j_.at(k).is_number()) return InvalidArgument(Path(k) + " must be a number");
        const double v = j_.at(k).get<double>();
        if (!(v >= lo && v <= hi)) {
            std::ostringstream os;
            os << Path(k) << " must be in [" << lo << ", " << hi << "], got " << v;
            return InvalidArgument(os.str());
        }
        out = static_cast<T>(v);
        return Status::Ok();
    }
    Status Ms(const std::string& k, std::chrono::milliseconds& out, long long lo, long long hi) const {
        long long v = out.count();
        FG_RETURN_IF_ERROR(Int(k, v, lo, hi));
        out = std::chrono::milliseconds(v);
        return Status::Ok();
    }
    Status Strings(const std::string& k, std::vector<std::string>& out) const {
        if (!Has(k)) return Status::Ok();
        const json& v = j_.at(k);
        if (!v.is_array()) return InvalidArgument(Path(k) + " must be a list of strings");
        out.clear();
        for (const auto& s : v) {
            if (!s.is_string()) return InvalidArgument(Path(k) + " must be a list of strings");
            out.push_back(s.get<std::string>());
        }
        return Status::Ok();
    }

  private:
    std::string name_;
    json j_;
};

const std::set<std::string> kServeSections = {"listen", "tls", "threads", "limits", "cors",
                                              "rate_limit", "auth", "audit", "api", "cluster"};

// The bus's routing-token rule (bus::ValidToken), restated so the config (and its fuzzer) stays
// free of the bus library: 1..64 of [A-Za-z0-9_-].
bool IsToken(const std::string& t) {
    if (t.empty() || t.size() > 64) return false;
    return std::all_of(t.begin(), t.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

// cluster.bus: what cluster::ConnectBus accepts (nats://... or kafka://...), checked up front so
// `config check` catches it rather than a retry loop at run time.
Status CheckBusUrl(const std::string& url) {
    for (const std::string_view scheme : {"nats://", "kafka://"}) {
        if (!url.starts_with(scheme)) continue;
        std::stringstream rest(url.substr(scheme.size()));
        int addresses = 0;
        for (std::string a; std::getline(rest, a, ',');) {
            if (a.starts_with("nats://")) a = a.substr(7);  // NATS lists repeat the scheme
            if (a.empty() || a.find_first_of(" \t/") != std::string::npos) {
                return InvalidArgument("cluster.bus: '" + a + "' is not host:port");
            }
            ++addresses;
        }
        if (addresses == 0) return InvalidArgument("cluster.bus: no address after " + std::string(scheme));
        return Status::Ok();
    }
    return InvalidArgument("cluster.bus must start with nats:// or kafka://");
}

Result<std::optional<ServeClusterConfig>> ParseCluster(const json& top) {
    Section cluster(top, "cluster");
    FG_RETURN_IF_ERROR(cluster.Check({"bus", "regions", "group", "status_interval_s", "workers_group", "replicas"}));
    if (!top.contains("cluster") || top.at("cluster").is_null()) return std::optional<ServeClusterConfig>();
    ServeClusterConfig c;
    FG_RETURN_IF_ERROR(cluster.Str("bus", c.bus));
    if (c.bus.empty()) return InvalidArgument("cluster.bus is required (nats://host:port or kafka://host:port)");
    FG_RETURN_IF_ERROR(CheckBusUrl(c.bus));
    FG_RETURN_IF_ERROR(cluster.Strings("regions", c.regions));
    if (c.regions.empty()) return InvalidArgument("cluster.regions must name at least one region");
    std::set<std::string> seen;
    for (const std::string& r : c.regions) {
        if (!IsToken(r)) {
            return InvalidArgument("cluster.regions: '" + r + "' is not a region (1..64 of A-Z a-z 0-9 _ -)");
        }
        if (!seen.insert(r).second) return InvalidArgument("cluster.regions: '" + r + "' is listed twice");
    }
    FG_RETURN_IF_ERROR(cluster.Str("group", c.group));
    if (!IsToken(c.group)) {
        return InvalidArgument("cluster.group: '" + c.group + "' is not a group name (1..64 of A-Z a-z 0-9 _ -)");
    }
    // Up to a day: a longer gap would make the status-age alert meaningless anyway.
    FG_RETURN_IF_ERROR(cluster.Int("status_interval_s", c.status_interval_s, 0, 86400));
    FG_RETURN_IF_ERROR(cluster.Str("workers_group", c.workers_group));
    if (!IsToken(c.workers_group)) {
        return InvalidArgument("cluster.workers_group: '" + c.workers_group +
                               "' is not a group name (1..64 of A-Z a-z 0-9 _ -)");
    }
    FG_RETURN_IF_ERROR(cluster.Int("replicas", c.replicas, 1, 64));
    return std::optional<ServeClusterConfig>(std::move(c));
}

// "nats://user:secret@host:4222" -> "nats://***@host:4222": the summary may be printed or logged.
std::string MaskUserInfo(std::string url) {
    for (std::size_t at = url.find('@'); at != std::string::npos; at = url.find('@', at + 1)) {
        const std::size_t start = url.rfind("://", at);
        const std::size_t comma = url.rfind(',', at);
        const std::size_t from = start != std::string::npos && (comma == std::string::npos || start > comma)
                                     ? start + 3 : (comma == std::string::npos ? 0 : comma + 1);
        url.replace(from, at - from, "***");
        at = from + 3;
    }
    return url;
}

Status ApplyEnv(json& j, const GetEnv& getenv) {
    for (const ServeEnvVar& v : ServeEnvVars()) {
        const char* raw = getenv(v.name.c_str());
        if (raw == nullptr) continue;
        const std::string text = raw;
        json value;
        if (v.type == "string") {
            value = text;
        } else if (v.type == "path") {
            value = text.empty() ? text : fs::absolute(text).lexically_normal().string();
        } else if (v.type == "integer") {
            try {
                std::size_t used = 0;
                value = std::stoll(text, &used);
                if (used != text.size()) throw std::invalid_argument(text);
            } catch (const std::exception&) {
                return InvalidArgument(v.name + " must be an integer (" + v.field + "), got '" + text + "'");
            }
        } else if (v.type == "number") {
            try {
                std::size_t used = 0;
                value = std::stod(text, &used);
                if (used != text.size()) throw std::invalid_argument(text);
            } catch (const std::exception&) {
                return InvalidArgument(v.name + " must be a number (" + v.field + "), got '" + text + "'");
            }
        } else if (v.type == "boolean") {
            if (text != "true" && text != "false" && text != "1" && text != "0") {
                return InvalidArgument(v.name + " must be true or false (" + v.field + "), got '" + text + "'");
            }
            value = text == "true" || text == "1";
        } else {  // list
            value = json::array();
            std::stringstream ss(text);
            for (std::string item; std::getline(ss, item, ',');) {
                if (!item.empty()) value.push_back(item);
            }
        }
        const std::size_t dot = v.field.find('.');
        const std::string section = v.field.substr(0, dot), key = v.field.substr(dot + 1);
        if (!j.contains(section) || !j[section].is_object()) j[section] = json::object();
        j[section][key] = value;
    }
    return Status::Ok();
}

}  // namespace

const std::vector<ServeEnvVar>& ServeEnvVars() {
    static const std::vector<ServeEnvVar> vars = {
        {"FG_SERVE_LISTEN_ADDRESS", "listen.address", "string"},
        {"FG_SERVE_LISTEN_PORT", "listen.port", "integer"},
        {"FG_SERVE_TLS_CERT_FILE", "tls.cert_file", "path"},
        {"FG_SERVE_TLS_KEY_FILE", "tls.key_file", "path"},
        {"FG_SERVE_IO_THREADS", "threads.io", "integer"},
        {"FG_SERVE_COMPUTE_THREADS", "threads.compute", "integer"},
        {"FG_SERVE_COMPUTE_QUEUE", "threads.compute_queue", "integer"},
        {"FG_SERVE_MAX_BODY_BYTES", "limits.max_body_bytes", "integer"},
        {"FG_SERVE_CORS_ORIGINS", "cors.origins", "list"},
        {"FG_SERVE_RATE_LIMIT_PER_KEY", "rate_limit.per_key", "number"},
        {"FG_SERVE_KEYS_FILE", "auth.keys_file", "path"},
        {"FG_SERVE_AUDIT_FILE", "audit.file", "path"},
        {"FG_SERVE_AUDIT_KEY_FILE", "audit.key_file", "path"},
        {"FG_SERVE_GALLERY_DB", "gallery.db", "string"},
        {"FG_SERVE_GALLERY_KEY_FILE", "gallery.key_file", "path"},
        {"FG_SERVE_ENGINE_PACK", "engine.pack", "string"},
        {"FG_SERVE_ENGINE_BACKEND", "engine.backend", "string"},
        {"FG_SERVE_ENGINE_THREADS", "engine.threads", "integer"},
        {"FG_SERVE_EVENTS_BACKLOG", "api.events_backlog", "integer"},
        {"FG_SERVE_VERIFY_THRESHOLD", "api.verify_threshold", "number"},
        {"FG_SERVE_CLUSTER_BUS", "cluster.bus", "string"},
        {"FG_SERVE_CLUSTER_REGIONS", "cluster.regions", "list"},
        {"FG_SERVE_CLUSTER_GROUP", "cluster.group", "string"},
        {"FG_SERVE_CLUSTER_STATUS_INTERVAL_S", "cluster.status_interval_s", "integer"},
        {"FG_SERVE_CLUSTER_WORKERS_GROUP", "cluster.workers_group", "string"},
        {"FG_SERVE_CLUSTER_REPLICAS", "cluster.replicas", "integer"},
    };
    return vars;
}

Result<ServeConfig> ParseServeConfig(json j, const fs::path& base, const GetEnv& getenv) {
    if (j.is_null()) j = json::object();
    if (!j.is_object()) return InvalidArgument("the serve config must be a JSON object");
    FG_RETURN_IF_ERROR(ApplyEnv(j, getenv));
    ServeConfig c;
    server::ServerConfig& s = c.server;

    Section listen(j, "listen");
    FG_RETURN_IF_ERROR(listen.Check({"address", "port"}));
    FG_RETURN_IF_ERROR(listen.Str("address", s.listen_address));
    if (s.listen_address.empty()) return InvalidArgument("listen.address must not be empty");
    FG_RETURN_IF_ERROR(listen.Int("port", s.port, 0, 65535));

    Section tls(j, "tls");
    FG_RETURN_IF_ERROR(tls.Check({"cert_file", "key_file"}));
    server::TlsConfig t;
    FG_RETURN_IF_ERROR(tls.File("cert_file", t.cert_file, base));
    FG_RETURN_IF_ERROR(tls.File("key_file", t.key_file, base));
    if (t.cert_file.empty() != t.key_file.empty()) {
        return InvalidArgument(t.cert_file.empty() ? "tls.cert_file is required with tls.key_file"
                                                   : "tls.key_file is required with tls.cert_file");
    }
    if (!t.cert_file.empty()) s.tls = t;

    Section threads(j, "threads");
    FG_RETURN_IF_ERROR(threads.Check({"io", "compute", "compute_queue"}));
    FG_RETURN_IF_ERROR(threads.Int("io", s.io_threads, 1, 64));
    FG_RETURN_IF_ERROR(threads.Int("compute", s.compute_threads, 1, 256));
    FG_RETURN_IF_ERROR(threads.Int("compute_queue", s.compute_queue, 0, 100000));

    constexpr long long kDay = 86'400'000;
    Section limits(j, "limits");
    FG_RETURN_IF_ERROR(limits.Check({"max_body_bytes", "max_header_bytes", "header_timeout_ms",
                                     "body_timeout_ms", "idle_timeout_ms", "write_timeout_ms",
                                     "max_connections", "stream_queue_bytes", "max_faces", "max_images",
                                     "max_page", "max_sse_clients", "max_mjpeg_clients"}));
    FG_RETURN_IF_ERROR(limits.Int("max_body_bytes", s.max_body_bytes, 1024, 1ll << 32));
    FG_RETURN_IF_ERROR(limits.Int("max_header_bytes", s.max_header_bytes, 1024, 1 << 20));
    FG_RETURN_IF_ERROR(limits.Ms("header_timeout_ms", s.header_timeout, 100, kDay));
    FG_RETURN_IF_ERROR(limits.Ms("body_timeout_ms", s.body_timeout, 100, kDay));
    FG_RETURN_IF_ERROR(limits.Ms("idle_timeout_ms", s.idle_timeout, 100, kDay));
    FG_RETURN_IF_ERROR(limits.Ms("write_timeout_ms", s.write_timeout, 100, kDay));
    FG_RETURN_IF_ERROR(limits.Int("max_connections", s.max_connections, 1, 1'000'000));
    FG_RETURN_IF_ERROR(limits.Int("stream_queue_bytes", s.stream_queue_bytes, 4096, 1ll << 32));
    FG_RETURN_IF_ERROR(limits.Int("max_faces", c.api.max_faces, 1, 1000));
    FG_RETURN_IF_ERROR(limits.Int("max_images", c.api.max_images, 1, 100));
    FG_RETURN_IF_ERROR(limits.Int("max_page", c.api.max_page, 1, 100000));
    FG_RETURN_IF_ERROR(limits.Int("max_sse_clients", c.api.max_sse_clients, 1, 100000));
    FG_RETURN_IF_ERROR(limits.Int("max_mjpeg_clients", c.api.max_mjpeg_clients, 1, 10000));
    c.api.default_page = std::min(c.api.default_page, c.api.max_page);

    Section cors(j, "cors");
    FG_RETURN_IF_ERROR(cors.Check({"origins"}));
    FG_RETURN_IF_ERROR(cors.Strings("origins", s.cors_origins));
    Section rate(j, "rate_limit");
    FG_RETURN_IF_ERROR(rate.Check({"per_key"}));
    FG_RETURN_IF_ERROR(rate.Num("per_key", s.rate_limit_per_key, 0.0, 1e6));

    Section auth(j, "auth");
    FG_RETURN_IF_ERROR(auth.Check({"keys_file"}));
    FG_RETURN_IF_ERROR(auth.File("keys_file", c.keys_file, base));
    Section audit(j, "audit");
    FG_RETURN_IF_ERROR(audit.Check({"file", "key_file"}));
    FG_RETURN_IF_ERROR(audit.File("file", c.audit_file, base));
    FG_RETURN_IF_ERROR(audit.File("key_file", c.audit_key_file, base));

    Section api(j, "api");
    FG_RETURN_IF_ERROR(api.Check({"top_k", "enroll_gate", "verify_threshold", "events_backlog",
                                  "heartbeat_ms", "mjpeg_fps", "liveness_preset", "liveness_threshold"}));
    FG_RETURN_IF_ERROR(api.Int("top_k", c.api.top_k, 1, 100));
    FG_RETURN_IF_ERROR(api.Bool("enroll_gate", c.api.enroll_gate));
    FG_RETURN_IF_ERROR(api.Num("verify_threshold", c.api.verify_threshold, 0.0, 1.0));
    FG_RETURN_IF_ERROR(api.Int("events_backlog", c.events_backlog, 1, 1'000'000));
    FG_RETURN_IF_ERROR(api.Ms("heartbeat_ms", c.api.heartbeat, 100, kDay));
    FG_RETURN_IF_ERROR(api.Num("mjpeg_fps", c.api.mjpeg_fps, 0.1, 60.0));
    FG_RETURN_IF_ERROR(api.Str("liveness_preset", c.api.liveness_preset));
    FG_RETURN_IF_ERROR(api.Num("liveness_threshold", c.api.liveness_threshold, 0.0, 1.0));
    c.api.base_dir = base;
    FG_ASSIGN_OR_RETURN(c.cluster, ParseCluster(j));

    // The rest is a `facegate run` file, streams optional (the API adds them).
    json run = json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (!kServeSections.count(it.key())) run[it.key()] = it.value();
    }
    const bool sinks_given = run.contains("events") && run["events"].is_object() && run["events"].contains("sinks");
    FG_ASSIGN_OR_RETURN(c.run, pipeline::ParseRunConfig(run, base, /*require_streams=*/false));
    if (!sinks_given) c.run.sinks = json::array();  // events go to the API's hub only
    if (run.contains("streams")) {
        for (const auto& sj : run["streams"]) c.stream_specs[sj.at("id").get<std::string>()] = sj;
    }
    FG_RETURN_IF_ERROR(s.Validate());
    return c;
}

Result<ServeConfig> LoadServeConfig(const fs::path& file, const GetEnv& getenv) {
    if (file.empty()) return ParseServeConfig(json::object(), fs::current_path(), getenv);
    std::ifstream in(file);
    if (!in) return NotFound("cannot read config file " + file.string());
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
    if (j.is_discarded()) return InvalidArgument("config file " + file.string() + " is not valid JSON");
    Result<ServeConfig> c = ParseServeConfig(std::move(j), fs::absolute(file).parent_path(), getenv);
    if (!c.ok()) return c.status().WithContext(file.string());
    return c;
}

json ServeConfigSummary(const ServeConfig& c) {
    const server::ServerConfig& s = c.server;
    json streams = json::array();
    for (const auto& sp : c.run.pipeline.streams) streams.push_back(sp.source.id);
    return {{"listen", {{"address", s.listen_address}, {"port", s.port}}},
            {"tls", s.tls ? json{{"cert_file", s.tls->cert_file}, {"key_file", s.tls->key_file}} : json(nullptr)},
            {"threads", {{"io", s.io_threads}, {"compute", s.compute_threads}, {"compute_queue", s.compute_queue}}},
            {"limits", {{"max_body_bytes", s.max_body_bytes}, {"max_connections", s.max_connections},
                        {"max_faces", c.api.max_faces}}},
            {"cors", {{"origins", s.cors_origins}}},
            {"rate_limit", {{"per_key", s.rate_limit_per_key}}},
            {"auth", {{"keys_file", c.keys_file}}},
            {"audit", {{"file", c.audit_file}}},
            {"api", {{"events_backlog", c.events_backlog}, {"top_k", c.api.top_k}}},
            {"engine", {{"pack", c.run.engine.pack}, {"backend", c.run.engine.backend}}},
            {"gallery", {{"db", c.run.gallery.db}}},
            {"streams", streams},
            {"sinks", c.run.sinks.size()},
            {"cluster", c.cluster ? json{{"bus", MaskUserInfo(c.cluster->bus)},
                                         {"regions", c.cluster->regions},
                                         {"group", c.cluster->group},
                                         {"status_interval_s", c.cluster->status_interval_s},
                                         {"workers_group", c.cluster->workers_group},
                                         {"replicas", c.cluster->replicas}}
                                  : json(nullptr)}};
}

}  // namespace fg::api
