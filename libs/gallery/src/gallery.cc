// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/gallery.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include <spdlog/spdlog.h>

namespace fg::gallery {
namespace {

constexpr char kSnapshotMagic[4] = {'F', 'G', 'S', 'N'};
constexpr std::uint32_t kSnapshotFormat = 1;
constexpr int kExportVersion = 1;
constexpr size_t kMaxSubjectId = 256;

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

// Snapshot files are replaced atomically so a crash leaves the old one or the new one.
Status WriteFileAtomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w <= 0) {
            const int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            return (e == ENOSPC ? ResourceExhausted("disk full writing " + tmp)
                                : Unavailable("cannot write " + tmp + ": " + std::strerror(e)));
        }
        done += size_t(w);
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        ::unlink(tmp.c_str());
        return Unavailable("fsync failed on " + tmp);
    }
    ::close(fd);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) return Unavailable("cannot rename " + tmp);
    return Status::Ok();
}

}  // namespace

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
    std::unique_ptr<Gallery> g(new Gallery());
    g->options_ = options;
    g->keys_ = options.keys;
    FG_ASSIGN_OR_RETURN(g->store_, OpenStore(options.location));
    if (g->options_.snapshot_path.empty() && g->store_->kind() == "sqlite") {
        g->options_.snapshot_path = options.location + ".index";
    }
    FG_RETURN_IF_ERROR(g->LoadSettings());
    FG_RETURN_IF_ERROR(g->LoadIndex());
    return g;
}

Gallery::~Gallery() = default;

Status Gallery::LoadSettings() {
    FG_ASSIGN_OR_RETURN(auto s, store_->GetSetting("identify"));
    if (s) {
        nlohmann::json j = nlohmann::json::parse(*s, nullptr, false);
        if (j.is_discarded()) return DataLoss("stored settings are not JSON");
        FG_RETURN_IF_ERROR(settings_.Update(j));
    } else if (options_.default_threshold || options_.default_settings) {
        // A new gallery: fix its settings now so later opens (and other nodes) agree even when
        // they are given another pack.
        if (options_.default_settings)
            FG_RETURN_IF_ERROR(settings_.Update(*options_.default_settings));
        if (options_.default_threshold) {
            GallerySettings d = settings_;
            d.threshold = *options_.default_threshold;
            FG_RETURN_IF_ERROR(d.Validate());
            settings_ = d;
        }
        FG_RETURN_IF_ERROR(store_->PutSetting("identify", settings_.ToJson().dump()));
    }
    FG_ASSIGN_OR_RETURN(auto model, store_->GetSetting("model_id"));
    FG_ASSIGN_OR_RETURN(auto dim, store_->GetSetting("dim"));
    model_id_ = model.value_or("");
    dim_ = dim ? std::atoi(dim->c_str()) : 0;
    return Status::Ok();
}

IndexConfig Gallery::ResolvedIndexConfig() const {
    IndexConfig c = options_.index;
    c.dim = dim_ > 0 ? dim_ : c.dim;
    c.kind =
        ParseIndexKind(settings_.index).ok() ? *ParseIndexKind(settings_.index) : IndexKind::kAuto;
    return c;
}

std::string Gallery::TemplateAad(const std::string& model_id) const {
    return "fg-template-v1|" + model_id;
}

std::string Gallery::CropAad() const { return "fg-crop-v1"; }

std::uint32_t Gallery::InternSubject(const std::string& id) {
    auto it = subject_index_.find(id);
    if (it != subject_index_.end()) return it->second;
    const auto i = std::uint32_t(subject_names_.size());
    subject_names_.push_back(id);
    subject_index_.emplace(id, i);
    return i;
}

