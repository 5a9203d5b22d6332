// SPDX-License-Identifier: Apache-2.0
// Recognition history: every track decision of the streams (time, stream, track, outcome,
// subject, score, margin, liveness), with the best-shot crop and the fused embedding sealed with
// the gallery key, unknown sightings clustered into strangers, retention enforced by a
// background purge, subject erasure following the gallery's change log. docs/history.md.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"
#include "fg/gallery/crypto.h"
#include "fg/pipeline/event_emitter.h"

namespace fg::gallery {
class Gallery;
}

namespace fg::history {

enum class Outcome { kKnown = 0, kUnknown = 1, kSpoof = 2 };
std::string_view OutcomeName(Outcome o);  ///< "known", "unknown", "spoof"
Result<Outcome> ParseOutcome(std::string_view s);

/// What the recorder stores for one decision.
struct SightingInput {
    std::int64_t time_ms = 0;  ///< the frame's capture time (unix ms)
    std::string stream;
    std::int64_t track = 0;
    Outcome outcome = Outcome::kUnknown;
    std::string subject_id;    ///< known only
    std::string display_name;  ///< known only
    float score = 0;
    float margin = 0;
    std::optional<float> liveness;     ///< when liveness was checked
    float quality = 0;                 ///< best-shot quality (stranger exemplars prefer high)
    std::vector<float> embedding;      ///< fused, L2-normalised; empty for a spoof
    std::vector<std::uint8_t> crop_jpeg;  ///< best shot; empty = none
};

/// One stored sighting (never the embedding or the crop: Crop()/Embedding() open those).
struct Sighting {
    std::int64_t id = 0;
    std::int64_t time_ms = 0;
    std::string stream;
    std::int64_t track = 0;
    Outcome outcome = Outcome::kUnknown;
    std::string subject_id;    ///< "" = none
    std::string display_name;
    float score = 0;
    float margin = 0;
    std::optional<float> liveness;
    float quality = 0;
    std::optional<std::int64_t> stranger_id;
    bool has_crop = false;
};

/// Filters of List (all optional; newest first). The cursor is List's next_cursor.
struct HistoryQuery {
    std::optional<std::int64_t> from_ms, to_ms;  ///< inclusive
    std::string stream;
    std::string subject;
    std::optional<Outcome> outcome;
    std::optional<std::int64_t> stranger;
    std::string cursor;
    int limit = 50;  ///< 1..1000
};

struct HistoryPage {
    std::vector<Sighting> items;
    std::string next_cursor;  ///< "" at the end
};

struct Stranger {
    std::int64_t id = 0;
    std::int64_t first_seen_ms = 0;
    std::int64_t last_seen_ms = 0;
    std::int64_t sightings = 0;
    std::vector<std::string> streams;
    std::int64_t best_sighting_id = 0;
};

struct StrangerQuery {
    std::string stream;                    ///< "" = any
    std::optional<std::int64_t> since_ms;  ///< last seen at or after
    std::string cursor;
    int limit = 50;
};

struct StrangerPage {
    std::vector<Stranger> items;
    std::string next_cursor;
};

struct HistoryOptions {
    std::filesystem::path path;                   ///< SQLite file (created 0600); unused with `url`
    /// A PostgreSQL URL (postgres:// or postgresql://, the gallery's syntax, statement_timeout=MS
    /// default 10000): the history goes into that database's fg_history_* tables. "" = `path`.
    std::string url;
    std::shared_ptr<const gallery::KeyRing> keys;  ///< seals crops and embeddings (required)
    std::string model_id;                         ///< bound into every sealed blob
    int dim = 512;                                ///< embedding dimension (search index)
    int retention_days = 7;                       ///< 0 = keep nothing
    bool keep_crops = true;
    float stranger_threshold = 0.40f;             ///< the gallery's calibrated threshold
    /// Followed for subject erasure (delete_subject / merge in its change log); may be null.
    std::shared_ptr<gallery::Gallery> gallery;
    int purge_batch = 5000;  ///< rows per purge transaction (writers are never blocked long)
    /// Open every stored embedding into the search index and the strangers (serve, run). The
    /// CLI's queries and purge do without (an open then costs no decryption).
    bool load_index = true;
    /// False: Open fails with NotFound when the PostgreSQL database holds no history tables
    /// (the CLI reads a history, it never starts one in a mistyped database).
    bool create_if_missing = true;
};

/// `<gallery>.history.db` beside a SQLite gallery file.
std::filesystem::path DefaultHistoryPath(const std::string& gallery_db);
/// postgres:// or postgresql:// (a history in PostgreSQL rather than a file).
bool IsPostgresUrl(std::string_view location);
/// Where the history of a gallery at `gallery_db` lives unless `history_location` names a place:
/// a PostgreSQL gallery's own database (tables fg_history_*), else `<gallery>.history.db`. Fills
/// `url` or `path` of `o`.
void SetHistoryLocation(HistoryOptions& o, const std::string& gallery_db, const std::string& history_location);

/// Two back ends behind one API (same rows, paging, sealing, purge and erasure): SQLite and
/// PostgreSQL (docs/history.md).
/// Thread-safety: every method is thread-safe (one internal mutex serialises the database and
/// the strangers; the search index has its own lock). The purge thread (StartBackground) runs
/// until Stop or destruction.
class HistoryStore {
  public:
    static Result<std::unique_ptr<HistoryStore>> Open(const HistoryOptions& options);
    ~HistoryStore();
    HistoryStore(const HistoryStore&) = delete;
    HistoryStore& operator=(const HistoryStore&) = delete;

