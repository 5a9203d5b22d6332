// SPDX-License-Identifier: Apache-2.0
// Gallery core: open, settings, enrollment, identification, verification, consistency and the
// read-only views of the store. The other concerns are in gallery_admin.cc, gallery_export.cc
// and gallery_snapshot.cc; the shared private state in gallery_impl.h.
#include "fg/gallery/gallery.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "gallery_impl.h"

namespace fg::gallery {
namespace {

constexpr size_t kMaxSubjectId = 256;

}  // namespace

Status ValidateSubjectId(const std::string& id) {
    if (id.empty()) return InvalidArgument("subject id is empty");
    if (id.size() > kMaxSubjectId) return InvalidArgument("subject id longer than 256 bytes");
    for (unsigned char c : id) {
        if (c < 0x20 || c == 0x7f) return InvalidArgument("subject id contains control characters");
    }
    return Status::Ok();
}

Status ValidateMetadata(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return InvalidArgument("metadata must be a JSON object");
    return Status::Ok();
}

Status GallerySettings::Validate() const {
    if (!(threshold >= -1.f && threshold <= 1.f))
        return InvalidArgument("threshold must be in -1..1");
    if (!(margin >= 0.f && margin <= 2.f)) return InvalidArgument("margin must be in 0..2");
    if (top_k < 1 || top_k > 1000) return InvalidArgument("top_k must be in 1..1000");
    if (!(duplicate_threshold >= -1.f && duplicate_threshold <= 1.f)) {
        return InvalidArgument("duplicate_threshold must be in -1..1");
    }
    return ParseIndexKind(index).status();
}

nlohmann::json GallerySettings::ToJson() const {
    return {{"threshold", threshold},
            {"margin", margin},
            {"top_k", top_k},
            {"duplicate_threshold", duplicate_threshold},
            {"index", index},
            {"keep_crops", keep_crops}};
}

Status GallerySettings::Update(const nlohmann::json& j) {
    if (!j.is_object()) return InvalidArgument("settings must be a JSON object");
    GallerySettings s = *this;
    try {
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (it.key() == "threshold")
                s.threshold = it->get<float>();
            else if (it.key() == "margin")
                s.margin = it->get<float>();
            else if (it.key() == "top_k")
                s.top_k = it->get<int>();
            else if (it.key() == "duplicate_threshold")
                s.duplicate_threshold = it->get<float>();
            else if (it.key() == "index")
                s.index = it->get<std::string>();
            else if (it.key() == "keep_crops")
                s.keep_crops = it->get<bool>();
            else
                return InvalidArgument("unknown setting '" + it.key() + "'");
        }
    } catch (const std::exception& e) {
        return InvalidArgument(std::string("bad setting value: ") + e.what());
    }
    FG_RETURN_IF_ERROR(s.Validate());
    *this = s;
    return Status::Ok();
}

Result<std::unique_ptr<Gallery>> Gallery::Open(const GalleryOptions& options) {
    if (!options.keys)
        return FailedPrecondition("no gallery key (templates are encrypted at rest)");
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    impl->keys = options.keys;
    const bool is_url = options.location.rfind("postgres", 0) == 0;
    std::error_code ec;
    if (!options.create_if_missing && !is_url && !std::filesystem::exists(options.location, ec)) {
        return NotFound("gallery " + options.location +
                        " does not exist (pass --create, or \"create\": true, to create it)");
    }
    FG_ASSIGN_OR_RETURN(impl->store, OpenStore(options.location));
    if (options.holds) {
        // A partial replica's index is not the gallery's: it never reads or writes the snapshot.
        impl->options.use_snapshot = false;
        impl->options.snapshot_path.clear();
    } else if (impl->options.snapshot_path.empty() && impl->store->kind() == "sqlite") {
        impl->options.snapshot_path = options.location + ".index";
    }
    // The log position is read before the state it describes: a change committed in between is
    // then both loaded and later re-applied, which is harmless (applying is by face id and
    // idempotent), whereas the other order could miss it.
    FG_RETURN_IF_ERROR(impl->CheckIntegrity());
    FG_ASSIGN_OR_RETURN(const std::int64_t last, impl->store->LastChange());
    impl->applied_seq = last;
    FG_RETURN_IF_ERROR(impl->LoadSettings());
    FG_RETURN_IF_ERROR(impl->LoadIndex());
    return std::unique_ptr<Gallery>(new Gallery(std::move(impl)));
}

