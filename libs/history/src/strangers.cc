// SPDX-License-Identifier: Apache-2.0
// Layout: every exemplar of every stranger is a row of one contiguous float matrix, and every
// stranger's centroid a row of another, so matching a sighting is one pass over each (a few
// milliseconds for 10k strangers x 8 exemplars, BENCHMARKS.md "Strangers"). Rows are swapped
// with the last on removal. Non-exemplar members keep only their id (not their embedding), so a
// purged non-exemplar sighting stays in its stranger's centroid; the centroid is a guard, not a
// record, and drifts by 1/n at most.
#include "fg/history/strangers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "vec_kernels.h"

namespace fg::history {
namespace {

// A flat row-major matrix with swap-remove.
struct Rows {
    std::size_t dim = 0;
    std::vector<float> data;
    std::size_t size() const { return dim ? data.size() / dim : 0; }
    float* row(std::size_t r) { return data.data() + r * dim; }
    const float* row(std::size_t r) const { return data.data() + r * dim; }
    std::size_t Append(std::span<const float> v) {
        data.insert(data.end(), v.begin(), v.end());
        return size() - 1;
    }
    // Moves the last row into r and drops the last; returns the former index of the moved row.
    std::size_t SwapRemove(std::size_t r) {
        const std::size_t last = size() - 1;
        if (r != last) std::copy_n(row(last), dim, row(r));
        data.resize(last * dim);
        return last;
    }
};

}  // namespace

struct StrangerClusterer::Impl {
    struct Stranger {
        std::size_t slot = 0;           // centroid row
        std::vector<float> sum;         // sum of members' embeddings
        std::vector<std::int64_t> members;
        std::vector<std::int64_t> exemplars;  // sighting ids (their rows in `ex`)
    };

    StrangerOptions options;
    std::size_t dim = 0;
    Rows ex;                                   // exemplar embeddings
    std::vector<std::int64_t> ex_sighting;     // row -> sighting id
    std::vector<std::size_t> ex_slot;          // row -> owner's centroid slot
    std::vector<float> ex_quality;             // row -> quality
    std::unordered_map<std::int64_t, std::size_t> ex_row;  // sighting id -> row
    Rows centroids;                            // slot -> unit centroid
    std::vector<std::int64_t> slot_id;         // slot -> stranger id
    std::unordered_map<std::int64_t, Stranger> strangers;
    std::unordered_map<std::int64_t, std::int64_t> member_of;  // sighting -> stranger
    std::vector<float> best;                   // scratch: best exemplar score per slot

    bool Accept(std::span<const float> v) {
        if (v.empty()) return false;
        if (dim == 0) {
            dim = v.size();
            ex.dim = centroids.dim = dim;
        }
        if (v.size() != dim) return false;
        for (float x : v)
            if (!std::isfinite(x)) return false;
        return true;
    }

    void UpdateCentroid(Stranger& s) {
        double n2 = 0;
        for (float x : s.sum) n2 += double(x) * x;
        const float inv = n2 > 0 ? float(1.0 / std::sqrt(n2)) : 0.0f;
        float* c = centroids.row(s.slot);
        for (std::size_t i = 0; i < dim; ++i) c[i] = s.sum[i] * inv;
    }

    Stranger& Found(std::int64_t id) {
        Stranger& s = strangers[id];
        s.slot = slot_id.size();
        s.sum.assign(dim, 0.0f);
        slot_id.push_back(id);
        centroids.data.resize(centroids.data.size() + dim, 0.0f);
        return s;
    }

    void AddExemplar(Stranger& s, std::int64_t sighting, std::span<const float> v, float q) {
        ex_row[sighting] = ex.Append(v);
        ex_sighting.push_back(sighting);
        ex_slot.push_back(s.slot);
        ex_quality.push_back(q);
        s.exemplars.push_back(sighting);
    }

    void DropExemplarRow(std::size_t r) {
        ex_row.erase(ex_sighting[r]);
        const std::size_t last = ex.SwapRemove(r);
        if (r != last) {
            ex_sighting[r] = ex_sighting[last];
            ex_slot[r] = ex_slot[last];
            ex_quality[r] = ex_quality[last];
            ex_row[ex_sighting[r]] = r;
        }
        ex_sighting.pop_back();
        ex_slot.pop_back();
        ex_quality.pop_back();
    }

