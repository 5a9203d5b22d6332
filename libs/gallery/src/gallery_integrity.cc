// SPDX-License-Identifier: Apache-2.0
// Integrity of a gallery's rows and settings (docs/gallery.md, "Integrity" and "Threat model"):
// the associated data binding every sealed template and crop to its row, the HMAC on every
// setting, and the resumable migration of a schema-3 gallery (model-only binding, settings in
// clear) to that format on open.
#include <openssl/crypto.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "fg/gallery/gallery.h"
#include "gallery_impl.h"

namespace fg::gallery {

const char* const kSettingKeys[] = {"identify", "model_id", "dim", "calibration", "rotation",
                                    nullptr};

namespace {

constexpr char kMacPrefix[] = "fgmac1:";
constexpr size_t kMacHex = 64;
// The integrity marker: absent in a schema-3 gallery, "migrating" while it is converted, then
// "2". It is itself MACed, so it cannot be forged or rolled forward without the key.
constexpr char kIntegrityKey[] = "integrity";
constexpr char kIntegrityCurrent[] = "2";
constexpr char kIntegrityMigrating[] = "migrating";

std::string MacInput(const std::string& key, const std::string& value) {
    return "fg-setting-v1|" + std::to_string(key.size()) + ":" + key + "|" + value;
}

struct Wrapped {
    std::string key_id, mac, value;
};

std::optional<Wrapped> Unwrap(const std::string& stored) {
    const size_t a = std::strlen(kMacPrefix);
    if (stored.compare(0, a, kMacPrefix) != 0) return std::nullopt;
    const size_t b = stored.find(':', a);
    if (b == std::string::npos) return std::nullopt;
    const size_t c = b + 1 + kMacHex;
    if (stored.size() < c + 1 || stored[c] != ':') return std::nullopt;
    return Wrapped{stored.substr(a, b - a), stored.substr(b + 1, kMacHex), stored.substr(c + 1)};
}

Status RowTampered(const TemplateRecord& r, const char* what) {
    return DataLoss(std::string(what) + " of face " + std::to_string(r.face_id) + " (subject '" +
                    r.subject_id + "') failed authentication: its sealed data does not belong to "
                    "this row (altered, swapped or moved to another subject in the database); "
                    "refusing it");
}

}  // namespace

std::string TemplateAad(std::int64_t face_id, const std::string& subject_id,
                        const std::string& model_id) {
    return "fg-template-v2|" + std::to_string(face_id) + "|" + std::to_string(subject_id.size()) +
           ":" + subject_id + "|" + model_id;
}

std::string CropAad(std::int64_t face_id, const std::string& subject_id) {
    return "fg-crop-v2|" + std::to_string(face_id) + "|" + std::to_string(subject_id.size()) +
           ":" + subject_id;
}

void CrashAfterBatchForTest(int batches_done) {
    const char* v = std::getenv("FG_GALLERY_TEST_CRASH_AFTER_BATCH");
    if (v && std::atoi(v) == batches_done) ::raise(SIGKILL);
}

Result<std::string> Gallery::Impl::SealSetting(const KeyRing& ring, const std::string& key,
                                               const std::string& value) {
    FG_ASSIGN_OR_RETURN(std::string mac, ring.Mac(ring.current_id(), MacInput(key, value)));
    return kMacPrefix + ring.current_id() + ":" + mac + ":" + value;
}

Result<std::optional<std::string>> Gallery::Impl::ReadSetting(const std::string& key) const {
    std::shared_ptr<const KeyRing> ring;
    {
        std::shared_lock lock(mu);
        ring = keys;
    }
    return ReadSetting(*ring, key);
}

Result<std::optional<std::string>> Gallery::Impl::ReadSetting(const KeyRing& ring,
                                                              const std::string& key) const {
    FG_ASSIGN_OR_RETURN(std::optional<std::string> stored, store->GetSetting(key));
    if (!stored) return stored;
    const std::optional<Wrapped> w = Unwrap(*stored);
    if (!w) {
        if (accept_legacy) return stored;  // a schema-3 gallery being migrated
        return DataLoss("gallery setting '" + key +
                        "' is not authenticated (written to the database directly?); refusing it");
    }
    if (!ring.Has(w->key_id)) {
        return FailedPrecondition(
            "gallery setting '" + key + "' is authenticated with key " + w->key_id +
            ", which is not in the key ring given (wrong key, or an interrupted key rotation: "
            "open with both the new and the old key and run rotate-key again)");
    }
    FG_ASSIGN_OR_RETURN(std::string mac, ring.Mac(w->key_id, MacInput(key, w->value)));
    if (CRYPTO_memcmp(mac.data(), w->mac.data(), kMacHex) != 0) {
        return DataLoss("gallery setting '" + key +
                        "' failed authentication (changed in the database); refusing it");
    }
    return std::optional<std::string>(w->value);
}

Status Gallery::Impl::WriteSetting(const std::string& key, const std::string& value) {
    std::shared_ptr<const KeyRing> ring;
    {
        std::shared_lock lock(mu);
        ring = keys;
    }
    FG_ASSIGN_OR_RETURN(std::string sealed, SealSetting(*ring, key, value));
    return store->PutSetting(key, sealed);
}

Result<std::vector<float>> Gallery::Impl::OpenTemplate(const KeyRing& ring,
                                                       const TemplateRecord& r) const {
    auto v = ring.Open(r.sealed, r.key_id, TemplateAad(r.face_id, r.subject_id, r.model_id));
    if (v.ok() || v.status().code() != StatusCode::kDataLoss) return v;
    if (accept_legacy) {
        auto old = ring.Open(r.sealed, r.key_id, LegacyTemplateAad(r.model_id));
        if (old.ok()) return old;
    }
    return RowTampered(r, "the template");
}

Result<std::vector<float>> Gallery::Impl::OpenTemplateLatest(
    std::shared_ptr<const KeyRing>& ring, const TemplateRecord& r) const {
    if (!ring->Has(r.key_id)) {
        std::shared_lock lock(mu);
        ring = keys;
    }
    return OpenTemplate(*ring, r);
}

Result<std::vector<std::uint8_t>> Gallery::Impl::OpenCrop(const KeyRing& ring,
                                                          const TemplateRecord& r) const {
    auto c = ring.OpenBytes(r.crop, r.key_id, CropAad(r.face_id, r.subject_id));
    if (c.ok() || c.status().code() != StatusCode::kDataLoss) return c;
    if (accept_legacy) {
        auto old = ring.OpenBytes(r.crop, r.key_id, LegacyCropAad());
        if (old.ok()) return old;
    }
    return RowTampered(r, "the face crop");
}

Status Gallery::Impl::SealInto(const KeyRing& ring, TemplateRecord& r,
                               std::span<const float> values, std::span<const std::uint8_t> crop) {
    r.key_id = ring.current_id();
    FG_ASSIGN_OR_RETURN(r.sealed,
                        ring.Seal(values, TemplateAad(r.face_id, r.subject_id, r.model_id)));
    if (crop.empty()) {
        r.crop.clear();
    } else {
        FG_ASSIGN_OR_RETURN(r.crop, ring.SealBytes(crop, CropAad(r.face_id, r.subject_id)));
    }
    return Status::Ok();
}

Status Gallery::Impl::ResealSettings(const KeyRing& ring) {
    for (const char* const* k = kSettingKeys; *k; ++k) {
        FG_ASSIGN_OR_RETURN(std::optional<std::string> v, ReadSetting(ring, *k));
        if (!v) continue;
        FG_ASSIGN_OR_RETURN(std::string sealed, SealSetting(ring, *k, *v));
        FG_RETURN_IF_ERROR(store->PutSetting(*k, sealed));
    }
    FG_ASSIGN_OR_RETURN(std::optional<std::string> marker, ReadSetting(ring, kIntegrityKey));
    if (marker) {
        FG_ASSIGN_OR_RETURN(std::string sealed, SealSetting(ring, kIntegrityKey, *marker));
        FG_RETURN_IF_ERROR(store->PutSetting(kIntegrityKey, sealed));
    }
    return Status::Ok();
}

Status Gallery::Impl::CheckIntegrity() {
    FG_ASSIGN_OR_RETURN(std::optional<std::string> raw, store->GetSetting(kIntegrityKey));
    bool fresh = false;
    if (raw) {
        FG_ASSIGN_OR_RETURN(std::optional<std::string> marker, ReadSetting(kIntegrityKey));
        if (*marker == kIntegrityCurrent) return Status::Ok();
        if (*marker != kIntegrityMigrating) {
            return FailedPrecondition("gallery integrity format '" + *marker +
                                      "' is unknown to this facegate (made by a newer version?)");
        }
        spdlog::warn("gallery: resuming the interrupted integrity migration");
    } else {
        // No marker: a schema-3 gallery, or a new one. Authenticated settings mean the marker
        // was deleted, which would re-open the door to unauthenticated data: refuse.
        bool any_setting = false;
        for (const char* const* k = kSettingKeys; *k; ++k) {
            FG_ASSIGN_OR_RETURN(std::optional<std::string> v, store->GetSetting(*k));
            if (v && Unwrap(*v)) {
                return DataLoss("the gallery's integrity marker is missing but its settings are "
                                "authenticated: the database was tampered with");
            }
            any_setting = any_setting || v.has_value();
        }
        FG_ASSIGN_OR_RETURN(std::int64_t n, store->CountTemplates());
        if (n == 0 && !any_setting) return WriteSetting(kIntegrityKey, kIntegrityCurrent);
        fresh = true;
        FG_RETURN_IF_ERROR(WriteSetting(kIntegrityKey, kIntegrityMigrating));
        spdlog::info("gallery: migrating {} templates to the row-bound integrity format", n);
    }
    accept_legacy = true;
    // Per subject, in batches, each batch its own transaction: a crash resumes at the next open
    // (rows already in the new format are skipped).
    FG_ASSIGN_OR_RETURN(std::vector<FaceRef> refs, store->ListFaceRefs());
    std::vector<std::string> subjects;
    for (const FaceRef& r : refs) subjects.push_back(r.subject_id);
    std::sort(subjects.begin(), subjects.end());
    subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());
    std::vector<TemplateRecord> batch;
    std::int64_t migrated = 0;
    int batches = 0;
    for (const std::string& s : subjects) {
        FG_ASSIGN_OR_RETURN(std::vector<TemplateRecord> records, store->GetTemplates(s));
        for (TemplateRecord& r : records) {
            auto current =
                keys->Open(r.sealed, r.key_id, TemplateAad(r.face_id, r.subject_id, r.model_id));
            if (current.ok()) {
                if (fresh) {
                    return DataLoss("face " + std::to_string(r.face_id) +
                                    " is sealed in the current format but the gallery's "
                                    "integrity marker is missing: the database was tampered with");
                }
                continue;
            }
            auto v = keys->Open(r.sealed, r.key_id, LegacyTemplateAad(r.model_id));
            if (!v.ok()) {
                if (v.status().code() != StatusCode::kDataLoss) return v.status();
                return RowTampered(r, "the template");
            }
            std::vector<std::uint8_t> crop;
            if (!r.crop.empty()) {
                auto c = keys->OpenBytes(r.crop, r.key_id, LegacyCropAad());
                if (!c.ok()) return RowTampered(r, "the face crop");
                crop = std::move(*c);
            }
            FG_RETURN_IF_ERROR(SealInto(*keys, r, *v, crop));
            batch.push_back(std::move(r));
        }
        if (int(batch.size()) >= options.rewrite_batch) {
            FG_RETURN_IF_ERROR(store->UpdateSealed(batch));
            migrated += std::int64_t(batch.size());
            batch.clear();
            CrashAfterBatchForTest(++batches);
        }
    }
    if (!batch.empty()) FG_RETURN_IF_ERROR(store->UpdateSealed(batch));
    migrated += std::int64_t(batch.size());
    // Settings last: until the marker says "2" their clear form is still accepted.
    for (const char* const* k = kSettingKeys; *k; ++k) {
        FG_ASSIGN_OR_RETURN(std::optional<std::string> stored, store->GetSetting(*k));
        if (!stored || Unwrap(*stored)) continue;
        FG_RETURN_IF_ERROR(WriteSetting(*k, *stored));
    }
    FG_RETURN_IF_ERROR(WriteSetting(kIntegrityKey, kIntegrityCurrent));
    accept_legacy = false;
    // A snapshot of the old format would only be rebuilt; drop it now.
    RemoveSnapshotFile();
    spdlog::info("gallery: integrity migration done ({} templates re-sealed)", migrated);
    return Status::Ok();
}

}  // namespace fg::gallery
