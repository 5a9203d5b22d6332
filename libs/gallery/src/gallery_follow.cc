// SPDX-License-Identifier: Apache-2.0
// Following the store's change log: Refresh applies the changes other processes committed to
// this gallery's index and face -> subject map; StartFollowing runs it on a thread. Every
// change names the face ids it touched, so applying is exact and idempotent: an id already
// present is not added twice, an absent one is not removed.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "fg/gallery/gallery.h"
#include "gallery_impl.h"

namespace fg::gallery {
namespace {

constexpr int kBatch = 1000;
// PostgreSQL: how long one LISTEN wait lasts, so StopFollowing is never kept waiting longer.
constexpr std::chrono::milliseconds kWaitSlice{100};
constexpr std::chrono::seconds kErrorLogEvery{10};

}  // namespace

Result<std::int64_t> Gallery::last_change() const { return impl_->store->LastChange(); }

Result<std::vector<Change>> Gallery::ChangesSince(std::int64_t after, int limit) const {
    if (limit < 1 || limit > 10000) return InvalidArgument("limit must be in 1..10000");
    return impl_->store->ChangesSince(after, limit);
}

std::int64_t Gallery::applied_change() const {
    return impl_->applied_seq.load();
}

Result<int> Gallery::Refresh() {
    Impl& m = *impl_;
    std::lock_guard w(m.write_mu);
    return m.Refresh();
}

Result<int> Gallery::Impl::Refresh() {
    for (std::int64_t s : store->TakeOwnChanges()) {
        if (s > applied_seq) own_seqs.insert(s);
    }
    int applied = 0;
    for (;;) {
        FG_ASSIGN_OR_RETURN(std::vector<Change> batch, store->ChangesSince(applied_seq.load(), kBatch));
        for (const Change& c : batch) {
            if (own_seqs.erase(c.seq) == 0) {
                Status s = ApplyChange(c);
                if (!s.ok()) {
                    return s.WithContext("applying change " + std::to_string(c.seq) + " (" +
                                         c.kind + ")");
                }
                ++applied;
            }
            applied_seq = c.seq;
        }
        if (int(batch.size()) < kBatch) break;
    }
    return applied;
}

Status Gallery::Impl::ApplyChange(const Change& c) {
    if (c.kind == "enroll" || c.kind == "import") {
        // A partial replica skips another shard's enrollment without reading it (bulk changes
        // name no subject: their templates are read and filtered).
        if (!c.subject_id.empty() && !Holds(c.subject_id)) return Status::Ok();
        return ApplyAdded(c.face_ids);
    }
    if (c.kind == "remove_face" || c.kind == "delete_subject") return ApplyRemoved(c.face_ids);
    if (c.kind == "merge" && options.holds) {
        // The faces move between subjects, maybe between shards: load them when the target is
        // ours (ApplyAdded skips those already present), drop them when it is not.
        if (!Holds(c.into)) return ApplyRemoved(c.face_ids);
        FG_RETURN_IF_ERROR(ApplyAdded(c.face_ids));
    }
    if (c.kind == "merge") {
        std::unique_lock lock(mu);
        const std::uint32_t into = InternSubject(c.into);
        for (std::int64_t f : c.face_ids) {
            auto it = face_subject.find(f);
            if (it != face_subject.end()) it->second = into;
        }
        return Status::Ok();
    }
    if (c.kind == "settings") return ApplySettings(false);
    if (c.kind == "reembed") return ApplySettings(true);
    // rename, metadata: display names and metadata are read from the store on each use.
    // rotate_key: templates keep their values; this process reads them with its own key ring.
    // A kind from a newer facegate is skipped rather than blocking the log forever.
    if (c.kind != "rename" && c.kind != "metadata" && c.kind != "rotate_key")
        spdlog::warn("gallery change log: skipping change {} of unknown kind", c.seq);
    return Status::Ok();
}

Status Gallery::Impl::ApplyAdded(const std::vector<std::int64_t>& face_ids) {
    std::vector<std::int64_t> missing;
    std::shared_ptr<const KeyRing> ring;
    std::string model;
    int d = 0;
    {
        std::shared_lock lock(mu);
        for (std::int64_t f : face_ids) {
            if (!face_subject.count(f)) missing.push_back(f);
        }
        ring = keys;
        model = model_id;
        d = dim;
    }
    if (missing.empty()) return Status::Ok();
    // Outside the index lock: reading and decrypting must not stall identification. Templates
    // deleted since are simply not returned (their delete is a later change).
    FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, store->GetTemplatesByIds(missing));
    if (options.holds)
        std::erase_if(records, [this](const TemplateRecord& r) { return !Holds(r.subject_id); });
    if (records.empty()) return Status::Ok();
    if (model.empty() || d == 0) {
        // The first enrollment of a gallery whose model settings this process has not seen.
        FG_RETURN_IF_ERROR(ApplySettings(false));
        std::shared_lock lock(mu);
        model = model_id;
        d = dim;
    }
    std::vector<std::int64_t> ids;
    std::vector<float> flat;
    ids.reserve(records.size());
    flat.reserve(records.size() * size_t(d));
    for (const TemplateRecord& r : records) {
        if (r.model_id != model || r.dim != d) {
            return DataLoss("template " + std::to_string(r.face_id) + " has model " + r.model_id +
                            "/" + std::to_string(r.dim) + ", the gallery " + model + "/" +
                            std::to_string(d));
        }
        FG_ASSIGN_OR_RETURN(std::vector<float> v, OpenTemplateLatest(ring, r));
        if (int(v.size()) != d)
            return DataLoss("template " + std::to_string(r.face_id) + " has a bad length");
        ids.push_back(r.face_id);
        flat.insert(flat.end(), v.begin(), v.end());
    }
    std::unique_lock lock(mu);
    for (const TemplateRecord& r : records) face_subject[r.face_id] = InternSubject(r.subject_id);
    if (!index) {
        FG_ASSIGN_OR_RETURN(index, FaceIndex::Build(ResolvedIndexConfig(), ids, flat));
        index_source = "built";
    } else {
        Status s = index->Add(ids, flat);
        if (!s.ok()) FG_RETURN_IF_ERROR(RebuildIndex("index add failed: " + s.message()));
    }
    snapshot_stale = true;
    return MaybeUpgradeIndex();
}