Status Gallery::LoadIndex() {
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, store_->ListFaceRefs());
    face_subject_.clear();
    face_subject_.reserve(refs.size());
    subject_index_.reserve(refs.size());
    std::vector<std::int64_t> store_ids;
    store_ids.reserve(refs.size());
    for (const FaceRef& r : refs) {
        face_subject_[r.face_id] = InternSubject(r.subject_id);
        store_ids.push_back(r.face_id);
    }
    if (refs.empty()) {
        index_.reset();
        index_source_ = "empty";
        snapshot_stale_ = false;
        return Status::Ok();
    }
    std::string why = "no snapshot";
    const std::string& path = options_.snapshot_path;
    std::error_code ec;
    if (options_.use_snapshot && !path.empty() && std::filesystem::exists(path, ec)) {
        // One read into a buffer of the file's size (a byte iterator took seconds per GB).
        std::vector<std::uint8_t> bytes;
        {
            std::ifstream in(path, std::ios::binary);
            const auto size = std::filesystem::file_size(path, ec);
            if (!ec && in) {
                bytes.resize(size_t(size));
                in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size));
                if (!in) bytes.clear();
            }
        }
        why = "snapshot damaged";
        if (bytes.size() > 12 && std::memcmp(bytes.data(), kSnapshotMagic, 4) == 0) {
            std::uint32_t format, key_len;
            std::memcpy(&format, bytes.data() + 4, 4);
            std::memcpy(&key_len, bytes.data() + 8, 4);
            if (format == kSnapshotFormat && key_len < 64 && bytes.size() > 12 + key_len) {
                const std::string key_id(reinterpret_cast<const char*>(bytes.data() + 12), key_len);
                std::span<std::uint8_t> sealed(bytes.data() + 12 + key_len,
                                               bytes.size() - 12 - key_len);
                auto plain =
                    keys_->OpenBytesInPlace(sealed, key_id, "fg-index-snapshot-v1|" + model_id_);
                if (!plain.ok()) {
                    why = "snapshot unreadable: " + plain.status().message();
                } else {
                    auto index = FaceIndex::Deserialize(ResolvedIndexConfig(), *plain);
                    if (!index.ok()) {
                        why = "snapshot damaged: " + index.status().message();
                    } else if ((*index)->dim() != dim_ || (*index)->Ids() != store_ids) {
                        why = "snapshot stale (its templates differ from the store's)";
                    } else {
                        index_ = std::move(*index);
                        index_source_ = "snapshot";
                        snapshot_stale_ = false;
                        return Status::Ok();
                    }
                }
            }
        }
    }
    return RebuildIndex(why);
}

Status Gallery::RebuildIndex(const std::string& why) {
    std::vector<std::int64_t> ids;
    std::vector<float> vectors;
    FG_RETURN_IF_ERROR(store_->ForEachTemplate([&](const TemplateRecord& r) -> Status {
        if (r.model_id != model_id_ || r.dim != dim_) {
            return DataLoss("template " + std::to_string(r.face_id) + " has model " + r.model_id +
                            "/" + std::to_string(r.dim) + ", the gallery " + model_id_ + "/" +
                            std::to_string(dim_));
        }
        FG_ASSIGN_OR_RETURN(std::vector<float> v,
                            keys_->Open(r.sealed, r.key_id, TemplateAad(r.model_id)));
        if (int(v.size()) != dim_)
            return DataLoss("template " + std::to_string(r.face_id) + " has a bad length");
        ids.push_back(r.face_id);
        vectors.insert(vectors.end(), v.begin(), v.end());
        return Status::Ok();
    }));
    FG_ASSIGN_OR_RETURN(index_, FaceIndex::Build(ResolvedIndexConfig(), ids, vectors));
    index_source_ = "rebuilt: " + why;
    snapshot_stale_ = true;
    spdlog::debug("gallery index rebuilt from the store ({}): {} templates", why, ids.size());
    return Status::Ok();
}

Status Gallery::SaveSnapshot() {
    std::unique_lock lock(mu_);
    if (options_.snapshot_path.empty())
        return FailedPrecondition("this gallery has no snapshot file");
    if (!index_) {
        std::error_code ec;
        std::filesystem::remove(options_.snapshot_path, ec);
        return Status::Ok();
    }
    FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> plain, index_->Serialize());
    FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> sealed,
                        keys_->SealBytes(plain, "fg-index-snapshot-v1|" + model_id_));
    std::vector<std::uint8_t> file(kSnapshotMagic, kSnapshotMagic + 4);
    const std::uint32_t header[2] = {kSnapshotFormat, std::uint32_t(keys_->current_id().size())};
    const auto* h = reinterpret_cast<const std::uint8_t*>(header);
    file.insert(file.end(), h, h + sizeof header);
    file.insert(file.end(), keys_->current_id().begin(), keys_->current_id().end());
    file.insert(file.end(), sealed.begin(), sealed.end());
    FG_RETURN_IF_ERROR(WriteFileAtomic(options_.snapshot_path, file));
    snapshot_stale_ = false;
    return Status::Ok();
}

