// SPDX-License-Identifier: Apache-2.0
// The documented, versioned gallery export (docs/gallery.md) and its import. Import goes
// through the public enrollment path, so an imported gallery is checked like an enrolled one.
#include <exception>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "fg/gallery/gallery.h"
#include "gallery_impl.h"

namespace fg::gallery {
namespace {

constexpr int kExportVersion = 1;

}  // namespace

Result<nlohmann::json> Gallery::Export() {
    Impl& m = *impl_;
    std::shared_ptr<const KeyRing> keys;  // copied under the lock: RotateKey swaps it
    {
        std::shared_lock lock(m.mu);
        keys = m.keys;
    }
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
                FG_ASSIGN_OR_RETURN(std::vector<float> v,
                                    keys->Open(r.sealed, r.key_id, TemplateAad(r.model_id)));
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
    Impl& m = *impl_;
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
            if (m.store->GetSubject(id).ok()) {
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
            std::vector<BulkFace> bulk;
            bulk.reserve(faces.size());
            for (NewFace& f : faces) bulk.push_back({id, std::move(f), name});
            // Recorded as "import" in the change log.
            auto r = EnrollBulkAs(bulk,
                                  {.model_id = model,
                                   .create_subject = true,
                                   .display_name = name,
                                   .metadata = meta,
                                   .force = true},
                                  "import");
            if (!r.ok()) return r.status().WithContext("subject " + id);
            imported += std::int64_t(r->face_ids.size());
        }
    } catch (const std::exception& e) {
        return InvalidArgument(std::string("malformed export: ") + e.what());
    }
    return imported;
}

}  // namespace fg::gallery