Status Gallery::Impl::ApplyRemoved(const std::vector<std::int64_t>& face_ids) {
    std::unique_lock lock(mu);
    std::vector<std::int64_t> present;
    for (std::int64_t f : face_ids) {
        if (face_subject.erase(f)) present.push_back(f);
    }
    if (index && !present.empty()) {
        FG_RETURN_IF_ERROR(index->Remove(present).status());
        snapshot_stale = true;
    }
    return Status::Ok();
}

Status Gallery::Impl::ApplySettings(bool reembedded) {
    FG_ASSIGN_OR_RETURN(auto stored, ReadSetting("identify"));
    FG_ASSIGN_OR_RETURN(auto stored_model, ReadSetting("model_id"));
    FG_ASSIGN_OR_RETURN(auto stored_dim, ReadSetting("dim"));
    GallerySettings next;
    {
        std::shared_lock lock(mu);
        next = settings;
    }
    if (stored) {
        nlohmann::json j = nlohmann::json::parse(*stored, nullptr, false);
        if (j.is_discarded()) return DataLoss("stored settings are not JSON");
        FG_RETURN_IF_ERROR(next.Update(j));
    }
    const std::string model = stored_model.value_or("");
    const int d = stored_dim ? std::atoi(stored_dim->c_str()) : 0;
    std::unique_lock lock(mu);
    const bool model_changed = model != model_id || d != dim;
    const bool kind_changed = next.index != settings.index;
    settings = next;
    model_id = model;
    dim = d;
    if (reembedded || (model_changed && index && index->size() > 0)) {
        // Every vector changed: rebuild from the store (rare; identification waits for it).
        FG_RETURN_IF_ERROR(RebuildIndex(reembedded ? "re-embedded by another process"
                                                   : "model changed by another process"));
    } else if (model_changed) {
        index.reset();
    } else if (kind_changed && index) {
        std::vector<std::int64_t> ids;
        std::vector<float> vectors;
        FG_RETURN_IF_ERROR(index->ExportVectors(ids, vectors));
        FG_ASSIGN_OR_RETURN(index, FaceIndex::Build(ResolvedIndexConfig(), ids, vectors));
        snapshot_stale = true;
    }
    return Status::Ok();
}

Status Gallery::StartFollowing(std::chrono::milliseconds interval) {
    Impl& m = *impl_;
    if (interval.count() <= 0) return InvalidArgument("follow interval must be positive");
    std::lock_guard lock(m.follow_mu);
    if (m.follower.joinable()) return FailedPrecondition("the gallery is already following");
    m.follow_stop = false;
    m.follower = std::thread([&m, interval] { m.FollowLoop(interval); });
    return Status::Ok();
}

void Gallery::StopFollowing() {
    Impl& m = *impl_;
    std::thread t;
    {
        std::lock_guard lock(m.follow_mu);
        m.follow_stop = true;
        t = std::move(m.follower);
    }
    m.follow_cv.notify_all();
    if (t.joinable()) t.join();
}

void Gallery::Impl::FollowLoop(std::chrono::milliseconds interval) {
    using Clock = std::chrono::steady_clock;
    auto next = Clock::now() + interval;
    Clock::time_point last_log{};
    int suppressed = 0;
    auto report = [&](const Status& s) {
        // Rate-limited: a store that is down for an hour logs a line per 10 s, not per refresh.
        const auto now = Clock::now();
        if (now - last_log < kErrorLogEvery) {
            ++suppressed;
            return;
        }
        spdlog::warn("gallery follow: {} (retrying; {} similar errors not shown)", s.ToString(),
                     suppressed);
        last_log = now;
        suppressed = 0;
    };
    auto stopping = [&](Clock::time_point until) {
        std::unique_lock lock(follow_mu);
        return follow_cv.wait_until(lock, until, [&] { return follow_stop; });
    };
    for (;;) {
        bool due = false;
        if (store->notifies()) {
            {
                std::lock_guard lock(follow_mu);
                if (follow_stop) return;
            }
            auto woke = store->WaitForChange(std::min<std::chrono::milliseconds>(
                kWaitSlice, std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::max(next - Clock::now(), Clock::duration::zero()))));
            if (!woke.ok()) {
                report(woke.status());
                if (stopping(Clock::now() + kWaitSlice)) return;
            } else {
                due = *woke;
            }
        } else if (stopping(next)) {
            return;
        }
        if (Clock::now() >= next) due = true;
        if (!due) continue;
        next = Clock::now() + interval;
        Result<int> n = [&] {
            std::lock_guard w(write_mu);
            return Refresh();
        }();
        if (!n.ok()) {
            report(n.status());
        } else if (*n > 0) {
            spdlog::debug("gallery follow: applied {} changes", *n);
        }
    }
}

}  // namespace fg::gallery