    // Keeps the max_exemplars best-quality exemplars: a new member replaces the worst one when
    // it is better (ties keep the older, which already shaped the stranger).
    void OfferExemplar(Stranger& s, std::int64_t sighting, std::span<const float> v, float q) {
        const std::size_t cap = std::size_t(std::max(options.max_exemplars, 1));
        if (s.exemplars.size() < cap) {
            AddExemplar(s, sighting, v, q);
            return;
        }
        auto worst = s.exemplars.begin();
        for (auto it = s.exemplars.begin(); it != s.exemplars.end(); ++it)
            if (ex_quality[ex_row[*it]] < ex_quality[ex_row[*worst]]) worst = it;
        if (!(q > ex_quality[ex_row[*worst]])) return;
        DropExemplarRow(ex_row[*worst]);
        s.exemplars.erase(worst);
        AddExemplar(s, sighting, v, q);
    }

    void AddMember(std::int64_t id, Stranger& s, std::int64_t sighting,
                   std::span<const float> v, float q) {
        s.members.push_back(sighting);
        member_of[sighting] = id;
        for (std::size_t i = 0; i < dim; ++i) s.sum[i] += v[i];
        UpdateCentroid(s);
        OfferExemplar(s, sighting, v, q);
    }

    void Erase(std::int64_t id) {
        auto it = strangers.find(id);
        if (it == strangers.end()) return;
        Stranger& s = it->second;
        for (std::int64_t e : s.exemplars) DropExemplarRow(ex_row[e]);
        for (std::int64_t m : s.members) member_of.erase(m);
        const std::size_t slot = s.slot, last = centroids.SwapRemove(slot);
        if (slot != last) {
            const std::int64_t moved = slot_id[last];
            slot_id[slot] = moved;
            Stranger& ms = strangers[moved];
            ms.slot = slot;
            for (std::int64_t e : ms.exemplars) ex_slot[ex_row[e]] = slot;
        }
        slot_id.pop_back();
        strangers.erase(it);
    }
};

StrangerClusterer::StrangerClusterer(StrangerOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->options = options;
}
StrangerClusterer::~StrangerClusterer() = default;
StrangerClusterer::StrangerClusterer(StrangerClusterer&&) noexcept = default;
StrangerClusterer& StrangerClusterer::operator=(StrangerClusterer&&) noexcept = default;

StrangerMatch StrangerClusterer::Assign(std::int64_t sighting_id,
                                        std::span<const float> unit_embedding, float quality,
                                        std::int64_t new_id) {
    Impl& m = *impl_;
    if (!m.Accept(unit_embedding)) return {};
    RemoveSighting(sighting_id);  // re-assigning a sighting moves it
    const std::size_t d = m.dim, nslots = m.slot_id.size();
    const StrangerOptions& o = m.options;
    const float kNone = -std::numeric_limits<float>::infinity();
    m.best.assign(nslots, kNone);
    if (o.rule != StrangerRule::kCentroid) {
        const float* q = unit_embedding.data();
        for (std::size_t r = 0, n = m.ex_sighting.size(); r < n; ++r) {
            const float s = kernels::DotF32(q, m.ex.row(r), d);
            float& b = m.best[m.ex_slot[r]];
            if (s > b) b = s;
        }
    }
    std::size_t pick = nslots;
    float pick_key = kNone, pick_score = 0;
    for (std::size_t slot = 0; slot < nslots; ++slot) {
        const float b = m.best[slot];
        if (o.rule != StrangerRule::kCentroid && !(b >= o.threshold)) continue;
        float key = b;
        if (o.rule != StrangerRule::kExemplar) {
            const float c = kernels::DotF32(unit_embedding.data(), m.centroids.row(slot), d);
            if (o.rule == StrangerRule::kCentroid) {
                if (!(c >= o.threshold)) continue;
                key = c;
            } else if (!(c >= o.threshold + o.centroid_margin)) {
                continue;
            }
        }
        if (key > pick_key) {
            pick_key = key;
            pick = slot;
            pick_score = key;
        }
    }
    if (pick == nslots) {
        if (m.strangers.count(new_id)) return {};  // the caller's id is taken: refuse, not merge
        Impl::Stranger& s = m.Found(new_id);
        m.AddMember(new_id, s, sighting_id, unit_embedding, quality);
        return {.stranger_id = new_id, .score = 0, .created = true};
    }
    const std::int64_t id = m.slot_id[pick];
    m.AddMember(id, m.strangers[id], sighting_id, unit_embedding, quality);
    return {.stranger_id = id, .score = pick_score, .created = false};
}

void StrangerClusterer::Restore(std::int64_t stranger_id, std::int64_t sighting_id,
                                std::span<const float> unit_embedding, float quality) {
    Impl& m = *impl_;
    if (!m.Accept(unit_embedding)) return;
    RemoveSighting(sighting_id);
    auto it = m.strangers.find(stranger_id);
    Impl::Stranger& s = it != m.strangers.end() ? it->second : m.Found(stranger_id);
    m.AddMember(stranger_id, s, sighting_id, unit_embedding, quality);
}

void StrangerClusterer::Merge(std::int64_t from, std::int64_t into) {
    Impl& m = *impl_;
    if (from == into) return;
    auto fi = m.strangers.find(from);
    auto ti = m.strangers.find(into);
    if (fi == m.strangers.end() || ti == m.strangers.end()) return;
    // Copy out `from` (its rows move as it is erased), then re-offer its exemplars.
    std::vector<std::int64_t> members = fi->second.members;
    std::vector<float> sum = fi->second.sum;
    std::vector<std::pair<std::int64_t, float>> exemplars;
    std::vector<float> vectors;
    for (std::int64_t e : fi->second.exemplars) {
        const std::size_t r = m.ex_row[e];
        exemplars.emplace_back(e, m.ex_quality[r]);
        vectors.insert(vectors.end(), m.ex.row(r), m.ex.row(r) + m.dim);
    }
    m.Erase(from);
    Impl::Stranger& t = m.strangers[into];
    for (std::int64_t s : members) {
        t.members.push_back(s);
        m.member_of[s] = into;
    }
    for (std::size_t i = 0; i < m.dim; ++i) t.sum[i] += sum[i];
    m.UpdateCentroid(t);
    for (std::size_t i = 0; i < exemplars.size(); ++i)
        m.OfferExemplar(t, exemplars[i].first,
                        std::span<const float>(vectors.data() + i * m.dim, m.dim),
                        exemplars[i].second);
}

void StrangerClusterer::Remove(std::int64_t stranger_id) { impl_->Erase(stranger_id); }

void StrangerClusterer::RemoveSighting(std::int64_t sighting_id) {
    Impl& m = *impl_;
    auto mi = m.member_of.find(sighting_id);
    if (mi == m.member_of.end()) return;
    const std::int64_t id = mi->second;
    Impl::Stranger& s = m.strangers[id];
    if (s.members.size() == 1) {
        m.Erase(id);
        return;
    }
    m.member_of.erase(mi);
    s.members.erase(std::find(s.members.begin(), s.members.end(), sighting_id));
    auto ei = std::find(s.exemplars.begin(), s.exemplars.end(), sighting_id);
    if (ei != s.exemplars.end()) {
        const std::size_t r = m.ex_row[sighting_id];
        for (std::size_t i = 0; i < m.dim; ++i) s.sum[i] -= m.ex.row(r)[i];
        m.UpdateCentroid(s);
        m.DropExemplarRow(r);
        s.exemplars.erase(ei);
    }
}

std::size_t StrangerClusterer::size() const { return impl_->strangers.size(); }

std::int64_t StrangerClusterer::StrangerOf(std::int64_t sighting_id) const {
    auto it = impl_->member_of.find(sighting_id);
    return it == impl_->member_of.end() ? 0 : it->second;
}

std::vector<std::int64_t> StrangerClusterer::Members(std::int64_t stranger_id) const {
    auto it = impl_->strangers.find(stranger_id);
    return it == impl_->strangers.end() ? std::vector<std::int64_t>{} : it->second.members;
}

const StrangerOptions& StrangerClusterer::options() const { return impl_->options; }

bool StrangerClusterer::SetThreshold(float threshold) {
    if (!std::isfinite(threshold) || threshold < -1.f || threshold > 1.f) return false;
    impl_->options.threshold = threshold;
    return true;
}

}  // namespace fg::history
