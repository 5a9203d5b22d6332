// SPDX-License-Identifier: Apache-2.0
// Persistent storage of a gallery: subjects, sealed face templates and settings, behind one
// interface with a SQLite (embedded, default) and a PostgreSQL (shared) implementation.
//
// The store never sees a plaintext embedding: templates arrive sealed (AES-256-GCM, see
// crypto.h) and are returned sealed, so both back ends are equally safe to copy off the box.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fg/base/status.h"

namespace fg::gallery {

/// Seconds since the Unix epoch (UTC).
std::int64_t NowSeconds();

struct Subject {
    std::string id;  ///< caller-chosen, unique, immutable
    std::string display_name;
    std::string metadata = "{}";  ///< free JSON object, stored as text
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    std::int64_t face_count = 0;  ///< filled by GetSubject/ListSubjects
};

/// One stored face template. `sealed` is nonce | ciphertext | tag of the float32 embedding.
struct TemplateRecord {
    std::int64_t face_id = 0;  ///< assigned by the store on insert
    std::string subject_id;
    std::string model_id;
    int dim = 0;
    std::string key_id;  ///< which key sealed it (for rotation)
    std::vector<std::uint8_t> sealed;
    float quality = 0;   ///< 0..1; -1 when unknown (precomputed embeddings)
    std::string source;  ///< image path or "embedding-file:..." etc.
    std::int64_t created_at = 0;
    /// The aligned face crop (PNG), sealed with the same key as `sealed`; empty unless the
    /// operator opted in to keeping crops (GallerySettings::keep_crops). Needed by re-embedding.
    std::vector<std::uint8_t> crop;
};

/// Face id -> subject id, the part of a template the index needs without decrypting.
struct FaceRef {
    std::int64_t face_id = 0;
    std::string subject_id;
};

/// One row of the gallery's change log (see Store::ChangesSince). Never holds embeddings,
/// crops or metadata values: only what changed and which ids it touched.
struct Change {
    std::int64_t seq = 0;   ///< monotonic; commit order (a later commit has a larger seq)
    std::int64_t time = 0;  ///< seconds since the epoch
    /// enroll, remove_face, delete_subject, rename, metadata, merge, settings, reembed,
    /// rotate_key, import (an enroll made by Gallery::Import).
    std::string kind;
    std::string subject_id;  ///< "" when the change is not about one subject (bulk, settings)
    std::string into;        ///< merge: the subject the faces moved to
    /// enroll/import: the added faces; remove_face/delete_subject: the erased ones; merge: the
    /// moved ones.
    std::vector<std::int64_t> face_ids;
};

struct ListPage {
    std::vector<Subject> subjects;
    std::string next_after;  ///< pass as `after` for the next page; empty at the end
};

/// Storage back end. Every mutating call is one transaction: when it returns OK the change is
/// durable (survives kill -9 and, with SQLite synchronous=FULL, power loss); on error nothing
/// of it is visible. Each mutation bumps a monotonic `generation`, which index snapshots record
/// to detect staleness, and appends one row to the change log in the same transaction, so a
/// change row exists exactly for each committed mutation.
/// Thread-safety: implementations serialise calls internally; one Store may be shared.
class Store {
  public:
    virtual ~Store() = default;

    /// "sqlite" or "postgres".
    virtual std::string kind() const = 0;
    virtual int schema_version() const = 0;
    virtual Result<std::int64_t> Generation() = 0;

    /// The change log. The newest seq (0 when empty), and the changes with seq > `after` in
    /// seq order, at most `limit`. Seqs are strictly increasing in commit order (PostgreSQL
    /// writers serialise on the log table), so a reader that remembers the last seq it saw
    /// misses nothing.
    virtual Result<std::int64_t> LastChange() = 0;
    virtual Result<std::vector<Change>> ChangesSince(std::int64_t after, int limit) = 0;
    /// The seqs of the changes this Store object committed since the last call (a gallery
    /// skips its own changes when it tails the log).
    virtual std::vector<std::int64_t> TakeOwnChanges() = 0;
    /// Blocks up to `timeout` for another writer's change notification (PostgreSQL LISTEN);
    /// true when one arrived. Back ends without notifications return false at once.
    virtual Result<bool> WaitForChange(std::chrono::milliseconds timeout) {
        (void)timeout;
        return false;
    }
    /// True when WaitForChange really waits (PostgreSQL).
    virtual bool notifies() const { return false; }

    /// Templates with the given face ids (those that exist), in face id order, without crops.
    virtual Result<std::vector<TemplateRecord>> GetTemplatesByIds(
        const std::vector<std::int64_t>& face_ids) = 0;