Gallery::Gallery(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Gallery::~Gallery() { StopFollowing(); }

Status Gallery::Impl::RefuseOnPartial(std::string_view what) const {
    if (!options.holds) return Status::Ok();
    return FailedPrecondition(std::string(what) +
                              ": this gallery is a partial replica (one shard); write to the full gallery");
}

Status Gallery::Impl::LoadSettings() {
    FG_ASSIGN_OR_RETURN(auto s, ReadSetting("identify"));
    if (s) {
        nlohmann::json j = nlohmann::json::parse(*s, nullptr, false);
        if (j.is_discarded()) return DataLoss("stored settings are not JSON");
        FG_RETURN_IF_ERROR(settings.Update(j));
    } else if (options.default_threshold || options.default_settings) {
        // A new gallery: fix its settings now so later opens (and other nodes) agree even when
        // they are given another pack.
        if (options.default_settings)
            FG_RETURN_IF_ERROR(settings.Update(*options.default_settings));
        if (options.default_threshold) {
            GallerySettings d = settings;
            d.threshold = *options.default_threshold;
            FG_RETURN_IF_ERROR(d.Validate());
            settings = d;
        }
        FG_RETURN_IF_ERROR(WriteSetting("identify", settings.ToJson().dump()));
    }
    FG_ASSIGN_OR_RETURN(auto model, ReadSetting("model_id"));
    FG_ASSIGN_OR_RETURN(auto stored_dim, ReadSetting("dim"));
    model_id = model.value_or("");
    dim = stored_dim ? std::atoi(stored_dim->c_str()) : 0;
    // An interrupted RotateKey: its marker is MACed with the new key, so a ring without it
    // fails here with a message that says what to do.
    FG_ASSIGN_OR_RETURN(auto rotation, ReadSetting("rotation"));
    if (rotation && !rotation->empty()) {
        spdlog::warn("gallery: a key rotation to key {} was interrupted; run rotate-key again to "
                     "finish it (both keys are accepted until then)",
                     *rotation);
    }
    return Status::Ok();
}

IndexConfig Gallery::Impl::ResolvedIndexConfig() const {
    IndexConfig c = options.index;
    c.dim = dim > 0 ? dim : c.dim;
    c.kind =
        ParseIndexKind(settings.index).ok() ? *ParseIndexKind(settings.index) : IndexKind::kAuto;
    return c;
}

std::uint32_t Gallery::Impl::InternSubject(const std::string& id) {
    auto it = subject_index.find(id);
    if (it != subject_index.end()) return it->second;
    const auto i = std::uint32_t(subject_names.size());
    subject_names.push_back(id);
    subject_index.emplace(id, i);
    return i;
}

GallerySettings Gallery::settings() const {
    const Impl& m = *impl_;
    std::shared_lock lock(m.mu);
    return m.settings;
}

Status Gallery::UpdateSettings(const GallerySettings& s) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(s.Validate());
    std::lock_guard w(m.write_mu);
    FG_RETURN_IF_ERROR(m.WriteSetting("identify", s.ToJson().dump()));
    std::unique_lock lock(m.mu);
    const bool index_changed = s.index != m.settings.index;
    m.settings = s;
    if (index_changed && m.index) {
        // Rebuild now so the new kind takes effect and agrees with the store.
        std::vector<std::int64_t> ids;
        std::vector<float> vectors;
        FG_RETURN_IF_ERROR(m.index->ExportVectors(ids, vectors));
        FG_ASSIGN_OR_RETURN(m.index, FaceIndex::Build(m.ResolvedIndexConfig(), ids, vectors));
        m.snapshot_stale = true;
    }
    return Status::Ok();
}

Result<GalleryStats> Gallery::Stats() {
    Impl& m = *impl_;
    GalleryStats s;
    FG_ASSIGN_OR_RETURN(s.subjects, m.store->CountSubjects());
    FG_ASSIGN_OR_RETURN(s.templates, m.store->CountTemplates());
    std::shared_lock lock(m.mu);
    s.model_id = m.model_id;
    s.dim = m.dim;
    s.index_kind = m.index ? std::string(IndexKindName(m.index->kind())) : "none";
    s.index_bytes = m.index ? m.index->MemoryBytes() : 0;
    s.index_source = m.index_source;
    s.store_kind = m.store->kind();
    s.schema_version = m.store->schema_version();
    return s;
}