    /// Stores one decision (unknowns are clustered into strangers). With retention 0 nothing is
    /// stored and the returned sighting has id 0.
    Result<Sighting> Record(const SightingInput& in);
    Result<HistoryPage> List(const HistoryQuery& q) const;
    /// NotFound for an unknown id.
    Result<Sighting> Get(std::int64_t id) const;
    /// The best-shot JPEG: NotFound without one, DataLoss when the row was tampered with.
    Result<std::vector<std::uint8_t>> Crop(std::int64_t id) const;
    Result<std::vector<float>> Embedding(std::int64_t id) const;
    /// Every stored sighting of the face `probe` (unit), best first.
    Result<std::vector<std::pair<Sighting, float>>> Search(std::span<const float> probe, int limit,
                                                          float min_score) const;

    Result<StrangerPage> ListStrangers(const StrangerQuery& q) const;
    Result<Stranger> GetStranger(std::int64_t id) const;
    /// Moves `from`'s sightings into `into`; returns the merged stranger.
    Result<Stranger> MergeStrangers(std::int64_t from, std::int64_t into);
    /// Dismiss: the stranger is forgotten (its sightings stay, unassigned).
    Status DismissStranger(std::int64_t id);
    /// The stranger was named: its sightings get the subject and it is closed.
    Status NameStranger(std::int64_t id, const std::string& subject_id, const std::string& display_name);

    /// Deletes sightings older than the retention (at most `max_batches` batches); returns rows.
    Result<std::int64_t> Purge(std::int64_t now_ms, int max_batches = 1 << 30);
    /// Erases every sighting of a subject; returns rows.
    Result<std::int64_t> EraseSubject(const std::string& subject_id);
    /// Applies the gallery's change log since the last call (delete_subject erases, merge
    /// relabels); returns changes applied. No-op without a gallery.
    Result<int> FollowGallery();

    /// Starts the thread that purges every `purge_interval` and follows the gallery every
    /// `follow_interval`.
    void StartBackground(std::chrono::milliseconds purge_interval = std::chrono::minutes(1),
                         std::chrono::milliseconds follow_interval = std::chrono::seconds(2));
    void Stop();

    std::int64_t count() const;
    const HistoryOptions& options() const { return options_; }

  private:
    struct Impl;
    explicit HistoryStore(HistoryOptions options);
    HistoryOptions options_;
    std::unique_ptr<Impl> impl_;
};

/// Stores every track decision of the pipeline on its own thread: a PipelineObserver whose
/// OnDecision only queues (bounded: a full queue drops, counted, and never stalls a stream).
/// `on_stored` (e.g. the SSE "sighting" event) runs on the recorder thread after each store.
/// Thread-safety: OnDecision from any stream thread; the rest from the owner.
class Recorder final : public pipeline::PipelineObserver {
  public:
    using Callback = std::function<void(const Sighting&)>;
    Recorder(std::shared_ptr<HistoryStore> store, Callback on_stored = {}, std::size_t queue = 1024);
    ~Recorder() override;
    void OnDecision(const std::string& stream, const pipeline::Outcome& o) override;
    /// Stores what is queued, then stops the thread.
    void Stop();
    std::uint64_t recorded() const { return recorded_; }
    std::uint64_t dropped() const { return dropped_; }
    std::uint64_t failed() const { return failed_; }

  private:
    struct Item;
    void Run();
    std::shared_ptr<HistoryStore> store_;
    Callback on_stored_;
    const std::size_t capacity_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Item>> queue_;
    bool stop_ = false;
    std::atomic<std::uint64_t> recorded_{0}, dropped_{0}, failed_{0};
    std::thread thread_;
};

/// The Sighting and Stranger JSON of the API (docs/api.md): times as RFC 3339 UTC with ms.
nlohmann::json ToJson(const Sighting& s);
nlohmann::json ToJson(const Stranger& s);
/// RFC 3339 UTC with milliseconds.
std::string FormatTime(std::int64_t unix_ms);
/// RFC 3339 ("2026-12-05T03:00:00.123Z", offsets accepted) or unix ms digits.
Result<std::int64_t> ParseTime(std::string_view s);

}  // namespace fg::history
