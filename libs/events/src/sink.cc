// SPDX-License-Identifier: Apache-2.0
#include "fg/events/sink.h"

#include <set>

namespace fg::events {

Status FlushFor(Sink& sink, std::chrono::milliseconds timeout) {
    return sink.Flush(std::chrono::steady_clock::now() + timeout);
}

MultiSink::MultiSink(std::vector<std::unique_ptr<Sink>> children)
    : children_(std::move(children)) {}

Status MultiSink::Publish(const Event& event) {
    Status first;
    for (auto& c : children_) {
        Status s = c->Publish(event);
        if (!s.ok() && first.ok()) {
            first = s;
        }
    }
    return first;
}

Status MultiSink::Flush(Deadline deadline) {
    // Children share one deadline; a slow webhook cannot push the others past it.
    Status first;
    for (auto& c : children_) {
        Status s = c->Flush(deadline);
        if (!s.ok() && first.ok()) {
            first = s;
        }
    }
    return first;
}

SinkStats MultiSink::stats() const {
    SinkStats sum;
    for (const auto& c : children_) {
        const SinkStats s = c->stats();
        sum.published += s.published;
        sum.delivered += s.delivered;
        sum.dropped += s.dropped;
        sum.failed_attempts += s.failed_attempts;
    }
    return sum;
}

std::string MultiSink::name() const {
    std::string n = "multi(";
    for (size_t i = 0; i < children_.size(); ++i) {
        n += (i ? "," : "") + children_[i]->name();
    }
    return n + ")";
}

std::vector<std::pair<std::string, SinkStats>> MultiSink::child_stats() const {
    std::vector<std::pair<std::string, SinkStats>> out;
    for (const auto& c : children_) {
        out.emplace_back(c->name(), c->stats());
    }
    return out;
}

Status MemorySink::Publish(const Event& event) {
    std::lock_guard lock(mu_);
    events_.push_back(event);
    return Status::Ok();
}

Status MemorySink::Flush(Deadline /*deadline*/) { return Status::Ok(); }

SinkStats MemorySink::stats() const {
    std::lock_guard lock(mu_);
    const auto n = static_cast<std::uint64_t>(events_.size());
    return {n, n, 0, 0};
}

std::vector<Event> MemorySink::events() const {
    std::lock_guard lock(mu_);
    return events_;
}

namespace {

Status Bad(const std::string& where, const std::string& key, const std::string& what) {
    return InvalidArgument(where + "." + key + ": " + what);
}

Status CheckKeys(const nlohmann::json& j, const std::string& where,
                 const std::set<std::string>& allowed) {
    for (const auto& [key, value] : j.items()) {
        if (!allowed.count(key)) {
            return InvalidArgument(where + ": unknown key '" + key + "'");
        }
    }
    return Status::Ok();
}

Status ReadMs(const nlohmann::json& j, const std::string& where, const char* key,
              std::chrono::milliseconds& out, bool allow_zero = false) {
    auto it = j.find(key);
    if (it == j.end()) {
        return Status::Ok();
    }
    if (!it->is_number_integer() || it->get<std::int64_t>() < (allow_zero ? 0 : 1)) {
        return Bad(where, key, allow_zero ? "must be an integer >= 0" : "must be an integer >= 1");
    }
    out = std::chrono::milliseconds(it->get<std::int64_t>());
    return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Sink>> CreateSinkFromJson(const nlohmann::json& config,
                                                 const std::string& where) {
    if (!config.is_object()) {
        return InvalidArgument(where + ": must be an object");
    }
    auto type = config.find("type");
    if (type == config.end() || !type->is_string()) {
        return InvalidArgument(where + ".type: required, \"jsonl\" or \"webhook\"");
    }
    const std::string t = type->get<std::string>();
    if (t == "jsonl") {
        FG_RETURN_IF_ERROR(CheckKeys(config, where, {"type", "path"}));
        JsonLinesSinkConfig c;
        if (auto it = config.find("path"); it != config.end()) {
            if (!it->is_string()) {
                return Bad(where, "path", "must be a string (\"-\" for stdout)");
            }
            c.path = it->get<std::string>();
        }
        auto sink = CreateJsonLinesSink(c);
        if (!sink.ok()) {
            return sink.status().WithContext(where);
        }
        return sink;
    }
    if (t == "webhook") {
        FG_RETURN_IF_ERROR(CheckKeys(
            config, where,
            {"type", "url", "headers", "max_buffered", "connect_timeout_ms", "request_timeout_ms",
             "initial_backoff_ms", "max_backoff_ms", "backoff_multiplier", "max_attempts",
             "stop_timeout_ms", "request_deadline_ms", "max_response_bytes"}));
        WebhookSinkConfig c;
        auto url = config.find("url");
        if (url == config.end() || !url->is_string()) {
            return Bad(where, "url", "required string, e.g. \"http://host:8080/events\"");
        }
        c.url = url->get<std::string>();
        if (auto it = config.find("headers"); it != config.end()) {
            if (!it->is_object()) {
                return Bad(where, "headers", "must be an object of strings");
            }
            for (const auto& [k, v] : it->items()) {
                if (!v.is_string()) {
                    return Bad(where, "headers." + k, "must be a string");
                }
                c.headers.emplace_back(k, v.get<std::string>());
            }
        }
        if (auto it = config.find("max_buffered"); it != config.end()) {
            if (!it->is_number_integer() || it->get<std::int64_t>() < 1) {
                return Bad(where, "max_buffered", "must be an integer >= 1");
            }
            c.max_buffered = it->get<std::size_t>();
        }
        FG_RETURN_IF_ERROR(ReadMs(config, where, "connect_timeout_ms", c.connect_timeout));
        FG_RETURN_IF_ERROR(ReadMs(config, where, "request_timeout_ms", c.request_timeout));
        FG_RETURN_IF_ERROR(ReadMs(config, where, "request_deadline_ms", c.request_deadline));
        if (auto it = config.find("max_response_bytes"); it != config.end()) {
            if (!it->is_number_integer() || it->get<std::int64_t>() < 1) {
                return Bad(where, "max_response_bytes", "must be an integer >= 1");
            }
            c.max_response_bytes = it->get<std::size_t>();
        }
        FG_RETURN_IF_ERROR(ReadMs(config, where, "initial_backoff_ms", c.initial_backoff));
        FG_RETURN_IF_ERROR(ReadMs(config, where, "max_backoff_ms", c.max_backoff));
        FG_RETURN_IF_ERROR(ReadMs(config, where, "stop_timeout_ms", c.stop_timeout, true));
        if (auto it = config.find("backoff_multiplier"); it != config.end()) {
            if (!it->is_number()) {
                return Bad(where, "backoff_multiplier", "must be a number >= 1");
            }
            c.backoff_multiplier = it->get<double>();
        }
        if (auto it = config.find("max_attempts"); it != config.end()) {
            if (!it->is_number_integer() || it->get<std::int64_t>() < 0) {
                return Bad(where, "max_attempts", "must be an integer >= 0 (0 = unlimited)");
            }
            c.max_attempts = it->get<int>();
        }
        auto sink = CreateWebhookSink(c);
        if (!sink.ok()) {
            return sink.status().WithContext(where);
        }
        return sink;
    }
    return Bad(where, "type", "must be \"jsonl\" or \"webhook\", got \"" + t + "\"");
}

}  // namespace fg::events