std::string Gallery::model_id() const {
    const Impl& m = *impl_;
    std::shared_lock lock(m.mu);
    return m.model_id;
}

int Gallery::dim() const {
    const Impl& m = *impl_;
    std::shared_lock lock(m.mu);
    return m.dim;
}

Result<Subject> Gallery::GetSubject(const std::string& id) const {
    return impl_->store->GetSubject(id);
}

Result<ListPage> Gallery::ListSubjects(const std::string& after, int limit) const {
    return impl_->store->ListSubjects(after, limit);
}

Result<std::vector<FaceInfo>> Gallery::ListFaces(const std::string& subject_id) const {
    const Impl& m = *impl_;
    FG_RETURN_IF_ERROR(m.store->GetSubject(subject_id).status());
    FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, m.store->GetTemplates(subject_id));
    std::vector<FaceInfo> out;
    out.reserve(records.size());
    for (const TemplateRecord& r : records) {
        out.push_back({r.face_id, r.subject_id, r.model_id, r.dim, r.key_id, r.quality, r.source,
                       r.created_at, !r.crop.empty()});
    }
    return out;
}

Status Gallery::Impl::CheckEmbedding(std::span<const float> v, std::vector<float>& unit,
                                     bool check_dim) const {
    if (v.empty()) return InvalidArgument("embedding is empty");
    if (check_dim && dim > 0 && int(v.size()) != dim) {
        return InvalidArgument("embedding has " + std::to_string(v.size()) +
                               " values; this gallery holds " + std::to_string(dim) +
                               "-d embeddings of model " + model_id);
    }
    if (!fg::AllFinite(v)) return InvalidArgument("embedding contains NaN or Inf");
    // Inner product equals cosine only for unit vectors; tolerate unnormalised inputs.
    unit.assign(v.begin(), v.end());
    if (fg::L2Normalize(unit) < 1e-6) return InvalidArgument("embedding is all zeros");
    return Status::Ok();
}

Status Gallery::Impl::CheckProbe(const Embedding& probe, std::vector<float>& unit) const {
    if (!model_id.empty() && probe.model_id != model_id) {
        return FailedPrecondition(
            "probe embedding is from model '" + probe.model_id +
            "' but this gallery holds templates of model '" + model_id +
            "'; scores across models are meaningless (use the gallery's pack, or switch the "
            "gallery with gallery reembed if it keeps crops, or re-enroll it with the new model)");
    }
    return CheckEmbedding(probe.values, unit);
}

Result<EnrollResult> Gallery::Enroll(const std::string& subject_id, const EnrollOptions& options,
                                     std::span<const NewFace> faces) {
    FG_RETURN_IF_ERROR(ValidateSubjectId(subject_id));
    std::vector<BulkFace> bulk;
    bulk.reserve(faces.size());
    for (const NewFace& f : faces) bulk.push_back({subject_id, f, options.display_name});
    return EnrollBulk(bulk, options);
}

Result<EnrollResult> Gallery::EnrollBulk(std::span<const BulkFace> faces,
                                         const EnrollOptions& options) {
    return EnrollBulkAs(faces, options, "enroll");
}

