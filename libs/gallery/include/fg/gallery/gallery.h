// SPDX-License-Identifier: Apache-2.0
// The gallery: enrolled subjects and their encrypted face templates (a Store), a FAISS index
// that always agrees with the store, and 1:N identification with an open-set decision.
//
//   auto keys = std::make_shared<KeyRing>(*LoadKeyFile("gallery.key"));
//   auto g = Gallery::Open({.location = "people.db", .keys = keys});
//   (*g)->Enroll("alice", {.model_id = id}, faces);           // durable when it returns OK
//   auto who = (*g)->Identify(probe);                            // subject or unknown
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/core/embedding.h"
#include "fg/gallery/crypto.h"
#include "fg/gallery/index.h"
#include "fg/gallery/store.h"

namespace fg::gallery {

/// Per-gallery settings, stored in the gallery itself (so every node sharing it agrees).
struct GallerySettings {
    /// Minimum best score to name a subject. A new gallery takes the pack's verify_threshold
    /// (GalleryOptions::default_threshold); 0.40 is vision::DefaultVerifyThreshold's fallback.
    float threshold = 0.40f;
    float margin = 0.05f;              ///< minimum lead of the best subject over the runner-up
    int top_k = 5;                     ///< candidates returned by identify
    float duplicate_threshold = 0.6f;  ///< enrollment refuses a face this close to another subject
    std::string index = "auto";        ///< auto, flat, scan, hnsw, ivf
    /// Opt-in: also store each enrolled face's aligned crop (sealed like the templates), so the
    /// gallery can be re-embedded with another model. Off by default: no face images kept.
    bool keep_crops = false;
    Status Validate() const;
    nlohmann::json ToJson() const;
    /// Applies the keys present in `j` over the current values.
    Status Update(const nlohmann::json& j);
};

/// InvalidArgument naming the field unless `j` is a calibration curve as Gallery::SaveCalibration
/// takes it (thresholds in -1..1, tar/far in 0..1, string source and created).
Status ValidateCalibration(const nlohmann::json& j);

struct GalleryOptions {
    std::string location;  ///< SQLite path or postgresql:// URL
    std::shared_ptr<const KeyRing> keys;
    IndexConfig index;  ///< kind/dim are overridden by the stored settings
    /// Index snapshot file ("" = <location>.index for SQLite, none for PostgreSQL). Snapshots are
    /// sealed with the gallery key and checked against the store; a stale or damaged one is
    /// rebuilt from the store, never trusted.
    std::string snapshot_path;
    bool use_snapshot = true;
    /// Close() writes a snapshot only when the index has at least this many templates (below
    /// it, rebuilding from the store is as fast as reading one).
    std::int64_t snapshot_min_size = 10000;
    /// Threshold of a gallery that has no stored settings yet (the embedder pack's
    /// verify_threshold); stored on first open so every later open and node agrees.
    std::optional<float> default_threshold;
    /// Settings other than the threshold for a new gallery (e.g. keep_crops), stored likewise.
    std::optional<nlohmann::json> default_settings;
    /// When false, Open fails with NotFound instead of creating a SQLite gallery file that does
    /// not exist (`run`/`serve` without --create: a typo must not start an empty gallery).
    bool create_if_missing = true;
    /// Templates per transaction when rotating the key or migrating the integrity format (each
    /// batch commits on its own, so both resume after a crash).
    int rewrite_batch = 2000;
    /// A partial replica (one shard of the sharded gallery, docs/scale.md): only the templates of
    /// subjects for which this returns true are loaded, indexed and followed; null = every
    /// subject. A partial gallery is a read replica: calls that add, move or erase templates
    /// fail with FailedPrecondition (writes go to a full gallery, the system of record); it keeps
    /// no index snapshot, and CheckConsistency covers its own subjects. Must be pure and
    /// thread-safe (the follower calls it).
    std::function<bool(std::string_view subject_id)> holds;
};

struct NewFace {
    std::vector<float> embedding;
    float quality = -1;  ///< -1: unknown (precomputed embedding)
    std::string source;
    /// Encoded aligned crop (PNG); stored, sealed, only when settings().keep_crops.
    std::vector<std::uint8_t> crop;
};

/// One face of a bulk enrollment (many subjects in one transaction).
struct BulkFace {
    std::string subject_id;
    NewFace face;
    std::string display_name;  ///< for a created subject (default: EnrollOptions, then the id)
    std::string metadata;      ///< for a created subject, a JSON object (default: EnrollOptions)
};

/// Gallery::ImportFrom: how an export is read back.
struct ImportOptions {
    bool skip_existing = false;  ///< existing subject ids are skipped instead of an error
    int batch = 2000;            ///< faces (or face-less subjects) per transaction
};

struct EnrollOptions {
    std::string model_id;
    bool create_subject = true;   ///< create the subject if missing
    std::string display_name;     ///< for a created subject (default: the id)
    std::string metadata = "{}";  ///< for a created subject
    bool force = false;           ///< skip the duplicate_of_other_subject check
};

struct Rejection {
    size_t face = 0;     ///< index in the request
    std::string reason;  ///< reason code, e.g. duplicate_of_other_subject
    std::string detail;
};

struct EnrollResult {
    std::vector<std::int64_t> face_ids;
    std::vector<Rejection> rejected;
};

struct Candidate {
    std::string subject_id;
    std::string display_name;
    float score = 0;           ///< max cosine over the subject's templates
    std::int64_t face_id = 0;  ///< the template that gave the score
};

struct Identification {
    std::vector<Candidate> candidates;  ///< best first, one per subject
    bool known = false;
    std::string subject_id;  ///< when known
    /// "match", "below_threshold", "ambiguous" (margin to runner-up too small), "empty_gallery"
    std::string reason;
    float threshold = 0;
    float margin = 0;
};

struct GalleryStats {
    std::int64_t subjects = 0;
    std::int64_t templates = 0;
    std::string model_id;
    int dim = 0;
    std::string index_kind;
    std::int64_t index_bytes = 0;
    std::string index_source;  ///< "snapshot", "rebuilt: <why>", "empty"
    std::string store_kind;    ///< "sqlite" or "postgres"
    int schema_version = 0;    ///< of the store
};

/// The open-set decision over `ranked` (one candidate per subject, best first): Identify's own
/// rule, shared so that a scatter-gather over shards decides exactly as one gallery would. The
/// runner-up for the margin is ranked[1] (so pass at least top_k + 1 candidates when there are
/// that many); keeps the first `top_k` (>= 1) candidates. "empty_gallery" when `ranked` is empty.
Identification DecideOpenSet(std::vector<Candidate> ranked, int top_k, float threshold, float margin);

/// One stored template as a reader sees it: everything but the sealed vector and crop.
struct FaceInfo {
    std::int64_t face_id = 0;
    std::string subject_id;
    std::string model_id;
    int dim = 0;
    std::string key_id;  ///< the key that sealed it (changes with RotateKey)
    float quality = 0;   ///< -1 when unknown (precomputed embedding)
    std::string source;
    std::int64_t created_at = 0;
    bool has_crop = false;  ///< an aligned crop is kept (GallerySettings::keep_crops)
};

/// Thread-safety: Identify, Verify and the getters may run concurrently with each other and
/// with one mutating call (Refresh and the follower thread count as one); mutating calls are
/// serialised internally.
/// Implementation (src/): gallery.cc open/settings/enroll/identify/verify/consistency,
/// gallery_admin.cc subject edits/re-embed/key rotation, gallery_export.cc export/import,
/// gallery_snapshot.cc index load/rebuild/snapshot, gallery_follow.cc the change log.
class Gallery {
  public:
    static Result<std::unique_ptr<Gallery>> Open(const GalleryOptions& options);
    ~Gallery();
    Gallery(const Gallery&) = delete;
    Gallery& operator=(const Gallery&) = delete;

