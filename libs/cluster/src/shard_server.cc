// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/shard_server.h"

#include <algorithm>
#include <future>
#include <thread>

#include <spdlog/spdlog.h>

namespace fg::cluster {
namespace {

std::string CodeName(StatusCode c) {
    switch (c) {
        case StatusCode::kInvalidArgument: return "invalid_argument";
        case StatusCode::kFailedPrecondition: return "failed_precondition";
        case StatusCode::kNotFound: return "not_found";
        case StatusCode::kUnavailable: return "unavailable";
        default: return "internal";
    }
}

/// What a replica knows, for a reply (settings and log position read without blocking on a
/// refresh in progress).
ShardReply ReplyFrom(const gallery::Gallery& g, int shard, const std::string& replica) {
    const gallery::GallerySettings s = g.settings();
    return ShardReply{.shard = shard,
                      .replica = replica,
                      .applied_change = g.applied_change(),
                      .templates = g.templates_in_memory(),
                      .threshold = s.threshold,
                      .margin = s.margin,
                      .top_k = s.top_k,
                      .candidates = {},
                      .error_code = {},
                      .error_message = {}};
}

}  // namespace

ShardServer::ShardServer(ShardServerConfig config, bus::Rpc* rpc) : config_(std::move(config)), rpc_(rpc) {}

ShardServer::~ShardServer() { Stop(); }

Status ShardServer::Hold(int shard, std::shared_ptr<const gallery::Gallery> replica) {
    if (shard < 0 || shard >= config_.shards) return InvalidArgument("shard server: shard out of range");
    if (!replica) return InvalidArgument("shard server: no replica");
    if (!services_.empty()) return FailedPrecondition("shard server: already started");
    replicas_[shard] = std::move(replica);
    return Status::Ok();
}

Status ShardServer::Start() {
    FG_RETURN_IF_ERROR(bus::ValidToken(config_.gallery, "gallery name"));
    if (config_.replica_id.empty()) return InvalidArgument("shard server: no replica id");
    if (rpc_ == nullptr)
        return FailedPrecondition("the sharded gallery needs request/reply on the bus (NATS); Kafka has none");
    if (!services_.empty()) return FailedPrecondition("shard server: already started");
    for (const auto& [shard, replica] : replicas_) {
        const int s = shard;
        Result<std::unique_ptr<bus::RpcService>> svc =
            rpc_->Serve(ShardSubject(config_.gallery, config_.shards, s), "replicas",
                        [this, s](std::string_view request) { return Answer(s, request); });
        if (!svc.ok()) {
            Stop();
            return svc.status().WithContext("serving shard " + std::to_string(s));
        }
        services_.push_back(std::move(*svc));
    }
    return Status::Ok();
}

void ShardServer::Stop() { services_.clear(); }

std::string ShardServer::Answer(int shard, std::string_view request) {
    auto it = replicas_.find(shard);
    if (it == replicas_.end()) {
        errors_.fetch_add(1);
        ShardReply r{.shard = std::clamp(shard, 0, kMaxShards - 1), .replica = config_.replica_id};
        r.error_code = "failed_precondition";
        r.error_message = "this replica does not hold shard " + std::to_string(shard);
        return EncodeShardReply(r);
    }
    const gallery::Gallery& g = *it->second;
    ShardReply reply = ReplyFrom(g, shard, config_.replica_id);
    auto fail = [&](const Status& st) {
        errors_.fetch_add(1);
        reply.error_code = CodeName(st.code());
        reply.error_message = st.message();
        return EncodeShardReply(reply);
    };
    Result<ShardQuery> q = DecodeShardQuery(request, config_.keys.get());
    if (!q.ok()) return fail(q.status());
    if (q->shards != config_.shards || q->shard != shard)
        return fail(FailedPrecondition("query for shard " + std::to_string(q->shard) + "/" + std::to_string(q->shards) +
                                       " reached shard " + std::to_string(shard) + "/" + std::to_string(config_.shards)));
    if (q->probe.model_id != g.model_id())
        return fail(FailedPrecondition("probe of model " + q->probe.model_id + ", the gallery's is " + g.model_id()));
    Result<std::vector<gallery::Candidate>> c = g.Nearest(q->probe, q->k);
    if (!c.ok()) return fail(c.status());
    reply.candidates = std::move(*c);
    queries_.fetch_add(1);
    return EncodeShardReply(reply);
}

std::vector<int> ShardServer::held() const {
    std::vector<int> out;
    for (const auto& [s, r] : replicas_) out.push_back(s);
    return out;
}

std::shared_ptr<const gallery::Gallery> ShardServer::replica(int shard) const {
    auto it = replicas_.find(shard);
    return it == replicas_.end() ? nullptr : it->second;
}

ShardServerStats ShardServer::stats() const { return {.queries = queries_.load(), .errors = errors_.load()}; }

// ---------------------------------------------------------------------------------------------

ShardedIdentifier::ShardedIdentifier(ShardedIdentifierConfig config, bus::Rpc* rpc, const ShardServer* local)
    : config_(std::move(config)), rpc_(rpc), local_(local) {}

Result<ShardReply> ShardedIdentifier::AskShard(int shard, const Embedding& probe, int k) const {
    if (local_ != nullptr) {
        if (std::shared_ptr<const gallery::Gallery> g = local_->replica(shard)) {
            ShardReply r = ReplyFrom(*g, shard, local_->config().replica_id);
            if (probe.model_id != g->model_id())
                return FailedPrecondition("probe of model " + probe.model_id + ", the gallery's is " + g->model_id());
            FG_ASSIGN_OR_RETURN(r.candidates, g->Nearest(probe, k));
            local_answers_.fetch_add(1);
            return r;
        }
    }
    if (rpc_ == nullptr) return FailedPrecondition("shard " + std::to_string(shard) + " is not local and there is no bus");
    FG_ASSIGN_OR_RETURN(std::string request,
                        EncodeShardQuery({.shards = config_.shards, .shard = shard, .k = k, .probe = probe},
                                         config_.keys.get()));
    const std::string subject = ShardSubject(config_.gallery, config_.shards, shard);
    Status last = Unavailable("no attempt");
    for (int attempt = 0; attempt < std::max(config_.attempts, 1); ++attempt) {
        if (attempt > 0) retries_.fetch_add(1);
        Result<std::string> bytes = rpc_->Request(subject, request, config_.attempt_timeout);
        if (!bytes.ok()) {
            // Nobody serves it (all replicas restarting) or the chosen replica died mid-query:
            // ask again; the bus routes the retry to a live member of the queue group.
            last = bytes.status();
            if (bytes.status().message().find("no server answers") != std::string::npos)
                std::this_thread::sleep_for(config_.no_responder_pause);
            continue;
        }
        Result<ShardReply> reply = DecodeShardReply(*bytes);
        if (!reply.ok()) return Internal("shard " + std::to_string(shard) + " replied: " + reply.status().message());
        if (!reply->error_code.empty()) {
            const StatusCode code = reply->error_code == "invalid_argument"      ? StatusCode::kInvalidArgument
                                    : reply->error_code == "failed_precondition" ? StatusCode::kFailedPrecondition
                                                                                 : StatusCode::kInternal;
            return Status(code, "shard " + std::to_string(shard) + " (" + reply->replica + "): " + reply->error_message);
        }
        if (reply->shard != shard) return Internal("shard " + std::to_string(shard) + ": a reply for another shard");
        remote_.fetch_add(1);
        return reply;
    }
    return Unavailable("shard " + std::to_string(shard) + " of gallery " + config_.gallery + ": no replica answered in " +
                       std::to_string(config_.attempts) + " attempts (" + last.message() + ")");
}

Result<gallery::Identification> ShardedIdentifier::Search(const Embedding& probe, int top_k) const {
    queries_.fetch_add(1);
    // k + 1 per shard: the merged runner-up decides the margin. With top_k = 0 the gallery's
    // setting is not known before the replies: ask for enough (replicas cap at their size).
    const int k = (top_k > 0 ? top_k : 10) + 1;
    std::vector<int> remote_shards;
    std::vector<Result<ShardReply>> replies;
    for (int s = 0; s < config_.shards; ++s) {
        if (local_ != nullptr && local_->replica(s))
            replies.push_back(AskShard(s, probe, k));
        else
            remote_shards.push_back(s);
    }
    // Remote shards in parallel; the last one on this thread (one thread fewer per query).
    std::vector<std::future<Result<ShardReply>>> remote;
    for (std::size_t i = 0; i < remote_shards.size(); ++i) {
        const int s = remote_shards[i];
        remote.push_back(std::async(i + 1 < remote_shards.size() ? std::launch::async : std::launch::deferred,
                                    [this, s, &probe, k] { return AskShard(s, probe, k); }));
    }
    for (auto& f : remote) replies.push_back(f.get());

    std::vector<gallery::Candidate> merged;
    const ShardReply* newest = nullptr;
    for (const Result<ShardReply>& r : replies) {
        if (!r.ok()) {
            failures_.fetch_add(1);
            return r.status();
        }
        if (newest == nullptr || r->applied_change > newest->applied_change) newest = &*r;
        merged.insert(merged.end(), r->candidates.begin(), r->candidates.end());
    }
    if (newest == nullptr) return FailedPrecondition("sharded identifier: no shards");
    // Subjects are partitioned: each appears in one shard only, so sorting the union is exact.
    std::sort(merged.begin(), merged.end(), [](const gallery::Candidate& a, const gallery::Candidate& b) {
        return a.score != b.score ? a.score > b.score : a.subject_id < b.subject_id;
    });
    return gallery::DecideOpenSet(std::move(merged), top_k > 0 ? top_k : newest->top_k, newest->threshold,
                                  newest->margin);
}

Result<pipeline::IdentityVerdict> ShardedIdentifier::Identify(const Embedding& probe) const {
    FG_ASSIGN_OR_RETURN(gallery::Identification r, Search(probe, 2));
    pipeline::IdentityVerdict v;
    if (!r.candidates.empty()) {
        v.score = r.candidates[0].score;
        v.margin = r.candidates.size() > 1 ? r.candidates[0].score - r.candidates[1].score : r.candidates[0].score;
    }
    v.known = r.known;
    if (r.known) v.subject_id = r.subject_id;
    return v;
}

ShardedIdentifierStats ShardedIdentifier::stats() const {
    return {.queries = queries_.load(),
            .local = local_answers_.load(),
            .remote = remote_.load(),
            .retries = retries_.load(),
            .failures = failures_.load()};
}

}  // namespace fg::cluster
