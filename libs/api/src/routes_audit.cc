// SPDX-License-Identifier: Apache-2.0
// GET /v1/audit (scope admin): the audit log, filtered and cursor paged, as `facegate audit`.
#include <algorithm>
#include <chrono>

#include "fg/audit/audit_log.h"
#include "http_util.h"
#include "routes.h"

namespace fg::api {
namespace {

using nlohmann::json;
using server::Request;
using server::Response;

std::string QueryText(const Request& r, const std::string& name) {
    const auto it = r.query.find(name);
    return it == r.query.end() ? "" : it->second;
}

std::int64_t Time(const Request& r, const std::string& name, std::int64_t now_ms) {
    Result<std::int64_t> t = audit::ParseTime(QueryText(r, name), now_ms);
    if (!t.ok()) Throw(400, "bad_request", name + ": " + t.status().message(), name);
    return *t;
}

Response ListAudit(ApiContext& ctx, Request& r) {
    if (!ctx.audit_log) Throw(409, "no_audit_log", "the service runs without an audit log (audit.file)");
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    audit::Query q;
    q.limit = QueryInt(r, "limit", ctx.options.default_page, 1, std::min(ctx.options.max_page, 1000));
    if (r.query.count("since")) q.since_ms = Time(r, "since", now);
    if (r.query.count("until")) q.until_ms = Time(r, "until", now);
    q.action = QueryText(r, "action");
    q.who = QueryText(r, "principal");
    if (const std::string after = QueryText(r, "after"); !after.empty()) {
        std::size_t used = 0;
        try {
            q.after_seq = std::stoll(after, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != after.size() || q.after_seq < 0) {
            Throw(400, "bad_request", "after must be the `next` of a previous page", "after");
        }
    }
    const audit::Page page = Value(ctx.audit_log->Find(q));
    json items = json::array();
    for (const auto& rec : page.records) items.push_back(audit::ToJson(rec));
    return Response::Json(200, {{"items", items},
                                {"next", page.next_after ? json(std::to_string(*page.next_after)) : json(nullptr)}});
}

}  // namespace

void AddAuditRoutes(server::Router& router, ApiContext& ctx) {
    router.Add("GET", "/v1/audit", {.scope = "admin"}, Guard([&ctx](Request& r) { return ListAudit(ctx, r); }));
}

}  // namespace fg::api
