// SPDX-License-Identifier: Apache-2.0
#include "fg/cluster/shard.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "fg/events/event.h"
#include "fg/gallery/crypto.h"

namespace fg::cluster {
namespace {

constexpr int kMaxDim = 4096;
constexpr int kMaxK = 1000;
constexpr std::size_t kMaxIdBytes = 256;

std::string QueryAad(const std::string& model, int shards, int shard) {
    return "fg-shard-query-v1|" + model + "|" + std::to_string(shards) + "|" + std::to_string(shard);
}

Result<int> ParseInt(std::string_view s, std::string_view what) {
    int v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty())
        return InvalidArgument(std::string(what) + ": '" + std::string(s) + "' is not a shard number");
    return v;
}

/// The JSON object of a message, its major version checked, its type as expected.
Result<nlohmann::json> Parse(std::string_view bytes, std::string_view type) {
    if (bytes.size() > kMaxShardMessageBytes) return InvalidArgument("shard message: too large");
    nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return InvalidArgument("shard message: not a JSON object");
    auto v = j.find("v");
    if (v == j.end() || !v->is_number_integer()) return InvalidArgument("shard message: field 'v' missing or not an integer");
    if (v->get<std::int64_t>() > kShardProtocolMajor)
        return FailedPrecondition("shard message: major version " + std::to_string(v->get<std::int64_t>()) +
                                  " is newer than this reader's " + std::to_string(kShardProtocolMajor));
    if (v->get<std::int64_t>() < 1) return InvalidArgument("shard message: field 'v' must be >= 1");
    auto t = j.find("type");
    if (t == j.end() || !t->is_string() || t->get_ref<const std::string&>() != type)
        return InvalidArgument("shard message: field 'type' must be '" + std::string(type) + "'");
    return j;
}

Result<std::int64_t> Int(const nlohmann::json& j, const char* field, std::int64_t lo, std::int64_t hi) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_number_integer())
        return InvalidArgument(std::string("shard message: field '") + field + "' missing or not an integer");
    const std::int64_t v = it->get<std::int64_t>();
    if (v < lo || v > hi) return InvalidArgument(std::string("shard message: field '") + field + "' out of range");
    return v;
}

Result<float> Score(const nlohmann::json& j, const char* field) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_number())
        return InvalidArgument(std::string("shard message: field '") + field + "' missing or not a number");
    const double v = it->get<double>();
    if (!std::isfinite(v) || v < -2 || v > 2)
        return InvalidArgument(std::string("shard message: field '") + field + "' out of range");
    return static_cast<float>(v);
}

Result<std::string> Str(const nlohmann::json& j, const char* field, bool may_be_empty = false) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string())
        return InvalidArgument(std::string("shard message: field '") + field + "' missing or not a string");
    const std::string& s = it->get_ref<const std::string&>();
    if ((!may_be_empty && s.empty()) || s.size() > kMaxIdBytes)
        return InvalidArgument(std::string("shard message: field '") + field + "' empty or too long");
    return s;
}

}  // namespace

int ShardOf(std::string_view subject_id, int shards) {
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
    for (unsigned char c : subject_id) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return shards <= 1 ? 0 : static_cast<int>(h % static_cast<std::uint64_t>(shards));
}

Result<std::vector<int>> ParseShardList(std::string_view text, int shards, std::string_view what) {
    if (shards < 1 || shards > kMaxShards)
        return InvalidArgument(std::string(what) + ": the shard count must be in 1.." + std::to_string(kMaxShards));
    std::set<int> out;
    if (text == "all") {
        for (int s = 0; s < shards; ++s) out.insert(s);
        return std::vector<int>(out.begin(), out.end());
    }
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t comma = std::min(text.find(',', pos), text.size());
        const std::string_view part = text.substr(pos, comma - pos);
        const std::size_t dash = part.find('-');
        FG_ASSIGN_OR_RETURN(int lo, ParseInt(part.substr(0, dash), what));
        int hi = lo;
        if (dash != std::string_view::npos) {
            FG_ASSIGN_OR_RETURN(hi, ParseInt(part.substr(dash + 1), what));
        }
        if (lo < 0 || hi >= shards || lo > hi)
            return InvalidArgument(std::string(what) + ": '" + std::string(part) + "' is not within 0.." +
                                   std::to_string(shards - 1));
        for (int s = lo; s <= hi; ++s) out.insert(s);
        pos = comma + 1;
    }
    return std::vector<int>(out.begin(), out.end());
}

