// SPDX-License-Identifier: Apache-2.0
// Private state of fg::gallery::Gallery, shared by the files that implement it:
//   gallery.cc           open, settings, enroll, identify, verify, consistency, read-only views
//   gallery_admin.cc     subject edits, remove face, re-embed, key rotation
//   gallery_export.cc    the documented export and its import
//   gallery_snapshot.cc  index load from a sealed snapshot or rebuild from the store, save
//   gallery_follow.cc    the change log: Refresh and the follower thread
//   gallery_integrity.cc row bindings, authenticated settings, v3 migration
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fg/gallery/gallery.h"
#include "name_cache.h"

namespace fg::gallery {

/// Thread-safety: `mu` guards index, face_subject, subject_names/index, settings, model_id,
/// dim, keys, index_source and snapshot_stale (shared for readers, exclusive to change them);
/// `write_mu` serialises mutations, which commit to the store first and then update the
/// in-memory state under `mu` (holding `write_mu` they may read it without `mu`: only
/// mutations change it). `options` and `store` are set once by Open (the store serialises its
/// own calls). `applied_seq` and `own_seqs` (the change log position) are guarded by
/// `write_mu`; `follow_stop` and `follower` by `follow_mu`.
struct Gallery::Impl {
    GalleryOptions options;
    std::unique_ptr<Store> store;
    std::shared_ptr<const KeyRing> keys;
    GallerySettings settings;
    std::string model_id;
    int dim = 0;
    std::unique_ptr<FaceIndex> index;
    std::string index_source;
    bool snapshot_stale = true;
    // face id -> subject, interned so a million templates cost a few bytes each.
    std::unordered_map<std::int64_t, std::uint32_t> face_subject;
    std::vector<std::string> subject_names;
    std::unordered_map<std::string, std::uint32_t> subject_index;
    mutable std::shared_mutex mu;
    std::mutex write_mu;
    // Change log position: every change up to applied_seq is reflected in memory; own_seqs are
    // this gallery's committed changes not yet passed by Refresh (already in memory).
    // Atomic so applied_change() never waits behind a long Refresh (shard replicas report it
    // with every answer); written only with write_mu held.
    std::atomic<std::int64_t> applied_seq{0};
    std::unordered_set<std::int64_t> own_seqs;
    std::mutex follow_mu;
    std::condition_variable follow_cv;
    bool follow_stop = false;
    std::thread follower;
    // Identify's display names: one store query, a cache for outages (thread-safe itself).
    mutable internal::NameCache names;
    // Integrity format (docs/gallery.md, "Integrity"). Set by Open only, before the gallery is
    // shared: true while a v3 gallery (templates bound to their model only, settings in clear)
    // is being migrated, when the old associated data and unauthenticated settings are accepted.
    bool accept_legacy = false;

    // gallery_follow.cc (write_mu held by the caller for Refresh and ApplyChange)
    Result<int> Refresh();
    Status ApplyChange(const Change& c);
    Status ApplyAdded(const std::vector<std::int64_t>& face_ids);
    Status ApplyRemoved(const std::vector<std::int64_t>& face_ids);
    Status ApplySettings(bool reembedded);
    void FollowLoop(std::chrono::milliseconds interval);

    // gallery.cc
    Status LoadSettings();
    /// Up to `k` best subjects (max over their templates), best first. Caller holds `mu`.
    Result<std::vector<Candidate>> NearestLocked(std::span<const float> unit, int k) const;
    /// options.holds(subject), true for a full gallery.
    bool Holds(std::string_view subject) const { return !options.holds || options.holds(subject); }
    /// FailedPrecondition naming `what` on a partial replica (it takes no template writes).
    Status RefuseOnPartial(std::string_view what) const;

