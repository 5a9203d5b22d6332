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
    if (from == into) return InvalidArgument("cannot merge a subject into itself");
    std::lock_guard w(m.write_mu);
    FG_RETURN_IF_ERROR(m.store->MergeSubjects(from, into));
    std::unique_lock lock(m.mu);
    const std::uint32_t f = m.InternSubject(from), t = m.InternSubject(into);
    for (auto& [face, subject] : m.face_subject) {
        if (subject == f) subject = t;
    }
    return Status::Ok();
}

Status Gallery::DeleteSubject(const std::string& id) {
    Impl& m = *impl_;
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
    const std::string aad = TemplateAad(model_id);
    FG_RETURN_IF_ERROR(m.store->ForEachTemplate(
        [&](const TemplateRecord& r) -> Status {
            FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> crop,
                                m.keys->OpenBytes(r.crop, r.key_id, CropAad()));
            FG_ASSIGN_OR_RETURN(std::vector<float> v, embed(crop));
            std::vector<float> unit;
            Status s = m.CheckEmbedding(std::span<const float>(v), unit, false);
            if (!s.ok()) return s.WithContext("re-embedding face " + std::to_string(r.face_id));
            if (dim == 0) dim = int(unit.size());
            if (int(unit.size()) != dim) return Internal("the new embedder changed dimension");
            TemplateRecord t;
            t.face_id = r.face_id;
            t.model_id = model_id;
            t.dim = dim;
            t.key_id = m.keys->current_id();
            FG_ASSIGN_OR_RETURN(t.sealed, m.keys->Seal(unit, aad));
            updated.push_back(std::move(t));
            ids.push_back(r.face_id);
            vectors.insert(vectors.end(), unit.begin(), unit.end());
            return Status::Ok();
        },
        true));
    GallerySettings next = settings();
    if (new_threshold) next.threshold = *new_threshold;
    std::vector<std::pair<std::string, std::string>> put = {{"identify", next.ToJson().dump()}};
    if (!updated.empty()) {
        put.emplace_back("model_id", model_id);
        put.emplace_back("dim", std::to_string(dim));
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
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, m.store->ListFaceRefs());
    std::vector<std::string> subjects;
    for (const FaceRef& r : refs) {
        if (subjects.empty() || subjects.back() != r.subject_id) subjects.push_back(r.subject_id);
    }
    std::sort(subjects.begin(), subjects.end());
    subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());
    std::int64_t done = 0;
    std::vector<TemplateRecord> batch;
    auto flush = [&]() -> Status {
        if (batch.empty()) return Status::Ok();
        FG_RETURN_IF_ERROR(m.store->UpdateSealed(batch));
        done += std::int64_t(batch.size());
        batch.clear();
        return Status::Ok();
    };
    for (const std::string& s : subjects) {
        FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, m.store->GetTemplates(s));
        for (TemplateRecord& r : records) {
            if (r.key_id == keys->current_id()) continue;
            FG_ASSIGN_OR_RETURN(std::vector<float> v,
                                keys->Open(r.sealed, r.key_id, TemplateAad(r.model_id)));
            FG_ASSIGN_OR_RETURN(r.sealed, keys->Seal(v, TemplateAad(r.model_id)));
            if (!r.crop.empty()) {
                FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> crop,
                                    keys->OpenBytes(r.crop, r.key_id, CropAad()));
                FG_ASSIGN_OR_RETURN(r.crop, keys->SealBytes(crop, CropAad()));
            }
            r.key_id = keys->current_id();
            batch.push_back(std::move(r));
        }
        if (batch.size() >= 2000) FG_RETURN_IF_ERROR(flush());
    }
    FG_RETURN_IF_ERROR(flush());
    std::unique_lock lock(m.mu);
    m.keys = std::move(keys);
    m.snapshot_stale = true;
    // The old snapshot is sealed with the old key: drop it rather than leave it behind.
    m.RemoveSnapshotFile();
    return done;
}

}  // namespace fg::gallery