    virtual Status CreateSubject(const Subject& subject) = 0;
    virtual Result<Subject> GetSubject(const std::string& id) = 0;
    /// Display names of the given subjects (those that exist; order and duplicates do not
    /// matter) in one query: identify's name lookup. PostgreSQL answers on a connection of its
    /// own within a short deadline (never queued behind a long write), Unavailable otherwise.
    virtual Result<std::unordered_map<std::string, std::string>> GetDisplayNames(
        const std::vector<std::string>& ids) = 0;
    virtual Status RenameSubject(const std::string& id, const std::string& display_name) = 0;
    virtual Status UpdateMetadata(const std::string& id, const std::string& metadata_json) = 0;
    /// Moves every template of `from` to `into`, then deletes `from`. `resealed` (face id,
    /// sealed, key id, crop), when not null, replaces the moved templates' blobs in the same
    /// transaction (the subject id is in their associated data); it must name exactly the
    /// moved faces, else Unavailable (a concurrent enrollment: retry) and nothing changes.
    virtual Status MergeSubjects(const std::string& from, const std::string& into,
                                 const std::vector<TemplateRecord>* resealed) = 0;
    Status MergeSubjects(const std::string& from, const std::string& into) {
        return MergeSubjects(from, into, nullptr);
    }
    /// Deletes the subject and erases all its templates; returns the erased face ids.
    virtual Result<std::vector<std::int64_t>> DeleteSubject(const std::string& id) = 0;
    /// Subjects ordered by id, strictly after `after`, at most `limit`.
    virtual Result<ListPage> ListSubjects(const std::string& after, int limit) = 0;
    virtual Result<std::int64_t> CountSubjects() = 0;

    /// Inserts templates in one transaction, first creating those of `create` that do not exist
    /// yet; fills and returns face ids. A record of a subject that neither exists nor is in
    /// `create` fails the whole call with NotFound. The bulk path: one transaction and one
    /// prepared statement for thousands of templates of many subjects.
    /// `change_kind` is the kind of the change row ("enroll", or "import" for an import).
    virtual Result<std::vector<std::int64_t>> AddBulk(const std::vector<Subject>& create,
                                                      std::vector<TemplateRecord>& records,
                                                      const std::string& change_kind) = 0;
    Result<std::vector<std::int64_t>> AddBulk(const std::vector<Subject>& create,
                                              std::vector<TemplateRecord>& records) {
        return AddBulk(create, records, "enroll");
    }
    /// `n` new face ids, ascending, never handed out again (the face id is sealed into a
    /// template's associated data, so it is needed before the insert). AddBulk inserts a
    /// record with a non-zero face_id under that id.
    virtual Result<std::vector<std::int64_t>> ReserveFaceIds(std::int64_t n) = 0;
    /// AddBulk for one subject (created in the same transaction when given and missing).
    Result<std::vector<std::int64_t>> AddTemplates(std::vector<TemplateRecord>& records,
                                                   const std::optional<Subject>& create_subject) {
        std::vector<Subject> create;
        if (create_subject) create.push_back(*create_subject);
        return AddBulk(create, records);
    }
    /// Returns the subject id the face belonged to.
    virtual Result<std::string> RemoveTemplate(std::int64_t face_id) = 0;
    virtual Result<std::vector<TemplateRecord>> GetTemplates(const std::string& subject_id) = 0;
    /// Streams every template in face id order; stops at the first error of `fn`. Crops are
    /// read only when `with_crops` (index rebuilds do not need them).
    virtual Status ForEachTemplate(const std::function<Status(const TemplateRecord&)>& fn,
                                   bool with_crops = false) = 0;
    virtual Result<std::vector<FaceRef>> ListFaceRefs() = 0;
    virtual Result<std::int64_t> CountTemplates() = 0;
    /// Templates stored without a crop (they cannot be re-embedded).
    virtual Result<std::int64_t> CountTemplatesWithoutCrop() = 0;
    /// Replaces sealed blobs, crops and key ids (key rotation), in one transaction.
    virtual Status UpdateSealed(const std::vector<TemplateRecord>& records) = 0;
    /// Re-embedding: replaces model id, dim, sealed blob and key id of the given templates and
    /// writes `settings` (key, value), all in one transaction, so the gallery never holds
    /// templates of two models.
    virtual Status ReplaceTemplates(
        const std::vector<TemplateRecord>& records,
        const std::vector<std::pair<std::string, std::string>>& settings) = 0;

    virtual Result<std::optional<std::string>> GetSetting(const std::string& key) = 0;
    virtual Status PutSetting(const std::string& key, const std::string& value) = 0;
};

/// Opens (creating on first use) a store and runs pending schema migrations.
/// `location`: a file path (SQLite) or a "postgresql://..." / "postgres://..." URL.
Result<std::unique_ptr<Store>> OpenStore(const std::string& location);
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo);

}  // namespace fg::gallery