Result<EnrollResult> Gallery::EnrollBulkAs(std::span<const BulkFace> faces,
                                           const EnrollOptions& options,
                                           const std::string& change_kind) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(m.RefuseOnPartial(change_kind));
    if (options.model_id.empty())
        return InvalidArgument("enrollment needs the embedder's model id");
    if (faces.empty()) return InvalidArgument("no faces to enroll");
    const std::string metadata = options.metadata.empty() ? "{}" : options.metadata;
    if (options.create_subject) FG_RETURN_IF_ERROR(ValidateMetadata(metadata));
    for (size_t i = 0; i < faces.size(); ++i) {
        if (i > 0 && faces[i].subject_id == faces[i - 1].subject_id) continue;
        Status s = ValidateSubjectId(faces[i].subject_id);
        if (s.ok() && options.create_subject && !faces[i].metadata.empty())
            s = ValidateMetadata(faces[i].metadata);
        if (!s.ok()) return s.WithContext("face " + std::to_string(i));
    }
    std::lock_guard w(m.write_mu);
    EnrollResult result;
    std::vector<std::vector<float>> units(faces.size());
    {
        std::shared_lock lock(m.mu);
        if (!m.model_id.empty() && options.model_id != m.model_id) {
            FG_ASSIGN_OR_RETURN(std::int64_t n, m.store->CountTemplates());
            if (n > 0) {
                return FailedPrecondition("cannot enroll embeddings of model '" + options.model_id +
                                          "' into a gallery of model '" + m.model_id +
                                          "' (gallery reembed switches a gallery's model)");
            }
        }
        const int expect = (options.model_id == m.model_id) ? m.dim : 0;
        for (size_t i = 0; i < faces.size(); ++i) {
            const auto& v = faces[i].face.embedding;
            if (expect > 0 && int(v.size()) != expect) {
                return InvalidArgument("face " + std::to_string(i) + ": embedding has " +
                                       std::to_string(v.size()) + " values, the gallery's model " +
                                       m.model_id + " gives " + std::to_string(expect));
            }
            if (i > 0 && v.size() != faces[0].face.embedding.size()) {
                return InvalidArgument("face " + std::to_string(i) + " has " +
                                       std::to_string(v.size()) + " values, face 0 has " +
                                       std::to_string(faces[0].face.embedding.size()));
            }
            Status s = m.CheckEmbedding(v, units[i], expect > 0);
            if (!s.ok()) return s.WithContext("face " + std::to_string(i));
        }
    }
    const int dim = int(units[0].size());
    if (options.model_id != m.model_id || dim != m.dim) {
        FG_RETURN_IF_ERROR(m.WriteSetting("model_id", options.model_id));
        FG_RETURN_IF_ERROR(m.WriteSetting("dim", std::to_string(dim)));
        std::unique_lock lock(m.mu);
        m.model_id = options.model_id;
        m.dim = dim;
        m.index.reset();
    }
    std::vector<TemplateRecord> records;
    records.reserve(faces.size());
    std::vector<size_t> kept;
    kept.reserve(faces.size());
    {
        std::shared_lock lock(m.mu);
        const bool keep_crops = m.settings.keep_crops;
        for (size_t i = 0; i < faces.size(); ++i) {
            const std::string& subject_id = faces[i].subject_id;
            if (!options.force && m.index && m.index->size() > 0) {
                FG_ASSIGN_OR_RETURN(auto nn, m.index->Search(units[i], 16));
                bool dup = false;
                for (const Neighbor& n : nn) {
                    if (n.score < m.settings.duplicate_threshold) break;
                    auto it = m.face_subject.find(n.id);
                    if (it != m.face_subject.end() && m.subject_names[it->second] != subject_id) {
                        char buf[64];
                        std::snprintf(buf, sizeof buf, "%.3f", n.score);
                        result.rejected.push_back({i, "duplicate_of_other_subject",
                                                   "looks like subject '" +
                                                       m.subject_names[it->second] + "' (score " +
                                                       buf + ", face " + std::to_string(n.id) +
                                                       "); use force to enroll anyway"});
                        dup = true;
                        break;
                    }
                }
                if (dup) continue;
            }
            TemplateRecord r;
            r.subject_id = subject_id;
            r.model_id = options.model_id;
            r.dim = dim;
            // Sealed below, once the face ids are known.
            if (keep_crops && !faces[i].face.crop.empty()) r.crop = faces[i].face.crop;
            r.quality = faces[i].face.quality;
            r.source = faces[i].face.source;
            records.push_back(std::move(r));
            kept.push_back(i);
        }
    }
    if (records.empty()) return result;
    // The face id is part of every template's associated data, so ids are reserved before
    // sealing (never reused: a failed insert only leaves a gap).
    {
        FG_ASSIGN_OR_RETURN(std::vector<std::int64_t> ids,
                            m.store->ReserveFaceIds(std::int64_t(records.size())));
        if (ids.size() != records.size()) return Internal("the store reserved too few face ids");
        for (size_t k = 0; k < records.size(); ++k) {
            TemplateRecord& r = records[k];
            r.face_id = ids[k];
            const std::vector<std::uint8_t> crop = std::move(r.crop);
            FG_RETURN_IF_ERROR(Impl::SealInto(*m.keys, r, units[kept[k]], crop));
        }
    }
    std::vector<Subject> create;
    if (options.create_subject) {
        for (size_t i : kept) {
            const BulkFace& f = faces[i];
            if (!create.empty() && create.back().id == f.subject_id) continue;
            create.push_back(Subject{
                f.subject_id, f.display_name.empty() ? options.display_name : f.display_name,
                f.metadata.empty() ? metadata : f.metadata});
        }
    }
    FG_ASSIGN_OR_RETURN(result.face_ids, m.store->AddBulk(create, records, change_kind));
    // The store is the source of truth and has committed; the index follows.
    std::unique_lock lock(m.mu);
    std::uint32_t sid = 0;
    for (size_t k = 0; k < kept.size(); ++k) {
        if (k == 0 || faces[kept[k]].subject_id != faces[kept[k - 1]].subject_id)
            sid = m.InternSubject(faces[kept[k]].subject_id);
        m.face_subject[result.face_ids[k]] = sid;
    }
    std::vector<float> flat;
    flat.reserve(kept.size() * size_t(dim));
    for (size_t i : kept) flat.insert(flat.end(), units[i].begin(), units[i].end());
    if (!m.index) {
        FG_ASSIGN_OR_RETURN(m.index,
                            FaceIndex::Build(m.ResolvedIndexConfig(), result.face_ids, flat));
    } else {
        Status s = m.index->Add(result.face_ids, flat);
        if (!s.ok()) FG_RETURN_IF_ERROR(m.RebuildIndex("index add failed: " + s.message()));
    }
    m.snapshot_stale = true;
    m.index_source = m.index_source.empty() ? "built" : m.index_source;
    FG_RETURN_IF_ERROR(m.MaybeUpgradeIndex());
    return result;
}