Status Gallery::Close() {
    bool want;
    {
        std::shared_lock lock(mu_);
        want = snapshot_stale_ && options_.use_snapshot && !options_.snapshot_path.empty() &&
               index_ && index_->size() >= options_.snapshot_min_size;
    }
    return want ? SaveSnapshot() : Status::Ok();
}

GallerySettings Gallery::settings() const {
    std::shared_lock lock(mu_);
    return settings_;
}

Status Gallery::UpdateSettings(const GallerySettings& s) {
    FG_RETURN_IF_ERROR(s.Validate());
    std::lock_guard w(write_mu_);
    FG_RETURN_IF_ERROR(store_->PutSetting("identify", s.ToJson().dump()));
    std::unique_lock lock(mu_);
    const bool index_changed = s.index != settings_.index;
    settings_ = s;
    if (index_changed && index_) {
        // Rebuild now so the new kind takes effect and agrees with the store.
        std::vector<std::int64_t> ids;
        std::vector<float> vectors;
        FG_RETURN_IF_ERROR(index_->ExportVectors(ids, vectors));
        FG_ASSIGN_OR_RETURN(index_, FaceIndex::Build(ResolvedIndexConfig(), ids, vectors));
        snapshot_stale_ = true;
    }
    return Status::Ok();
}

Result<GalleryStats> Gallery::Stats() {
    GalleryStats s;
    FG_ASSIGN_OR_RETURN(s.subjects, store_->CountSubjects());
    FG_ASSIGN_OR_RETURN(s.templates, store_->CountTemplates());
    std::shared_lock lock(mu_);
    s.model_id = model_id_;
    s.dim = dim_;
    s.index_kind = index_ ? std::string(IndexKindName(index_->kind())) : "none";
    s.index_bytes = index_ ? index_->MemoryBytes() : 0;
    s.index_source = index_source_;
    return s;
}

std::string Gallery::model_id() const {
    std::shared_lock lock(mu_);
    return model_id_;
}

int Gallery::dim() const {
    std::shared_lock lock(mu_);
    return dim_;
}

Status Gallery::CreateSubject(const Subject& subject) {
    FG_RETURN_IF_ERROR(ValidateSubjectId(subject.id));
    FG_RETURN_IF_ERROR(ValidateMetadata(subject.metadata.empty() ? "{}" : subject.metadata));
    std::lock_guard w(write_mu_);
    return store_->CreateSubject(subject);
}

Status Gallery::RenameSubject(const std::string& id, const std::string& display_name) {
    if (display_name.empty()) return InvalidArgument("display name is empty");
    std::lock_guard w(write_mu_);
    return store_->RenameSubject(id, display_name);
}

Status Gallery::UpdateMetadata(const std::string& id, const std::string& metadata_json) {
    FG_RETURN_IF_ERROR(ValidateMetadata(metadata_json));
    std::lock_guard w(write_mu_);
    return store_->UpdateMetadata(id, metadata_json);
}

Status Gallery::MergeSubjects(const std::string& from, const std::string& into) {
    if (from == into) return InvalidArgument("cannot merge a subject into itself");
    std::lock_guard w(write_mu_);
    FG_RETURN_IF_ERROR(store_->MergeSubjects(from, into));
    std::unique_lock lock(mu_);
    const std::uint32_t f = InternSubject(from), t = InternSubject(into);
    for (auto& [face, subject] : face_subject_) {
        if (subject == f) subject = t;
    }
    return Status::Ok();
}