std::string ShardSubject(std::string_view gallery, int shards, int shard) {
    return "fg.shard." + std::string(gallery) + "." + std::to_string(shards) + "." + std::to_string(shard);
}

Result<std::string> EncodeShardQuery(const ShardQuery& q, const gallery::KeyRing* keys) {
    if (q.shards < 1 || q.shards > kMaxShards || q.shard < 0 || q.shard >= q.shards)
        return InvalidArgument("shard query: bad shard");
    if (q.k < 1 || q.k > kMaxK) return InvalidArgument("shard query: k out of range");
    if (q.probe.values.empty() || int(q.probe.values.size()) > kMaxDim || q.probe.model_id.empty() ||
        q.probe.model_id.size() > kMaxIdBytes)
        return InvalidArgument("shard query: bad probe");
    nlohmann::json j = {{"v", kShardProtocolMajor}, {"type", "shard_query"}, {"shards", q.shards},
                        {"shard", q.shard},          {"k", q.k},              {"model", q.probe.model_id}};
    if (keys != nullptr) {
        FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> sealed,
                            keys->Seal(q.probe.values, QueryAad(q.probe.model_id, q.shards, q.shard)));
        j["probe"] = {{"key_id", keys->current_id()}, {"sealed", events::Base64Encode(sealed)}};
    } else {
        const auto* p = reinterpret_cast<const std::uint8_t*>(q.probe.values.data());
        j["probe"] = {{"plain", events::Base64Encode({p, q.probe.values.size() * sizeof(float)})}};
    }
    return j.dump();
}

Result<ShardQuery> DecodeShardQuery(std::string_view bytes, const gallery::KeyRing* keys) {
    FG_ASSIGN_OR_RETURN(nlohmann::json j, Parse(bytes, "shard_query"));
    ShardQuery q;
    FG_ASSIGN_OR_RETURN(std::int64_t shards, Int(j, "shards", 1, kMaxShards));
    FG_ASSIGN_OR_RETURN(std::int64_t shard, Int(j, "shard", 0, shards - 1));
    FG_ASSIGN_OR_RETURN(std::int64_t k, Int(j, "k", 1, kMaxK));
    FG_ASSIGN_OR_RETURN(q.probe.model_id, Str(j, "model"));
    q.shards = int(shards);
    q.shard = int(shard);
    q.k = int(k);
    auto p = j.find("probe");
    if (p == j.end() || !p->is_object()) return InvalidArgument("shard message: field 'probe' missing or not an object");
    if (auto plain = p->find("plain"); plain != p->end()) {
        if (!plain->is_string()) return InvalidArgument("shard message: field 'probe.plain' not a string");
        FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> raw, events::Base64Decode(plain->get_ref<const std::string&>()));
        if (raw.empty() || raw.size() % sizeof(float) != 0 || raw.size() / sizeof(float) > std::size_t(kMaxDim))
            return InvalidArgument("shard message: field 'probe.plain' has a bad length");
        q.probe.values.resize(raw.size() / sizeof(float));
        std::copy(raw.begin(), raw.end(), reinterpret_cast<std::uint8_t*>(q.probe.values.data()));
    } else {
        FG_ASSIGN_OR_RETURN(std::string key_id, Str(*p, "key_id"));
        auto sealed = p->find("sealed");
        if (sealed == p->end() || !sealed->is_string())
            return InvalidArgument("shard message: field 'probe.sealed' missing or not a string");
        if (keys == nullptr) return FailedPrecondition("shard query: the probe is sealed and this node has no gallery key");
        FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> blob, events::Base64Decode(sealed->get_ref<const std::string&>()));
        FG_ASSIGN_OR_RETURN(q.probe.values, keys->Open(blob, key_id, QueryAad(q.probe.model_id, q.shards, q.shard)));
        if (q.probe.values.empty() || int(q.probe.values.size()) > kMaxDim)
            return InvalidArgument("shard message: the sealed probe has a bad length");
    }
    if (!AllFinite(q.probe.values)) return InvalidArgument("shard message: the probe is not finite");
    return q;
}