Status Gallery::Impl::MaybeUpgradeIndex() {
    // Runs under Enroll's exclusive lock: exact search stops meeting the latency target past
    // auto_scan_above, so an "auto" gallery switches to the scan index once, when it crosses it.
    if (settings.index != "auto" || !index || index->kind() != IndexKind::kFlat)
        return Status::Ok();
    const IndexConfig c = ResolvedIndexConfig();
    if (index->size() <= c.auto_scan_above) return Status::Ok();
    std::vector<std::int64_t> ids;
    std::vector<float> vectors;
    FG_RETURN_IF_ERROR(index->ExportVectors(ids, vectors));
    FG_ASSIGN_OR_RETURN(index, FaceIndex::Build(c, ids, vectors));
    spdlog::info("gallery index switched to {} at {} templates", IndexKindName(index->kind()),
                 ids.size());
    return Status::Ok();
}

Identification DecideOpenSet(std::vector<Candidate> ranked, int top_k, float threshold, float margin) {
    Identification out;
    out.threshold = threshold;
    out.margin = margin;
    if (ranked.empty()) {
        out.reason = "empty_gallery";
        return out;
    }
    const float runner_up = ranked.size() > 1 ? ranked[1].score : -1.f;
    if (int(ranked.size()) > std::max(top_k, 1)) ranked.resize(size_t(std::max(top_k, 1)));
    out.candidates = std::move(ranked);
    const Candidate& top = out.candidates.front();
    if (top.score < threshold) {
        out.reason = "below_threshold";
    } else if (top.score - runner_up < margin) {
        out.reason = "ambiguous";
    } else {
        out.known = true;
        out.subject_id = top.subject_id;
        out.reason = "match";
    }
    return out;
}

Result<std::vector<Candidate>> Gallery::Impl::NearestLocked(std::span<const float> unit, int k) const {
    const Impl& m = *this;
    std::vector<Candidate> best;
    if (!m.index || m.index->size() == 0) return best;
    // Subjects own several templates: fetch templates until k distinct subjects are found, or
    // the whole gallery was seen.
    for (int fetch = std::max(32, 8 * k);; fetch *= 4) {
        FG_ASSIGN_OR_RETURN(std::vector<Neighbor> nn, m.index->Search(unit, fetch));
        best.clear();
        std::unordered_set<std::uint32_t> seen;
        for (const Neighbor& n : nn) {
            auto it = m.face_subject.find(n.id);
            if (it == m.face_subject.end()) continue;
            if (!seen.insert(it->second).second) continue;  // results are sorted: the first is the max
            best.push_back({m.subject_names[it->second], "", n.score, n.id});
        }
        if (int(best.size()) >= k || std::int64_t(nn.size()) >= m.index->size() || fetch > (1 << 20))
            break;
    }
    if (int(best.size()) > k) best.resize(size_t(k));
    return best;
}