Status Gallery::DeleteSubject(const std::string& id) {
    std::lock_guard w(write_mu_);
    FG_ASSIGN_OR_RETURN(std::vector<std::int64_t> erased, store_->DeleteSubject(id));
    std::unique_lock lock(mu_);
    for (std::int64_t f : erased) face_subject_.erase(f);
    if (index_ && !erased.empty()) {
        FG_RETURN_IF_ERROR(index_->Remove(erased).status());
        snapshot_stale_ = true;
    }
    return Status::Ok();
}

Status Gallery::RemoveFace(std::int64_t face_id) {
    std::lock_guard w(write_mu_);
    FG_RETURN_IF_ERROR(store_->RemoveTemplate(face_id).status());
    std::unique_lock lock(mu_);
    face_subject_.erase(face_id);
    if (index_) {
        const std::int64_t one[1] = {face_id};
        FG_RETURN_IF_ERROR(index_->Remove(one).status());
        snapshot_stale_ = true;
    }
    return Status::Ok();
}

Status Gallery::CheckEmbedding(std::span<const float> v, std::vector<float>& unit,
                               bool check_dim) const {
    if (v.empty()) return InvalidArgument("embedding is empty");
    if (check_dim && dim_ > 0 && int(v.size()) != dim_) {
        return InvalidArgument("embedding has " + std::to_string(v.size()) +
                               " values; this gallery holds " + std::to_string(dim_) +
                               "-d embeddings of model " + model_id_);
    }
    double norm = 0;
    for (float x : v) {
        if (!std::isfinite(x)) return InvalidArgument("embedding contains NaN or Inf");
        norm += double(x) * x;
    }
    norm = std::sqrt(norm);
    if (norm < 1e-6) return InvalidArgument("embedding is all zeros");
    unit.resize(v.size());
    // Inner product equals cosine only for unit vectors; tolerate unnormalised inputs.
    for (size_t i = 0; i < v.size(); ++i) unit[i] = float(v[i] / norm);
    return Status::Ok();
}