    // gallery_integrity.cc. ReadSetting/WriteSetting are the ONLY way to read or write a
    // setting (every key: identify, model_id, dim, calibration, ...): values are stored as
    // "fgmac1:<key id>:<hmac>:<value>", the HMAC binding the setting's name and value under a
    // key derived from the gallery key, so a value changed in the database is DataLoss.
    Result<std::optional<std::string>> ReadSetting(const std::string& key) const;
    Result<std::optional<std::string>> ReadSetting(const KeyRing& ring,
                                                   const std::string& key) const;
    Status WriteSetting(const std::string& key, const std::string& value);
    /// The stored form of a setting, MACed with `ring`'s current key (for the store calls that
    /// write settings inside a bigger transaction, like ReplaceTemplates).
    static Result<std::string> SealSetting(const KeyRing& ring, const std::string& key,
                                           const std::string& value);
    /// Open a template / crop checking its binding to its row (face id, subject id, model).
    Result<std::vector<float>> OpenTemplate(const KeyRing& ring, const TemplateRecord& r) const;
    /// OpenTemplate for readers that copied `ring` earlier without holding `mu` (Verify,
    /// Export, the follower): a row sealed with a key the copy lacks (a rotation started since)
    /// re-copies the gallery's ring once. Must not be called with `mu` held.
    Result<std::vector<float>> OpenTemplateLatest(std::shared_ptr<const KeyRing>& ring,
                                                  const TemplateRecord& r) const;
    Result<std::vector<std::uint8_t>> OpenCrop(const KeyRing& ring, const TemplateRecord& r) const;
    /// Seals `values` (and `crop`, when not empty) into `r` for its face id, subject and model,
    /// with `ring`'s current key.
    static Status SealInto(const KeyRing& ring, TemplateRecord& r, std::span<const float> values,
                           std::span<const std::uint8_t> crop);
    /// Opens a gallery's integrity state; migrates a v3 gallery (resumable). Called by Open.
    Status CheckIntegrity();
    /// Re-MACs every known setting under `ring`'s current key (after a rotation).
    Status ResealSettings(const KeyRing& ring);
    IndexConfig ResolvedIndexConfig() const;
    std::uint32_t InternSubject(const std::string& id);
    /// Checks length (against the gallery's dim when `check_dim`), NaN/Inf and zero, and
    /// writes the unit vector to `unit` (inner product is cosine only for unit vectors).
    Status CheckEmbedding(std::span<const float> v, std::vector<float>& unit,
                          bool check_dim = true) const;
    Status CheckProbe(const Embedding& probe, std::vector<float>& unit) const;
    /// Under the exclusive lock: "auto" switches flat -> scan once past auto_scan_above.
    Status MaybeUpgradeIndex();

    // gallery_snapshot.cc
    Status LoadIndex();
    Status RebuildIndex(const std::string& why);
    /// Deletes the snapshot file (after a key or model change it can never be loaded again).
    void RemoveSnapshotFile() const;
};

// AAD binding a sealed blob to its row: face id, subject id (length-prefixed: ids may hold
// '|') and, for templates, the model. v1 (schema 3 galleries) bound the model only; it is read
// only while such a gallery is migrated (gallery_integrity.cc).
std::string TemplateAad(std::int64_t face_id, const std::string& subject_id,
                        const std::string& model_id);
std::string CropAad(std::int64_t face_id, const std::string& subject_id);
inline std::string LegacyTemplateAad(const std::string& model_id) {
    return "fg-template-v1|" + model_id;
}
inline std::string LegacyCropAad() { return "fg-crop-v1"; }
/// Crash tests: when FG_GALLERY_TEST_CRASH_AFTER_BATCH is `batches_done`, dies like kill -9
/// (after that many committed batches of a key rotation or an integrity migration).
void CrashAfterBatchForTest(int batches_done);
/// Setting names every gallery may hold (migration and rotation re-MAC them all).
extern const char* const kSettingKeys[];

Status ValidateSubjectId(const std::string& id);
Status ValidateMetadata(const std::string& text);

}  // namespace fg::gallery
