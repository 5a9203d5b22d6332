// SPDX-License-Identifier: Apache-2.0
// Gallery administration: subject edits, face removal, re-embedding from kept crops and key
// rotation. Each commits to the store first, then brings the in-memory state in step.
#include <algorithm>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "fg/gallery/gallery.h"
#include "gallery_impl.h"

namespace fg::gallery {

Status Gallery::CreateSubject(const Subject& subject) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(ValidateSubjectId(subject.id));
    FG_RETURN_IF_ERROR(ValidateMetadata(subject.metadata.empty() ? "{}" : subject.metadata));
    std::lock_guard w(m.write_mu);
    return m.store->CreateSubject(subject);
}

Status Gallery::RenameSubject(const std::string& id, const std::string& display_name) {
    Impl& m = *impl_;
    if (display_name.empty()) return InvalidArgument("display name is empty");
    std::lock_guard w(m.write_mu);
    return m.store->RenameSubject(id, display_name);
}

Status Gallery::UpdateMetadata(const std::string& id, const std::string& metadata_json) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(ValidateMetadata(metadata_json));
    std::lock_guard w(m.write_mu);
    return m.store->UpdateMetadata(id, metadata_json);
}

Status Gallery::MergeSubjects(const std::string& from, const std::string& into) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(m.RefuseOnPartial("merge"));
    if (from == into) return InvalidArgument("cannot merge a subject into itself");
    std::lock_guard w(m.write_mu);
    // The subject id is in every template's associated data: the moved templates are re-sealed
    // for `into` and written in the merge's own transaction.
    FG_RETURN_IF_ERROR(m.store->GetSubject(from).status());
    FG_RETURN_IF_ERROR(m.store->GetSubject(into).status());
    FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> moved, m.store->GetTemplates(from));
    for (TemplateRecord& r : moved) {
        FG_ASSIGN_OR_RETURN(std::vector<float> v, m.OpenTemplate(*m.keys, r));
        std::vector<std::uint8_t> crop;
        if (!r.crop.empty()) {
            FG_ASSIGN_OR_RETURN(crop, m.OpenCrop(*m.keys, r));
        }
        r.subject_id = into;
        FG_RETURN_IF_ERROR(Impl::SealInto(*m.keys, r, v, crop));
    }
    FG_RETURN_IF_ERROR(m.store->MergeSubjects(from, into, &moved));
    std::unique_lock lock(m.mu);
    const std::uint32_t f = m.InternSubject(from), t = m.InternSubject(into);
    for (auto& [face, subject] : m.face_subject) {
        if (subject == f) subject = t;
    }
    return Status::Ok();
}

Status Gallery::DeleteSubject(const std::string& id) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(m.RefuseOnPartial("delete"));
    std::lock_guard w(m.write_mu);
    FG_ASSIGN_OR_RETURN(std::vector<std::int64_t> erased, m.store->DeleteSubject(id));
    std::unique_lock lock(m.mu);
    for (std::int64_t f : erased) m.face_subject.erase(f);
    if (m.index && !erased.empty()) {
        FG_RETURN_IF_ERROR(m.index->Remove(erased).status());
        m.snapshot_stale = true;
    }
    return Status::Ok();
}

Status Gallery::RemoveFace(std::int64_t face_id) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(m.RefuseOnPartial("remove face"));
    std::lock_guard w(m.write_mu);
    FG_RETURN_IF_ERROR(m.store->RemoveTemplate(face_id).status());
    std::unique_lock lock(m.mu);
    m.face_subject.erase(face_id);
    if (m.index) {
        const std::int64_t one[1] = {face_id};
        FG_RETURN_IF_ERROR(m.index->Remove(one).status());
        m.snapshot_stale = true;
    }
    return Status::Ok();
}

