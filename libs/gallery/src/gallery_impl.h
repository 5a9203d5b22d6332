// SPDX-License-Identifier: Apache-2.0
// Private state of fg::gallery::Gallery, shared by the files that implement it:
//   gallery.cc           open, settings, enroll, identify, verify, consistency, read-only views
//   gallery_admin.cc     subject edits, remove face, re-embed, key rotation
//   gallery_export.cc    the documented export and its import
//   gallery_snapshot.cc  index load from a sealed snapshot or rebuild from the store, save
//   gallery_follow.cc    the change log: Refresh and the follower thread
#pragma once

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
    std::int64_t applied_seq = 0;
    std::unordered_set<std::int64_t> own_seqs;
    std::mutex follow_mu;
    std::condition_variable follow_cv;
    bool follow_stop = false;
    std::thread follower;

    // gallery_follow.cc (write_mu held by the caller for Refresh and ApplyChange)
    Result<int> Refresh();
    Status ApplyChange(const Change& c);
    Status ApplyAdded(const std::vector<std::int64_t>& face_ids);
    Status ApplyRemoved(const std::vector<std::int64_t>& face_ids);
    Status ApplySettings(bool reembedded);
    void FollowLoop(std::chrono::milliseconds interval);

    // gallery.cc
    Status LoadSettings();
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

// AAD binding a sealed blob to what it is (a template of one model, or a crop).
inline std::string TemplateAad(const std::string& model_id) { return "fg-template-v1|" + model_id; }
inline std::string CropAad() { return "fg-crop-v1"; }

Status ValidateSubjectId(const std::string& id);
Status ValidateMetadata(const std::string& text);

}  // namespace fg::gallery