Result<Identification> Gallery::Identify(const Embedding& probe, int top_k) const {
    const Impl& m = *impl_;
    std::shared_lock lock(m.mu);
    std::vector<float> unit;
    FG_RETURN_IF_ERROR(m.CheckProbe(probe, unit));
    const int k = top_k > 0 ? top_k : m.settings.top_k;
    // k + 1: the runner-up decides the margin even when only one candidate is returned.
    FG_ASSIGN_OR_RETURN(std::vector<Candidate> best, m.NearestLocked(unit, k + 1));
    Identification out = DecideOpenSet(std::move(best), k, m.settings.threshold, m.settings.margin);
    lock.unlock();
    if (!out.candidates.empty())
        m.names.Fill(*m.store, out.candidates);  // one query; cached names while the store is away
    return out;
}

Result<std::vector<Candidate>> Gallery::Nearest(const Embedding& probe, int k) const {
    if (k < 1) return InvalidArgument("k must be >= 1");
    const Impl& m = *impl_;
    std::shared_lock lock(m.mu);
    std::vector<float> unit;
    FG_RETURN_IF_ERROR(m.CheckProbe(probe, unit));
    return m.NearestLocked(unit, k);
}

std::int64_t Gallery::templates_in_memory() const {
    const Impl& m = *impl_;
    std::shared_lock lock(m.mu);
    return std::int64_t(m.face_subject.size());
}

bool Gallery::partial() const { return bool(impl_->options.holds); }

Result<float> Gallery::Verify(const Embedding& probe, const std::string& subject_id) const {
    const Impl& m = *impl_;
    std::vector<float> unit;
    std::shared_ptr<const KeyRing> keys;  // copied under the lock: RotateKey swaps it
    {
        std::shared_lock lock(m.mu);
        FG_RETURN_IF_ERROR(m.CheckProbe(probe, unit));
        keys = m.keys;
    }
    FG_RETURN_IF_ERROR(m.store->GetSubject(subject_id).status());
    FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, m.store->GetTemplates(subject_id));
    if (records.empty())
        return FailedPrecondition("subject '" + subject_id + "' has no face templates");
    float best = -2.f;
    for (const TemplateRecord& r : records) {
        FG_ASSIGN_OR_RETURN(std::vector<float> v, m.OpenTemplateLatest(keys, r));
        if (v.size() != unit.size()) return DataLoss("stored template has a different dimension");
        best = std::max(best, fg::Dot(v, unit));
    }
    return best;
}

Status Gallery::CheckConsistency() {
    Impl& m = *impl_;
    std::lock_guard w(m.write_mu);
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, m.store->ListFaceRefs());
    if (m.options.holds)
        std::erase_if(refs, [&m](const FaceRef& r) { return !m.Holds(r.subject_id); });
    std::shared_lock lock(m.mu);
    std::vector<std::int64_t> store_ids;
    store_ids.reserve(refs.size());
    for (const FaceRef& r : refs) store_ids.push_back(r.face_id);
    const std::vector<std::int64_t> index_ids =
        m.index ? m.index->Ids() : std::vector<std::int64_t>{};
    if (index_ids != store_ids) {
        return DataLoss("the index holds " + std::to_string(index_ids.size()) +
                        " templates, the store " + std::to_string(store_ids.size()) +
                        " (or other ids)");
    }
    if (m.face_subject.size() != refs.size())
        return DataLoss("face -> subject map size differs from the store");
    for (const FaceRef& r : refs) {
        auto it = m.face_subject.find(r.face_id);
        if (it == m.face_subject.end() || m.subject_names[it->second] != r.subject_id) {
            return DataLoss("face " + std::to_string(r.face_id) + " belongs to '" + r.subject_id +
                            "' in the store but not in memory");
        }
    }
    return Status::Ok();
}

}  // namespace fg::gallery