Result<std::int64_t> Gallery::Reembed(const std::string& model_id, const CropEmbedder& embed,
                                      std::optional<float> new_threshold) {
    Impl& m = *impl_;
    FG_RETURN_IF_ERROR(m.RefuseOnPartial("re-embed"));
    if (model_id.empty()) return InvalidArgument("re-embedding needs the new model id");
    if (new_threshold && !(*new_threshold >= -1.f && *new_threshold <= 1.f))
        return InvalidArgument("threshold must be in -1..1");
    std::lock_guard w(m.write_mu);
    FG_ASSIGN_OR_RETURN(std::int64_t total, m.store->CountTemplates());
    FG_ASSIGN_OR_RETURN(std::int64_t missing, m.store->CountTemplatesWithoutCrop());
    if (missing > 0) {
        return FailedPrecondition(
            std::to_string(missing) + " of " + std::to_string(total) +
            " templates have no stored face crop (the gallery did not keep crops when they were "
            "enrolled, or they came from precomputed embeddings), so they cannot be re-embedded; "
            "turn keep_crops on and re-enroll them from images, or delete them");
    }
    std::vector<TemplateRecord> updated;
    updated.reserve(size_t(total));
    std::vector<std::int64_t> ids;
    std::vector<float> vectors;
    int dim = 0;
    FG_RETURN_IF_ERROR(m.store->ForEachTemplate(
        [&](const TemplateRecord& r) -> Status {
            // The row's key id is replaced, its crop is not: both must be under one key.
            if (r.key_id != m.keys->current_id()) {
                return FailedPrecondition("face " + std::to_string(r.face_id) +
                                          " is sealed with an older key: finish the key rotation "
                                          "(gallery rotate-key) before re-embedding");
            }
            FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> crop, m.OpenCrop(*m.keys, r));
            FG_ASSIGN_OR_RETURN(std::vector<float> v, embed(crop));
            std::vector<float> unit;
            Status s = m.CheckEmbedding(std::span<const float>(v), unit, false);
            if (!s.ok()) return s.WithContext("re-embedding face " + std::to_string(r.face_id));
            if (dim == 0) dim = int(unit.size());
            if (int(unit.size()) != dim) return Internal("the new embedder changed dimension");
            TemplateRecord t;
            t.face_id = r.face_id;
            t.subject_id = r.subject_id;
            t.model_id = model_id;
            t.dim = dim;
            t.key_id = m.keys->current_id();
            FG_ASSIGN_OR_RETURN(t.sealed,
                                m.keys->Seal(unit, TemplateAad(t.face_id, t.subject_id, model_id)));
            updated.push_back(std::move(t));
            ids.push_back(r.face_id);
            vectors.insert(vectors.end(), unit.begin(), unit.end());
            return Status::Ok();
        },
        true));
    GallerySettings next = settings();
    if (new_threshold) next.threshold = *new_threshold;
    std::vector<std::pair<std::string, std::string>> put;
    auto add = [&](const std::string& k, const std::string& v) -> Status {
        FG_ASSIGN_OR_RETURN(std::string sealed, Impl::SealSetting(*m.keys, k, v));
        put.emplace_back(k, std::move(sealed));
        return Status::Ok();
    };
    FG_RETURN_IF_ERROR(add("identify", next.ToJson().dump()));
    if (!updated.empty()) {
        FG_RETURN_IF_ERROR(add("model_id", model_id));
        FG_RETURN_IF_ERROR(add("dim", std::to_string(dim)));
    }
    FG_RETURN_IF_ERROR(m.store->ReplaceTemplates(updated, put));
    std::unique_lock lock(m.mu);
    m.settings = next;
    if (!updated.empty()) {
        m.model_id = model_id;
        m.dim = dim;
        FG_ASSIGN_OR_RETURN(m.index, FaceIndex::Build(m.ResolvedIndexConfig(), ids, vectors));
        m.index_source = "rebuilt: re-embedded";
    }
    m.snapshot_stale = true;
    // The old snapshot holds the old model's vectors: never load it again.
    m.RemoveSnapshotFile();
    return std::int64_t(updated.size());
}

Result<std::int64_t> Gallery::RotateKey(std::shared_ptr<const KeyRing> keys) {
    Impl& m = *impl_;
    if (!keys) return InvalidArgument("no key");
    std::lock_guard w(m.write_mu);
    // Refuse rings that would strand rows: the key now in use must be in the new ring (as an
    // old key), and an interrupted rotation is finished with its own target key first.
    if (!keys->Has(m.keys->current_id())) {
        return InvalidArgument("the new key ring must also hold the gallery's current key " +
                               m.keys->current_id() + " (as an old key) to re-encrypt its rows");
    }
    FG_ASSIGN_OR_RETURN(std::optional<std::string> pending, m.ReadSetting(*keys, "rotation"));
    if (pending && !pending->empty() && *pending != keys->current_id()) {
        return FailedPrecondition("a key rotation to key " + *pending +
                                  " was interrupted; finish it with that key first");
    }
    // Recorded first (MACed with the new key): while it stands, rows and settings under either
    // key are accepted, so a crash between batches leaves a gallery that opens with both keys,
    // and running the rotation again resumes it (rows already under the new key are skipped).
    FG_ASSIGN_OR_RETURN(std::string marker,
                        Impl::SealSetting(*keys, "rotation", keys->current_id()));
    FG_RETURN_IF_ERROR(m.store->PutSetting("rotation", marker));
    {
        // Readers switch to the new ring now (it holds the old key too): rows change key under
        // them from the first batch on.
        std::unique_lock lock(m.mu);
        m.keys = keys;
    }
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, m.store->ListFaceRefs());
    std::vector<std::string> subjects;
    for (const FaceRef& r : refs) subjects.push_back(r.subject_id);
    std::sort(subjects.begin(), subjects.end());
    subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());
    std::int64_t done = 0;
    int batches = 0;
    std::vector<TemplateRecord> batch;
    auto flush = [&]() -> Status {
        if (batch.empty()) return Status::Ok();
        FG_RETURN_IF_ERROR(m.store->UpdateSealed(batch));
        done += std::int64_t(batch.size());
        batch.clear();
        CrashAfterBatchForTest(++batches);
        return Status::Ok();
    };
    for (const std::string& s : subjects) {
        FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, m.store->GetTemplates(s));
        for (TemplateRecord& r : records) {
            if (r.key_id == keys->current_id()) continue;
            FG_ASSIGN_OR_RETURN(std::vector<float> v, m.OpenTemplate(*keys, r));
            std::vector<std::uint8_t> crop;
            if (!r.crop.empty()) {
                FG_ASSIGN_OR_RETURN(crop, m.OpenCrop(*keys, r));
            }
            FG_RETURN_IF_ERROR(Impl::SealInto(*keys, r, v, crop));
            batch.push_back(std::move(r));
        }
        if (int(batch.size()) >= m.options.rewrite_batch) FG_RETURN_IF_ERROR(flush());
    }
    FG_RETURN_IF_ERROR(flush());
    // Every setting under the new key, then the rotation is recorded as finished.
    FG_RETURN_IF_ERROR(m.ResealSettings(*keys));
    FG_ASSIGN_OR_RETURN(std::string finished, Impl::SealSetting(*keys, "rotation", ""));
    FG_RETURN_IF_ERROR(m.store->PutSetting("rotation", finished));
    std::unique_lock lock(m.mu);
    m.snapshot_stale = true;
    // The old snapshot is sealed with the old key: drop it rather than leave it behind.
    m.RemoveSnapshotFile();
    return done;
}

}  // namespace fg::gallery