std::string EncodeShardReply(const ShardReply& r) {
    nlohmann::json c = nlohmann::json::array();
    for (const gallery::Candidate& x : r.candidates) c.push_back({x.subject_id, x.score, x.face_id});
    nlohmann::json j = {{"v", kShardProtocolMajor},  {"type", "shard_reply"},
                        {"shard", r.shard},          {"replica", r.replica},
                        {"applied_change", r.applied_change}, {"templates", r.templates},
                        {"threshold", r.threshold}, {"margin", r.margin},
                        {"top_k", r.top_k},          {"candidates", std::move(c)}};
    if (!r.error_code.empty()) j["error"] = {{"code", r.error_code}, {"message", r.error_message}};
    return j.dump();
}

Result<ShardReply> DecodeShardReply(std::string_view bytes) {
    FG_ASSIGN_OR_RETURN(nlohmann::json j, Parse(bytes, "shard_reply"));
    ShardReply r;
    FG_ASSIGN_OR_RETURN(std::int64_t shard, Int(j, "shard", 0, kMaxShards - 1));
    r.shard = int(shard);
    FG_ASSIGN_OR_RETURN(r.replica, Str(j, "replica"));
    FG_ASSIGN_OR_RETURN(r.applied_change, Int(j, "applied_change", 0, INT64_MAX));
    FG_ASSIGN_OR_RETURN(r.templates, Int(j, "templates", 0, INT64_MAX));
    FG_ASSIGN_OR_RETURN(r.threshold, Score(j, "threshold"));
    FG_ASSIGN_OR_RETURN(r.margin, Score(j, "margin"));
    FG_ASSIGN_OR_RETURN(std::int64_t top_k, Int(j, "top_k", 1, kMaxK));
    r.top_k = int(top_k);
    if (auto e = j.find("error"); e != j.end()) {
        if (!e->is_object()) return InvalidArgument("shard message: field 'error' not an object");
        FG_ASSIGN_OR_RETURN(r.error_code, Str(*e, "code"));
        FG_ASSIGN_OR_RETURN(r.error_message, Str(*e, "message", true));
    }
    auto c = j.find("candidates");
    if (c == j.end() || !c->is_array() || c->size() > std::size_t(kMaxK))
        return InvalidArgument("shard message: field 'candidates' missing, not an array or too long");
    float previous = 3.f;
    for (const nlohmann::json& x : *c) {
        if (!x.is_array() || x.size() != 3 || !x[0].is_string() || !x[1].is_number() || !x[2].is_number_integer())
            return InvalidArgument("shard message: a candidate is not [subject, score, face id]");
        gallery::Candidate cand;
        cand.subject_id = x[0].get<std::string>();
        const double score = x[1].get<double>();
        if (cand.subject_id.empty() || cand.subject_id.size() > kMaxIdBytes || !std::isfinite(score) ||
            score < -2 || score > 2 || score > previous)
            return InvalidArgument("shard message: a candidate has a bad subject or score (or is out of order)");
        cand.score = static_cast<float>(score);
        previous = cand.score;
        cand.face_id = x[2].get<std::int64_t>();
        r.candidates.push_back(std::move(cand));
    }
    return r;
}

}  // namespace fg::cluster
