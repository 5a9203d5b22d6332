// SPDX-License-Identifier: Apache-2.0
// The documented, versioned gallery export (docs/gallery.md) and its import. Export streams JSON
// Lines (version 2) and import reads them line by line in bounded batches; the version-1 single
// document is still read. Import goes through the enrollment path, so an imported gallery is
// checked like an enrolled one.
#include <algorithm>
#include <climits>
#include <exception>
#include <functional>
#include <istream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "fg/gallery/export_format.h"
#include "fg/gallery/gallery.h"
#include "gallery_impl.h"

namespace fg::gallery {
Result<nlohmann::json> Gallery::Export() {
    Impl& m = *impl_;
    std::shared_ptr<const KeyRing> keys;  // copied under the lock: RotateKey swaps it
    {
        std::shared_lock lock(m.mu);
        keys = m.keys;
    }
    nlohmann::json doc;
    doc["format"] = "facegate-gallery";
    doc["version"] = 1;  // the single-document form; ExportTo writes version 2
    doc["exported_at"] = NowSeconds();
    doc["model_id"] = model_id();
    doc["dim"] = dim();
    doc["settings"] = settings().ToJson();
    nlohmann::json subjects = nlohmann::json::array();
    std::string after;
    for (;;) {
        FG_ASSIGN_OR_RETURN(ListPage page, m.store->ListSubjects(after, 500));
        for (const Subject& s : page.subjects) {
            nlohmann::json js{{"id", s.id},
                              {"display_name", s.display_name},
                              {"metadata", nlohmann::json::parse(s.metadata, nullptr, false)},
                              {"created_at", s.created_at},
                              {"updated_at", s.updated_at}};
            nlohmann::json faces = nlohmann::json::array();
            FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, m.store->GetTemplates(s.id));
            for (const TemplateRecord& r : records) {
                FG_ASSIGN_OR_RETURN(std::vector<float> v, m.OpenTemplateLatest(keys, r));
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

namespace {

/// Enrolls a stream of export records in bounded batches. A batch holds up to `batch` faces
/// (and the subjects they belong to) or `batch` face-less subjects; it is checked against the
/// store (existing ids) in one query, then committed in one transaction. Faces follow their
/// subject's record; a subject's faces may span two batches.
/// Thread-safety: none (one import, one thread); the gallery serialises the writes.
class Importer {
  public:
    using Enroll =
        std::function<Result<EnrollResult>(std::span<const BulkFace>, const EnrollOptions&)>;
    Importer(Gallery& g, Store& store, const ImportOptions& o, Enroll enroll, std::string unit)
        : g_(g), store_(store), o_(o), enroll_(std::move(enroll)), unit_(std::move(unit)) {}

    Status Add(ExportLine line, std::int64_t n) {
        if (std::holds_alternative<std::monostate>(line)) return Status::Ok();
        Status s;
        if (auto* h = std::get_if<ExportHeader>(&line)) {
            s = OnHeader(*h);
        } else if (!header_) {
            s = InvalidArgument("the first record must be the export header (\"format\")");
        } else if (auto* sub = std::get_if<ExportSubject>(&line)) {
            s = OnSubject(std::move(*sub), n);
        } else {
            s = OnFace(std::move(std::get<ExportFace>(line)), n);
        }
        if (s.ok() || std::exchange(batch_failed_, false)) return s;  // a batch names its lines
        return s.WithContext(unit_ + " " + std::to_string(n));
    }

    Result<std::int64_t> Finish() {
        if (!header_) return InvalidArgument("empty export (no header)");
        FG_RETURN_IF_ERROR(Flush());
        return imported_;
    }

  private:
    struct Pending {
        ExportSubject subject;
        std::int64_t line = 0;
        bool has_faces = false;
    };

    Status OnHeader(const ExportHeader& h) {
        if (header_) return InvalidArgument("a second export header");
        header_ = true;
        model_ = h.model_id;
        if (h.settings.is_object()) {
            GallerySettings s = g_.settings();
            FG_RETURN_IF_ERROR(s.Update(h.settings));
            FG_RETURN_IF_ERROR(g_.UpdateSettings(s));
        }
        return Status::Ok();
    }

    Status OnSubject(ExportSubject s, std::int64_t n) {
        FG_RETURN_IF_ERROR(ValidateSubjectId(s.id));
        if (!in_batch_.insert(s.id).second)
            return InvalidArgument("subject '" + s.id + "' appears twice");
        if (int(pending_.size()) >= o_.batch) FG_RETURN_IF_ERROR(Flush());
        in_batch_.insert(s.id);
        if (s.display_name.empty()) s.display_name = s.id;
        current_ = s.id;
        skip_current_ = false;
        pending_.push_back({std::move(s), n, false});
        return Status::Ok();
    }

    Status OnFace(ExportFace f, std::int64_t n) {
        if (!current_ || f.subject_id != *current_) {
            return InvalidArgument("face of '" + f.subject_id +
                                   "' does not follow its subject's record");
        }
        if (skip_current_) return Status::Ok();  // an existing subject, --skip-existing
        const std::string model = f.model_id.empty() ? model_ : f.model_id;
        if (batch_model_.empty()) batch_model_ = model;
        if (model != batch_model_) {
            return InvalidArgument("model_id '" + model + "' differs from '" + batch_model_ +
                                   "' of the earlier faces");
        }
        Pending* p = pending_.empty() ? nullptr : &pending_.back();
        BulkFace b;
        b.subject_id = f.subject_id;
        b.face.embedding = std::move(f.embedding);
        b.face.quality = f.quality;
        b.face.source = f.source.empty() ? "import" : f.source;
        if (p && p->subject.id == f.subject_id) {
            p->has_faces = true;
            b.display_name = p->subject.display_name;
            b.metadata = p->subject.metadata;
        }
        faces_.push_back(std::move(b));
        lines_.push_back(n);
        if (int(faces_.size()) >= o_.batch) return Flush();
        return Status::Ok();
    }

    Status Flush() {
        if (pending_.empty() && faces_.empty()) return Status::Ok();
        // Faces of a subject begun in the previous batch may come before the first subject.
        std::int64_t first = INT64_MAX, last = 0;
        if (!pending_.empty()) {
            first = pending_.front().line;
            last = pending_.back().line;
        }
        if (!lines_.empty()) {
            first = std::min(first, lines_.front());
            last = std::max(last, lines_.back());
        }
        Status s = Commit();
        pending_.clear();
        faces_.clear();
        lines_.clear();
        in_batch_.clear();
        batch_model_.clear();
        if (!s.ok()) {
            batch_failed_ = true;
            return s.WithContext(unit_ + "s " + std::to_string(first) + ".." +
                                 std::to_string(last) + " (this batch was not imported)");
        }
        return Status::Ok();
    }

    Status Commit() {
        // Existing subjects, in one query for the whole batch.
        std::vector<std::string> ids;
        ids.reserve(pending_.size());
        for (const Pending& p : pending_) ids.push_back(p.subject.id);
        FG_ASSIGN_OR_RETURN(auto existing, store_.GetDisplayNames(ids));
        std::unordered_set<std::string> skip;
        for (const Pending& p : pending_) {
            if (!existing.count(p.subject.id)) continue;
            if (!o_.skip_existing) {
                return AlreadyExists(unit_ + " " + std::to_string(p.line) + ": subject '" +
                                     p.subject.id +
                                     "' already exists in the gallery (use --skip-existing)");
            }
            skip.insert(p.subject.id);
        }
        if (current_ && skip.count(*current_)) skip_current_ = true;  // its later faces too
        if (!skip.empty()) {
            std::erase_if(faces_, [&](const BulkFace& f) { return skip.count(f.subject_id); });
        }
        if (!faces_.empty()) {
            // Recorded as "import" in the change log; force: the export was checked already.
            auto r = enroll_(faces_, {.model_id = batch_model_.empty() ? "external" : batch_model_,
                                      .create_subject = true,
                                      .force = true});
            FG_RETURN_IF_ERROR(r.status());
            imported_ += std::int64_t(r->face_ids.size());
        }
        for (const Pending& p : pending_) {
            if (p.has_faces || skip.count(p.subject.id)) continue;
            FG_RETURN_IF_ERROR(
                g_.CreateSubject({p.subject.id, p.subject.display_name, p.subject.metadata}));
        }
        return Status::Ok();
    }

    Gallery& g_;
    Store& store_;
    const ImportOptions o_;
    Enroll enroll_;
    const std::string unit_;  // "line" or "record", for error messages
    bool header_ = false;
    std::string model_;        // the header's
    std::string batch_model_;  // of the faces in the batch
    std::optional<std::string> current_;
    bool skip_current_ = false;
    bool batch_failed_ = false;  // the error being returned is a batch's (names its lines)
    std::vector<Pending> pending_;  // subjects of the batch, in file order
    std::unordered_set<std::string> in_batch_;
    std::vector<BulkFace> faces_;
    std::vector<std::int64_t> lines_;  // of faces_
    std::int64_t imported_ = 0;
};

constexpr size_t kMaxLine = 16u << 20;  // a 65536-value face is ~1 MiB; bounds hostile input

/// std::getline that stops at kMaxLine (too_long) instead of growing without bound.
bool ReadLine(std::istream& in, std::string& line, bool& too_long) {
    line.clear();
    too_long = false;
    std::streambuf* sb = in.rdbuf();
    for (;;) {
        const int c = sb->sbumpc();
        if (c == std::char_traits<char>::eof()) {
            in.setstate(std::ios::eofbit);
            return !line.empty();
        }
        if (c == '\n') return true;
        line.push_back(char(c));
        if (line.size() >= kMaxLine && sb->sgetc() != '\n') {
            too_long = true;  // the rest of the line is still in the stream
            return true;
        }
    }
}

Status FeedAll(Importer& im, std::vector<ExportLine> lines) {
    std::int64_t n = 0;
    for (ExportLine& l : lines) {
        ++n;
        FG_RETURN_IF_ERROR(im.Add(std::move(l), n));
    }
    return Status::Ok();
}

}  // namespace

Result<std::int64_t> Gallery::Import(const nlohmann::json& doc, bool skip_existing) {
    FG_ASSIGN_OR_RETURN(std::vector<ExportLine> lines, ParseExportDocument(doc));
    Importer im(*this, *impl_->store, {.skip_existing = skip_existing},
                [this](std::span<const BulkFace> f, const EnrollOptions& o) {
                    return EnrollBulkAs(f, o, "import");
                },
                "record");
    FG_RETURN_IF_ERROR(FeedAll(im, std::move(lines)));
    return im.Finish();
}

Result<std::int64_t> Gallery::ImportFrom(std::istream& in, const ImportOptions& options) {
    if (options.batch < 1) return InvalidArgument("import batch must be at least 1");
    Importer im(*this, *impl_->store, options,
                [this](std::span<const BulkFace> f, const EnrollOptions& o) {
                    return EnrollBulkAs(f, o, "import");
                },
                "line");
    std::string line;
    bool too_long = false, first = true;
    std::int64_t n = 0;
    while (ReadLine(in, line, too_long)) {
        ++n;
        if (first && line.find_first_not_of(" \t\r") == std::string::npos) continue;
        Result<ExportLine> parsed = too_long ? Result<ExportLine>(InvalidArgument(
                                                   "line longer than 16 MiB"))
                                             : ParseExportLine(line);
        if (first) {
            // Version 1 is one document (on one long line, or pretty-printed over many): its
            // first line is not a version-2 record. Read whole, as before.
            first = false;
            const bool v1 = parsed.ok() && std::holds_alternative<ExportHeader>(*parsed) &&
                            std::get<ExportHeader>(*parsed).version == 1;
            if (v1 || too_long || !nlohmann::json::accept(line)) {
                std::string rest = line + (too_long ? "" : "\n");
                rest.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
                nlohmann::json doc = nlohmann::json::parse(rest, nullptr, false);
                if (doc.is_discarded()) {
                    return parsed.ok() ? InvalidArgument("malformed version-1 export")
                                       : parsed.status().WithContext("line " + std::to_string(n));
                }
                return Import(doc, options.skip_existing);
            }
        }
        if (!parsed.ok()) return parsed.status().WithContext("line " + std::to_string(n));
        FG_RETURN_IF_ERROR(im.Add(std::move(*parsed), n));
    }
    if (in.bad()) return Unavailable("read error at line " + std::to_string(n + 1));
    return im.Finish();
}

Status Gallery::ExportTo(std::ostream& out) {
    Impl& m = *impl_;
    std::shared_ptr<const KeyRing> keys;  // copied under the lock: RotateKey swaps it
    {
        std::shared_lock lock(m.mu);
        keys = m.keys;
    }
    auto write = [&](const ExportLine& l) -> Status {
        FG_ASSIGN_OR_RETURN(std::string text, FormatExportLine(l));
        out << text;
        return out ? Status::Ok() : Unavailable("cannot write the export (disk full?)");
    };
    FG_RETURN_IF_ERROR(write(ExportHeader{.version = kExportVersion,
                                          .exported_at = NowSeconds(),
                                          .model_id = model_id(),
                                          .dim = dim(),
                                          .settings = settings().ToJson()}));
    std::string after;
    for (;;) {
        FG_ASSIGN_OR_RETURN(ListPage page, m.store->ListSubjects(after, 500));
        for (const Subject& s : page.subjects) {
            FG_RETURN_IF_ERROR(write(ExportSubject{s.id, s.display_name, s.metadata,
                                                   s.created_at, s.updated_at}));
            FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, m.store->GetTemplates(s.id));
            for (const TemplateRecord& r : records) {
                FG_ASSIGN_OR_RETURN(std::vector<float> v, m.OpenTemplateLatest(keys, r));
                FG_RETURN_IF_ERROR(write(ExportFace{.subject_id = s.id,
                                                    .embedding = std::move(v),
                                                    .model_id = r.model_id,
                                                    .quality = r.quality,
                                                    .source = r.source,
                                                    .created_at = r.created_at}));
            }
        }
        if (page.next_after.empty()) break;
        after = page.next_after;
    }
    out.flush();
    return out ? Status::Ok() : Unavailable("cannot write the export (disk full?)");
}

}  // namespace fg::gallery