    /// Writes an index snapshot if worthwhile (see GalleryOptions::snapshot_min_size).
    Status Close();
    Status SaveSnapshot();

    GallerySettings settings() const;
    Status UpdateSettings(const GallerySettings& settings);
    /// The curve `facegate gallery calibrate --save` stored: {"curve": [{"threshold", "tar",
    /// "far"}], "source", "created"}; nullopt when never saved. HMAC-authenticated like every
    /// setting (a row edited in the database is DataLoss). src/gallery_calibration.cc.
    Result<std::optional<nlohmann::json>> Calibration() const;
    /// Validates the shape (ValidateCalibration) and stores it, replacing any previous curve.
    Status SaveCalibration(const nlohmann::json& calibration);
    /// Counts come from the store, so they are exact even while another node writes.
    Result<GalleryStats> Stats();

    // Read-only views of the store. The store itself is not exposed: every write goes through
    // the gallery so the index always agrees with it.
    Result<Subject> GetSubject(const std::string& id) const;
    /// Subjects ordered by id, strictly after `after`, at most `limit`.
    Result<ListPage> ListSubjects(const std::string& after, int limit) const;
    /// The subject's templates in face id order (NotFound for an unknown subject).
    Result<std::vector<FaceInfo>> ListFaces(const std::string& subject_id) const;

    Status CreateSubject(const Subject& subject);
    Status RenameSubject(const std::string& id, const std::string& display_name);
    Status UpdateMetadata(const std::string& id, const std::string& metadata_json);
    Status MergeSubjects(const std::string& from, const std::string& into);
    /// Erases the subject and every template of it (store and index).
    Status DeleteSubject(const std::string& id);
    Status RemoveFace(std::int64_t face_id);

    /// Validates, seals and stores the faces in one transaction, then indexes them. Faces that
    /// fail the duplicate check are returned in `rejected` (the others are still enrolled);
    /// bad input (dimension, NaN/Inf, model) fails the whole call.
    Result<EnrollResult> Enroll(const std::string& subject_id, const EnrollOptions& options,
                                std::span<const NewFace> faces);
    /// The bulk path: faces of many subjects validated, sealed and stored in one transaction
    /// (one prepared statement), then indexed in one add. `Rejection::face` indexes `faces`.
    /// Missing subjects are created when options.create_subject. All or nothing on bad input.
    Result<EnrollResult> EnrollBulk(std::span<const BulkFace> faces, const EnrollOptions& options);