Status Gallery::CheckProbe(const vision::Embedding& probe, std::vector<float>& unit) const {
    if (!model_id_.empty() && probe.model_id != model_id_) {
        return FailedPrecondition("probe embedding is from model '" + probe.model_id +
                                  "' but this gallery holds "
                                  "templates of model '" +
                                  model_id_ +
                                  "'; scores across models are meaningless (use the gallery's pack, or "
                                  "switch the gallery with gallery reembed if it keeps crops, or "
                                  "re-enroll it with the new model)");
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
    if (options.model_id.empty())
        return InvalidArgument("enrollment needs the embedder's model id");
    if (faces.empty()) return InvalidArgument("no faces to enroll");
    const std::string metadata = options.metadata.empty() ? "{}" : options.metadata;
    if (options.create_subject) FG_RETURN_IF_ERROR(ValidateMetadata(metadata));
    for (size_t i = 0; i < faces.size(); ++i) {
        if (i > 0 && faces[i].subject_id == faces[i - 1].subject_id) continue;
        Status s = ValidateSubjectId(faces[i].subject_id);
        if (!s.ok()) return s.WithContext("face " + std::to_string(i));
    }
    std::lock_guard w(write_mu_);
    EnrollResult result;
    std::vector<std::vector<float>> units(faces.size());
    {
        std::shared_lock lock(mu_);
        if (!model_id_.empty() && options.model_id != model_id_) {
            FG_ASSIGN_OR_RETURN(std::int64_t n, store_->CountTemplates());
            if (n > 0) {
                return FailedPrecondition("cannot enroll embeddings of model '" + options.model_id +
                                          "' into a gallery of model '" + model_id_ +
                                          "' (gallery reembed switches a gallery's model)");
            }
        }
        const int expect = (options.model_id == model_id_) ? dim_ : 0;
        for (size_t i = 0; i < faces.size(); ++i) {
            const auto& v = faces[i].face.embedding;
            if (expect > 0 && int(v.size()) != expect) {
                return InvalidArgument("face " + std::to_string(i) + ": embedding has " +
                                       std::to_string(v.size()) + " values, the gallery's model " +
                                       model_id_ + " gives " + std::to_string(expect));
            }
            if (i > 0 && v.size() != faces[0].face.embedding.size()) {
                return InvalidArgument("face " + std::to_string(i) + " has " +
                                       std::to_string(v.size()) + " values, face 0 has " +
                                       std::to_string(faces[0].face.embedding.size()));
            }
            Status s = CheckEmbedding(v, units[i], expect > 0);
            if (!s.ok()) return s.WithContext("face " + std::to_string(i));
        }
    }
    const int dim = int(units[0].size());
    if (options.model_id != model_id_ || dim != dim_) {
        FG_RETURN_IF_ERROR(store_->PutSetting("model_id", options.model_id));
        FG_RETURN_IF_ERROR(store_->PutSetting("dim", std::to_string(dim)));
        std::unique_lock lock(mu_);
        model_id_ = options.model_id;
        dim_ = dim;
        index_.reset();
    }
    std::vector<TemplateRecord> records;
    records.reserve(faces.size());
    std::vector<size_t> kept;
    kept.reserve(faces.size());
    {
        std::shared_lock lock(mu_);
        const bool keep_crops = settings_.keep_crops;
        const std::string aad = TemplateAad(options.model_id);
        for (size_t i = 0; i < faces.size(); ++i) {
            const std::string& subject_id = faces[i].subject_id;
            if (!options.force && index_ && index_->size() > 0) {
                FG_ASSIGN_OR_RETURN(auto nn, index_->Search(units[i], 16));
                bool dup = false;
                for (const Neighbor& n : nn) {
                    if (n.score < settings_.duplicate_threshold) break;
                    auto it = face_subject_.find(n.id);
                    if (it != face_subject_.end() && subject_names_[it->second] != subject_id) {
                        char buf[64];
                        std::snprintf(buf, sizeof buf, "%.3f", n.score);
                        result.rejected.push_back({i, "duplicate_of_other_subject",
                                                   "looks like subject '" +
                                                       subject_names_[it->second] + "' (score " +
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
            r.key_id = keys_->current_id();
            FG_ASSIGN_OR_RETURN(r.sealed, keys_->Seal(units[i], aad));
            if (keep_crops && !faces[i].face.crop.empty()) {
                FG_ASSIGN_OR_RETURN(r.crop, keys_->SealBytes(faces[i].face.crop, CropAad()));
            }
            r.quality = faces[i].face.quality;
            r.source = faces[i].face.source;
            records.push_back(std::move(r));
            kept.push_back(i);
        }
    }
    if (records.empty()) return result;
    std::vector<Subject> create;
    if (options.create_subject) {
        for (size_t i : kept) {
            const BulkFace& f = faces[i];
            if (!create.empty() && create.back().id == f.subject_id) continue;
            create.push_back(Subject{
                f.subject_id, f.display_name.empty() ? options.display_name : f.display_name,
                metadata});
        }
    }
    FG_ASSIGN_OR_RETURN(result.face_ids, store_->AddBulk(create, records));
    // The store is the source of truth and has committed; the index follows.
    std::unique_lock lock(mu_);
    std::uint32_t sid = 0;
    for (size_t k = 0; k < kept.size(); ++k) {
        if (k == 0 || faces[kept[k]].subject_id != faces[kept[k - 1]].subject_id)
            sid = InternSubject(faces[kept[k]].subject_id);
        face_subject_[result.face_ids[k]] = sid;
    }
    std::vector<float> flat;
    flat.reserve(kept.size() * size_t(dim));
    for (size_t i : kept) flat.insert(flat.end(), units[i].begin(), units[i].end());
    if (!index_) {
        FG_ASSIGN_OR_RETURN(index_, FaceIndex::Build(ResolvedIndexConfig(), result.face_ids, flat));
    } else {
        Status s = index_->Add(result.face_ids, flat);
        if (!s.ok()) FG_RETURN_IF_ERROR(RebuildIndex("index add failed: " + s.message()));
    }
    snapshot_stale_ = true;
    index_source_ = index_source_.empty() ? "built" : index_source_;
    FG_RETURN_IF_ERROR(MaybeUpgradeIndex());
    return result;
}

Result<std::int64_t> Gallery::Reembed(const std::string& model_id, const CropEmbedder& embed,
                                      std::optional<float> new_threshold) {
    if (model_id.empty()) return InvalidArgument("re-embedding needs the new model id");
    if (new_threshold && !(*new_threshold >= -1.f && *new_threshold <= 1.f))
        return InvalidArgument("threshold must be in -1..1");
    std::lock_guard w(write_mu_);
    FG_ASSIGN_OR_RETURN(std::int64_t total, store_->CountTemplates());
    FG_ASSIGN_OR_RETURN(std::int64_t missing, store_->CountTemplatesWithoutCrop());
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
    FG_RETURN_IF_ERROR(store_->ForEachTemplate(
        [&](const TemplateRecord& r) -> Status {
            FG_ASSIGN_OR_RETURN(std::vector<std::uint8_t> crop,
                                keys_->OpenBytes(r.crop, r.key_id, CropAad()));
            FG_ASSIGN_OR_RETURN(std::vector<float> v, embed(crop));
            std::vector<float> unit;
            Status s = CheckEmbedding(std::span<const float>(v), unit, false);
            if (!s.ok()) return s.WithContext("re-embedding face " + std::to_string(r.face_id));
            if (dim == 0) dim = int(unit.size());
            if (int(unit.size()) != dim) return Internal("the new embedder changed dimension");
            TemplateRecord t;
            t.face_id = r.face_id;
            t.model_id = model_id;
            t.dim = dim;
            t.key_id = keys_->current_id();
            FG_ASSIGN_OR_RETURN(t.sealed, keys_->Seal(unit, aad));
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
    FG_RETURN_IF_ERROR(store_->ReplaceTemplates(updated, put));
    std::unique_lock lock(mu_);
    settings_ = next;
    if (!updated.empty()) {
        model_id_ = model_id;
        dim_ = dim;
        FG_ASSIGN_OR_RETURN(index_, FaceIndex::Build(ResolvedIndexConfig(), ids, vectors));
        index_source_ = "rebuilt: re-embedded";
    }
    snapshot_stale_ = true;
    // The old snapshot holds the old model's vectors: never load it again.
    if (!options_.snapshot_path.empty()) {
        std::error_code ec;
        std::filesystem::remove(options_.snapshot_path, ec);
    }
    return std::int64_t(updated.size());
}

Status Gallery::CheckConsistency() {
    std::lock_guard w(write_mu_);
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, store_->ListFaceRefs());
    std::shared_lock lock(mu_);
    std::vector<std::int64_t> store_ids;
    store_ids.reserve(refs.size());
    for (const FaceRef& r : refs) store_ids.push_back(r.face_id);
    const std::vector<std::int64_t> index_ids =
        index_ ? index_->Ids() : std::vector<std::int64_t>{};
    if (index_ids != store_ids) {
        return DataLoss("the index holds " + std::to_string(index_ids.size()) +
                        " templates, the store " + std::to_string(store_ids.size()) +
                        " (or other ids)");
    }
    if (face_subject_.size() != refs.size())
        return DataLoss("face -> subject map size differs from the store");
    for (const FaceRef& r : refs) {
        auto it = face_subject_.find(r.face_id);
        if (it == face_subject_.end() || subject_names_[it->second] != r.subject_id) {
            return DataLoss("face " + std::to_string(r.face_id) + " belongs to '" + r.subject_id +
                            "' in the store but not in memory");
        }
    }
    return Status::Ok();
}

Status Gallery::MaybeUpgradeIndex() {
    // Runs under Enroll's exclusive lock: exact search stops meeting the latency target past
    // auto_scan_above, so an "auto" gallery switches to the scan index once, when it crosses it.
    if (settings_.index != "auto" || !index_ || index_->kind() != IndexKind::kFlat)
        return Status::Ok();
    const IndexConfig c = ResolvedIndexConfig();
    if (index_->size() <= c.auto_scan_above) return Status::Ok();
    std::vector<std::int64_t> ids;
    std::vector<float> vectors;
    FG_RETURN_IF_ERROR(index_->ExportVectors(ids, vectors));
    FG_ASSIGN_OR_RETURN(index_, FaceIndex::Build(c, ids, vectors));
    spdlog::info("gallery index switched to {} at {} templates", IndexKindName(index_->kind()),
                 ids.size());
    return Status::Ok();
}

Result<Identification> Gallery::Identify(const vision::Embedding& probe, int top_k) const {
    std::shared_lock lock(mu_);
    std::vector<float> unit;
    FG_RETURN_IF_ERROR(CheckProbe(probe, unit));
    Identification out;
    out.threshold = settings_.threshold;
    out.margin = settings_.margin;
    const int k = top_k > 0 ? top_k : settings_.top_k;
    if (!index_ || index_->size() == 0) {
        out.reason = "empty_gallery";
        return out;
    }
    // Subjects own several templates: fetch templates until k distinct subjects (max-aggregated)
    // are found, or the whole gallery was seen.
    std::vector<Candidate> best;
    for (int fetch = std::max(32, 8 * (k + 1));; fetch *= 4) {
        FG_ASSIGN_OR_RETURN(std::vector<Neighbor> nn, index_->Search(unit, fetch));
        best.clear();
        std::unordered_map<std::uint32_t, size_t> seen;
        for (const Neighbor& n : nn) {
            auto it = face_subject_.find(n.id);
            if (it == face_subject_.end()) continue;
            if (seen.count(it->second)) continue;  // results are sorted: the first is the max
            seen.emplace(it->second, best.size());
            best.push_back({subject_names_[it->second], "", n.score, n.id});
        }
        if (int(best.size()) >= k + 1 || std::int64_t(nn.size()) >= index_->size() ||
            fetch > (1 << 20))
            break;
    }
    const float runner_up = best.size() > 1 ? best[1].score : -1.f;
    if (int(best.size()) > k) best.resize(size_t(k));
    out.candidates = std::move(best);
    const Candidate& top = out.candidates.front();
    if (top.score < settings_.threshold) {
        out.reason = "below_threshold";
    } else if (top.score - runner_up < settings_.margin) {
        out.reason = "ambiguous";
    } else {
        out.known = true;
        out.subject_id = top.subject_id;
        out.reason = "match";
    }
    lock.unlock();
    for (Candidate& c : out.candidates) {
        auto s = store_->GetSubject(c.subject_id);
        if (s.ok()) c.display_name = s->display_name;
    }
    return out;
}

Result<float> Gallery::Verify(const vision::Embedding& probe, const std::string& subject_id) const {
    std::vector<float> unit;
    {
        std::shared_lock lock(mu_);
        FG_RETURN_IF_ERROR(CheckProbe(probe, unit));
    }
    FG_RETURN_IF_ERROR(store_->GetSubject(subject_id).status());
    FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, store_->GetTemplates(subject_id));
    if (records.empty())
        return FailedPrecondition("subject '" + subject_id + "' has no face templates");
    float best = -2.f;
    for (const TemplateRecord& r : records) {
        FG_ASSIGN_OR_RETURN(std::vector<float> v,
                            keys_->Open(r.sealed, r.key_id, TemplateAad(r.model_id)));
        if (v.size() != unit.size()) return DataLoss("stored template has a different dimension");
        float dot = 0;
        for (size_t i = 0; i < v.size(); ++i) dot += v[i] * unit[i];
        best = std::max(best, dot);
    }
    return best;
}

Result<std::int64_t> Gallery::RotateKey(std::shared_ptr<const KeyRing> keys) {
    if (!keys) return InvalidArgument("no key");
    std::lock_guard w(write_mu_);
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, store_->ListFaceRefs());
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
        FG_RETURN_IF_ERROR(store_->UpdateSealed(batch));
        done += std::int64_t(batch.size());
        batch.clear();
        return Status::Ok();
    };
    for (const std::string& s : subjects) {
        FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, store_->GetTemplates(s));
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
    std::unique_lock lock(mu_);
    keys_ = std::move(keys);
    snapshot_stale_ = true;
    // The old snapshot is sealed with the old key: drop it rather than leave it behind.
    if (!options_.snapshot_path.empty()) {
        std::error_code ec;
        std::filesystem::remove(options_.snapshot_path, ec);
    }
    return done;
}

Result<nlohmann::json> Gallery::Export() {
    nlohmann::json doc;
    doc["format"] = "facegate-gallery";
    doc["version"] = kExportVersion;
    doc["exported_at"] = NowSeconds();
    doc["model_id"] = model_id();
    doc["dim"] = dim();
    doc["settings"] = settings().ToJson();
    nlohmann::json subjects = nlohmann::json::array();
    std::string after;
    for (;;) {
        FG_ASSIGN_OR_RETURN(ListPage page, store_->ListSubjects(after, 500));
        for (const Subject& s : page.subjects) {
            nlohmann::json js{{"id", s.id},
                              {"display_name", s.display_name},
                              {"metadata", nlohmann::json::parse(s.metadata, nullptr, false)},
                              {"created_at", s.created_at},
                              {"updated_at", s.updated_at}};
            nlohmann::json faces = nlohmann::json::array();
            FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, store_->GetTemplates(s.id));
            for (const TemplateRecord& r : records) {
                FG_ASSIGN_OR_RETURN(std::vector<float> v,
                                    keys_->Open(r.sealed, r.key_id, TemplateAad(r.model_id)));
                faces.push_back({{"embedding", v},
                                 {"model_id", r.model_id},
                                 {"quality", r.quality},
                                 {"source", r.source},
                                 {"created_at", r.created_at}});
            }
            js["faces"] = std::move(faces);
            subjects.push_back(std::move(js));
        }
        if (page.next_after.empty()) break;
        after = page.next_after;
    }
    doc["subjects"] = std::move(subjects);
    return doc;
}

Result<std::int64_t> Gallery::Import(const nlohmann::json& doc, bool skip_existing) {
    if (!doc.is_object() || doc.value("format", "") != "facegate-gallery") {
        return InvalidArgument("not a facegate gallery export (format != facegate-gallery)");
    }
    const int version = doc.value("version", 0);
    if (version < 1 || version > kExportVersion) {
        return InvalidArgument("unsupported export version " + std::to_string(version) +
                               " (this facegate reads 1.." + std::to_string(kExportVersion) + ")");
    }
    if (!doc.contains("subjects") || !doc["subjects"].is_array())
        return InvalidArgument("export has no subjects");
    std::int64_t imported = 0;
    try {
        if (doc.contains("settings")) {
            GallerySettings s = settings();
            FG_RETURN_IF_ERROR(s.Update(doc["settings"]));
            FG_RETURN_IF_ERROR(UpdateSettings(s));
        }
        for (const nlohmann::json& js : doc["subjects"]) {
            const std::string id = js.at("id").get<std::string>();
            FG_RETURN_IF_ERROR(ValidateSubjectId(id));
            if (store_->GetSubject(id).ok()) {
                if (skip_existing) continue;
                return AlreadyExists("subject '" + id +
                                     "' already exists in the gallery (use --skip-existing)");
            }
            const std::string meta = js.contains("metadata") ? js["metadata"].dump() : "{}";
            const std::string name = js.value("display_name", id);
            std::vector<NewFace> faces;
            std::string model = doc.value("model_id", "");
            for (const nlohmann::json& jf : js.value("faces", nlohmann::json::array())) {
                NewFace f;
                f.embedding = jf.at("embedding").get<std::vector<float>>();
                f.quality = jf.value("quality", -1.f);
                f.source = jf.value("source", "import");
                model = jf.value("model_id", model);
                faces.push_back(std::move(f));
            }
            if (faces.empty()) {
                FG_RETURN_IF_ERROR(CreateSubject({id, name, meta}));
                continue;
            }
            auto r = Enroll(id,
                            {.model_id = model,
                             .create_subject = true,
                             .display_name = name,
                             .metadata = meta,
                             .force = true},
                            faces);
            if (!r.ok()) return r.status().WithContext("subject " + id);
            imported += std::int64_t(r->face_ids.size());
        }
    } catch (const std::exception& e) {
        return InvalidArgument(std::string("malformed export: ") + e.what());
    }
    return imported;
}

}  // namespace fg::gallery