    /// Embeds one stored crop (the PNG bytes) with the new model.
    using CropEmbedder =
        std::function<Result<std::vector<float>>(std::span<const std::uint8_t> crop)>;
    /// Rebuilds every template from its stored crop with another embedder and switches the
    /// gallery to `model_id` in one transaction (the threshold too, when given: scores of
    /// another model need another threshold). FailedPrecondition, changing nothing, when any
    /// template has no crop. Returns the number of templates re-embedded.
    Result<std::int64_t> Reembed(const std::string& model_id, const CropEmbedder& embed,
                                 std::optional<float> new_threshold);

    /// Checks that the index and the face -> subject map hold exactly the store's templates and
    /// owners; DataLoss naming the first difference. Waits for a running mutation.
    Status CheckConsistency();

    /// Top-k subjects (0 = settings().top_k) and the open-set decision.
    Result<Identification> Identify(const Embedding& probe, int top_k = 0) const;
    /// The `k` (>= 1) best subjects in memory, best first, one per subject (max over its
    /// templates), without display names or a decision: a shard replica's answer (no store
    /// query on this path). Empty when the index is.
    Result<std::vector<Candidate>> Nearest(const Embedding& probe, int k) const;
    /// Templates in memory (a partial gallery holds only its subjects').
    std::int64_t templates_in_memory() const;
    /// True when this is a partial replica (GalleryOptions::holds set).
    bool partial() const;
    /// 1:1: the best score of the probe against the subject's templates.
    Result<float> Verify(const Embedding& probe, const std::string& subject_id) const;

    /// Re-encrypts every template and crop with `keys`' current key (old keys must be in
    /// `keys`) and re-authenticates the settings under it. Returns the number of templates
    /// re-encrypted. Commits in batches of GalleryOptions::rewrite_batch and records the rotation
    /// in the store first: after a crash the gallery opens with a ring holding both keys, and
    /// calling RotateKey again resumes (rows carry their key id).
    Result<std::int64_t> RotateKey(std::shared_ptr<const KeyRing> keys);

    /// The documented, versioned export (docs/gallery.md). Contains plaintext embeddings.
    Result<nlohmann::json> Export();
    /// Imports an export; existing subject ids are an error unless `skip_existing`.
    Result<std::int64_t> Import(const nlohmann::json& doc, bool skip_existing);
    /// The export as JSON Lines (version 2, fg/gallery/export_format.h), written to `out` one
    /// subject at a time: memory stays bounded whatever the gallery size. Plaintext embeddings.
    Status ExportTo(std::ostream& out);
    /// Reads an export from `in`: version 2 line by line, enrolling `options.batch` faces per
    /// transaction, or a version-1 document (read whole). Returns the faces imported. An error
    /// names its line; the batches committed before it stay (docs/gallery.md, "Export format").
    Result<std::int64_t> ImportFrom(std::istream& in, const ImportOptions& options);

    std::string model_id() const;
    /// True while the store does not answer identify's display-name lookup (a PostgreSQL
    /// outage): identify still answers from the in-memory index, with names from a cache
    /// (docs/gallery.md, "PostgreSQL"). For /readyz and metrics.
    bool degraded() const;
    int dim() const;

    // The change log (docs/gallery.md, "Change log"): every committed mutation, by any process,
    // is one Change row written in the mutation's own transaction.

    /// The newest change in the store (0 for none).
    Result<std::int64_t> last_change() const;
    /// Changes with seq > `after`, oldest first, at most `limit` (1..10000): the gallery's
    /// change stream. Ids and kinds only, never embeddings.
    Result<std::vector<Change>> ChangesSince(std::int64_t after, int limit) const;
    /// The seq of the last change this gallery's memory reflects (its own changes included).
    std::int64_t applied_change() const;
    /// Applies every change made after applied_change() by other processes (or other Gallery
    /// objects) to the index and the face -> subject map: loads added templates, drops erased
    /// ones, moves merged ones, reloads settings (threshold included) and, after a re-embed,
    /// the index. Returns how many it applied; this gallery's own changes are skipped (they
    /// are already in memory). Stops at the first change it cannot apply and returns its error;
    /// the next call retries from there.
    Result<int> Refresh();
    /// A background thread that calls Refresh every `interval` and, on PostgreSQL, as soon as
    /// another node NOTIFYs a change. Errors are logged (at most one line per 10 s) and retried;
    /// they never stop the thread. FailedPrecondition when already following.
    Status StartFollowing(std::chrono::milliseconds interval = std::chrono::milliseconds(500));
    /// Stops and joins the thread (also done by the destructor). Idempotent.
    void StopFollowing();

  private:
    struct Impl;  // src/gallery_impl.h: store, keys, index, face -> subject map, locks
    explicit Gallery(std::unique_ptr<Impl> impl);
    Result<EnrollResult> EnrollBulkAs(std::span<const BulkFace> faces,
                                      const EnrollOptions& options,
                                      const std::string& change_kind);
    std::unique_ptr<Impl> impl_;
};

}  // namespace fg::gallery
