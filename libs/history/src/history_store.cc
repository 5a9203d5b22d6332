// SPDX-License-Identifier: Apache-2.0
// HistoryStore: the queries, paging, sealing, strangers and purge of the recognition history,
// written once over the storage seam of history_db.h (SQLite file beside the gallery, or the
// fg_history_* tables of a PostgreSQL database). Sealed blobs bind the row identity (id,
// stream, time, model) in their associated data, so a blob copied onto another row fails to
// open (DataLoss) instead of showing another face.
// Over 600 lines on purpose: every statement of the history is here, next to the logic that
// runs it, so both back ends share one copy.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "fg/base/log.h"
#include "fg/gallery/gallery.h"
#include "fg/history/history.h"
#include "fg/history/sighting_index.h"
#include "fg/history/strangers.h"
#include "history_db.h"

namespace fg::history {
namespace {

using internal::Db;

constexpr const char* kSightingColumns =
    "id, time_ms, stream, track, outcome, subject_id, display_name, score, margin, liveness, quality, "
    "stranger_id, CASE WHEN crop IS NULL THEN 0 ELSE 1 END";

// Rows per round trip when deleting by id and when loading the search index at open.
constexpr int kDeleteChunk = 500;
constexpr int kLoadChunk = 2000;

// A statement of either back end with chaining binds (SQLite's syntax, see history_db.h).
class Q {
  public:
    Q(const std::unique_ptr<Db>& db, const std::string& sql) : s_(db->Prepare(sql)) {}
    Q& Bind(int i, std::int64_t v) { return s_->Bind(i, v), *this; }
    Q& Bind(int i, double v) { return s_->Bind(i, v), *this; }
    Q& Bind(int i, std::string_view v) { return s_->Bind(i, v), *this; }
    void Reset() { s_->Reset(); }
    Q& BindNull(int i) { return s_->BindNull(i), *this; }
    Q& BindBlob(int i, std::span<const std::uint8_t> b) { return s_->BindBlob(i, b), *this; }
    Q& BindOpt(int i, const std::string& v) { return v.empty() ? BindNull(i) : Bind(i, std::string_view(v)); }
    /// True for a row; false when done or on error (then `status` says which).
    bool Step(Status& status) { return s_->Step(status); }
    Status Run() {
        Status st;
        while (Step(st)) {
        }
        return st;
    }
    std::int64_t Int(int c) const { return s_->Int(c); }
    double Real(int c) const { return s_->Real(c); }
    bool Null(int c) const { return s_->Null(c); }
    std::string Text(int c) const { return s_->Text(c); }
    std::vector<std::uint8_t> Blob(int c) const { return s_->Blob(c); }

  private:
    std::unique_ptr<internal::Stmt> s_;
};

Sighting ReadSighting(const Q& q) {
    Sighting s;
    s.id = q.Int(0);
    s.time_ms = q.Int(1);
    s.stream = q.Text(2);
    s.track = q.Int(3);
    s.outcome = static_cast<Outcome>(std::clamp<std::int64_t>(q.Int(4), 0, 2));
    s.subject_id = q.Text(5);
    s.display_name = q.Text(6);
    s.score = float(q.Real(7));
    s.margin = float(q.Real(8));
    if (!q.Null(9)) s.liveness = float(q.Real(9));
    s.quality = float(q.Real(10));
    if (!q.Null(11)) s.stranger_id = q.Int(11);
    s.has_crop = q.Int(12) != 0;
    return s;
}

// The row identity every sealed blob of the row is bound to.
std::string Aad(std::int64_t id, const std::string& stream, std::int64_t time_ms, const std::string& model,
                const char* what) {
    return "fg-history/v1|" + std::to_string(id) + "|" + stream + "|" + std::to_string(time_ms) + "|" + model +
           "|" + what;
}

// Cursors: "<time_ms>.<id>" of the last item returned (rows are ordered newest first).
std::string MakeCursor(std::int64_t t, std::int64_t id) { return std::to_string(t) + "." + std::to_string(id); }
Result<std::pair<std::int64_t, std::int64_t>> ParseCursor(const std::string& c) {
    const auto dot = c.find('.');
    auto digits = [](std::string_view s) {
        return !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789-") == std::string_view::npos;
    };
    if (dot == std::string::npos || !digits(std::string_view(c).substr(0, dot)) ||
        !digits(std::string_view(c).substr(dot + 1))) {
        return InvalidArgument("cursor: not a cursor this API returned");
    }
    try {
        return std::pair<std::int64_t, std::int64_t>{std::stoll(c.substr(0, dot)), std::stoll(c.substr(dot + 1))};
    } catch (const std::exception&) {
        return InvalidArgument("cursor: not a cursor this API returned");
    }
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
    switch (o) {
        case Outcome::kKnown: return "known";
        case Outcome::kUnknown: return "unknown";
        case Outcome::kSpoof: return "spoof";
    }
    return "unknown";
}

Result<Outcome> ParseOutcome(std::string_view s) {
    if (s == "known") return Outcome::kKnown;
    if (s == "unknown") return Outcome::kUnknown;
    if (s == "spoof") return Outcome::kSpoof;
    return InvalidArgument("outcome '" + std::string(s) + "': expected known, unknown or spoof");
}

std::filesystem::path DefaultHistoryPath(const std::string& gallery_db) { return gallery_db + ".history.db"; }

bool IsPostgresUrl(std::string_view location) {
    return location.starts_with("postgres://") || location.starts_with("postgresql://");
}

void SetHistoryLocation(HistoryOptions& o, const std::string& gallery_db, const std::string& history_location) {
    const std::string& at = history_location.empty() ? gallery_db : history_location;
    o.url.clear();
    o.path.clear();
    if (IsPostgresUrl(at)) {
        o.url = at;
    } else {
        o.path = history_location.empty() ? DefaultHistoryPath(gallery_db) : std::filesystem::path(history_location);
    }
}

struct HistoryStore::Impl {
    std::unique_ptr<Db> db;
    mutable std::mutex mu;  // the connection, the clusterer, next_stranger
    StrangerClusterer strangers;
    SightingIndex index;
    std::int64_t next_stranger = 1;
    std::int64_t gallery_seq = -1;  // last gallery change applied (-1: not following)
    // Background thread.
    std::mutex bg_mu;
    std::condition_variable bg_cv;
    bool bg_stop = false;
    std::thread bg;

    Impl(const HistoryOptions& o)
        : strangers(StrangerOptions{.threshold = o.stranger_threshold}), index(o.dim) {}
    // A transaction that rolls back unless committed.
    struct Tx {
        Impl& impl;
        bool done = false;
        explicit Tx(Impl& i) : impl(i) {}
        Status Begin(bool durable = true) { return impl.db->Begin(durable); }
        Status Commit() {
            done = true;
            return impl.db->Commit();
        }
        ~Tx() {
            if (!done) (void)impl.db->Rollback();
        }
    };

    Status SetMeta(const char* key, const std::string& value) {
        Q q(db, "INSERT INTO history_meta (key, value) VALUES (?1, ?2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
        return q.Bind(1, std::string_view(key)).Bind(2, std::string_view(value)).Run();
    }
    std::optional<std::string> Meta(const char* key) const {
        Q q(db, "SELECT value FROM history_meta WHERE key = ?1");
        q.Bind(1, std::string_view(key));
        Status st;
        if (q.Step(st)) return q.Text(0);
        return std::nullopt;
    }

    // Recomputes the summaries of strangers from their sightings; deletes those left without
    // any. Three statements per chunk of strangers, not per stranger: a purge batch touches
    // every stranger with a sighting in it (thousands in a busy place), and on PostgreSQL each
    // statement is a round trip. Times and count come from the (stranger_id, time_ms) index
    // alone; the best sighting is looked for again (reading every row of the stranger) only when
    // it was deleted. Among equal qualities the best is the newest (here and in Record): the
    // purge deletes the oldest first, so it seldom takes the best; with the oldest, a stranger
    // whose sightings tie was re-read in every purge batch (BENCHMARKS.md "PostgreSQL backend").
    Status Refresh(const std::set<std::int64_t>& ids) {
        const std::vector<std::int64_t> all(ids.begin(), ids.end());
        for (std::size_t at = 0; at < all.size(); at += kDeleteChunk) {
            const std::size_t n = std::min<std::size_t>(kDeleteChunk, all.size() - at);
            std::string in = " history_strangers.id IN (";
            for (std::size_t i = 0; i < n; ++i) in += (i ? ",?" : "?") + std::to_string(i + 1);
            in += ")";
            const std::string mine = "h.stranger_id = history_strangers.id";
            Q u(db, "UPDATE history_strangers SET "
                    "first_seen_ms = COALESCE((SELECT MIN(time_ms) FROM history_sightings h WHERE " + mine + "), 0), "
                    "last_seen_ms = COALESCE((SELECT MAX(time_ms) FROM history_sightings h WHERE " + mine + "), 0), "
                    "sightings = (SELECT COUNT(*) FROM history_sightings h WHERE " + mine + ") WHERE" + in);
            Q b(db, "UPDATE history_strangers SET "
                    "best_sighting_id = COALESCE((SELECT id FROM history_sightings h WHERE " + mine +
                    "  ORDER BY quality DESC, id DESC LIMIT 1), 0), "
                    "best_quality = COALESCE((SELECT MAX(quality) FROM history_sightings h WHERE " + mine + "), 0) "
                    "WHERE" + in + " AND sightings > 0 AND NOT EXISTS (SELECT 1 FROM history_sightings h "
                    "  WHERE h.id = history_strangers.best_sighting_id AND " + mine + ")");
            Q d(db, "DELETE FROM history_strangers WHERE" + in + " AND sightings = 0");
            for (Q* q : {&u, &b, &d}) {
                for (std::size_t i = 0; i < n; ++i) q->Bind(int(i + 1), all[at + i]);
                FG_RETURN_IF_ERROR(q->Run());
            }
        }
        return Status::Ok();
    }

    Result<Stranger> LoadStranger(std::int64_t id) const {
        Q q(db, "SELECT id, first_seen_ms, last_seen_ms, sightings, best_sighting_id FROM history_strangers WHERE id = ?1");
        q.Bind(1, id);
        Status st;
        if (!q.Step(st)) {
            FG_RETURN_IF_ERROR(st);
            return NotFound("stranger " + std::to_string(id) + " not found");
        }
        Stranger s{q.Int(0), q.Int(1), q.Int(2), q.Int(3), {}, q.Int(4)};
        Q streams(db, "SELECT DISTINCT stream FROM history_sightings WHERE stranger_id = ?1 ORDER BY stream");
        streams.Bind(1, id);
        while (streams.Step(st)) s.streams.push_back(streams.Text(0));
        FG_RETURN_IF_ERROR(st);
        return s;
    }

    // Deletes rows (already selected by `where` on ids) and forgets them in memory.
    Result<std::int64_t> DeleteIds(const std::vector<std::pair<std::int64_t, std::optional<std::int64_t>>>& rows) {
        if (rows.empty()) return std::int64_t{0};
        Tx tx(*this);
        FG_RETURN_IF_ERROR(tx.Begin());
        std::set<std::int64_t> touched;
        // Chunks of ids per statement: one round trip each on PostgreSQL, not one per row.
        for (std::size_t at = 0; at < rows.size(); at += kDeleteChunk) {
            const std::size_t n = std::min<std::size_t>(kDeleteChunk, rows.size() - at);
            std::string sql = "DELETE FROM history_sightings WHERE id IN (";
            for (std::size_t i = 0; i < n; ++i) sql += (i ? ",?" : "?") + std::to_string(i + 1);
            Q del(db, sql + ")");
            for (std::size_t i = 0; i < n; ++i) {
                del.Bind(int(i + 1), rows[at + i].first);
                if (rows[at + i].second) touched.insert(*rows[at + i].second);
            }
            FG_RETURN_IF_ERROR(del.Run());
        }
        FG_RETURN_IF_ERROR(Refresh(touched));
        FG_RETURN_IF_ERROR(tx.Commit());
        for (const auto& [id, stranger] : rows) {
            index.Remove(id);
            if (stranger) strangers.RemoveSighting(id);
        }
        return static_cast<std::int64_t>(rows.size());
    }
};

HistoryStore::HistoryStore(HistoryOptions options) : options_(std::move(options)) {}

HistoryStore::~HistoryStore() { Stop(); }

Result<std::unique_ptr<HistoryStore>> HistoryStore::Open(const HistoryOptions& options) {
    if (!options.keys) return InvalidArgument("history: no gallery key to seal crops and embeddings");
    if (options.path.empty() && options.url.empty()) return InvalidArgument("history.location: empty");
    if (options.retention_days < 0) return InvalidArgument("history.retention_days: must be >= 0");
    if (options.dim <= 0) return InvalidArgument("history: embedding dimension must be positive");
    std::unique_ptr<HistoryStore> h(new HistoryStore(options));
    h->impl_ = std::make_unique<Impl>(options);
    Impl& m = *h->impl_;
    if (!options.url.empty()) {
        if (!IsPostgresUrl(options.url)) return InvalidArgument("history: '" + options.url + "' is not a postgres:// URL");
        FG_ASSIGN_OR_RETURN(m.db, internal::OpenPostgres(options.url, options.create_if_missing));
    } else {
        FG_ASSIGN_OR_RETURN(m.db, internal::OpenSqlite(options.path));
    }
    {
        Q q(m.db, "SELECT COALESCE(MAX(id), 0) + 1 FROM history_strangers");
        Status st;
        if (q.Step(st)) m.next_stranger = q.Int(0);
        FG_RETURN_IF_ERROR(st);
    }
    // Load the embeddings of this model into the search index and the open strangers.
    std::int64_t loaded = 0, unreadable = 0;
    if (options.load_index) {
        // In id order, a chunk per statement: a client-side PostgreSQL result holds its rows in
        // memory, and 1M sealed embeddings at once would be gigabytes.
        Q q(m.db, "SELECT id, stream, time_ms, key_id, embedding, stranger_id, quality FROM history_sightings "
                  "WHERE model_id = ?1 AND embedding IS NOT NULL AND id > ?2 ORDER BY id LIMIT ?3");
        q.Bind(1, std::string_view(options.model_id)).Bind(3, std::int64_t{kLoadChunk});
        m.index.Reserve(static_cast<std::size_t>(h->count()));
        for (std::int64_t after = 0;;) {
            q.Reset();
            q.Bind(2, after);
            Status st;
            int rows = 0;
            while (q.Step(st)) {
                ++rows;
                const std::int64_t id = after = q.Int(0);
                const std::vector<std::uint8_t> blob = q.Blob(4);
                Result<std::vector<float>> e =
                    options.keys->Open(blob, q.Text(3), Aad(id, q.Text(1), q.Int(2), options.model_id, "embedding"));
                if (!e.ok() || !m.index.Add(id, *e).ok()) {
                    ++unreadable;
                    continue;
                }
                if (!q.Null(5)) m.strangers.Restore(q.Int(5), id, *e, float(q.Real(6)));
                ++loaded;
            }
            FG_RETURN_IF_ERROR(st);
            if (rows < kLoadChunk) break;
        }
    }
    if (unreadable > 0) {
        spdlog::warn("history {}: {} sighting embedding(s) cannot be opened (tampered, or sealed with a key not in "
                     "the ring); they are left out of search and strangers",
                     m.db->where(), unreadable);
    }
    if (options.gallery) {
        if (std::optional<std::string> seq = m.Meta("gallery_change_seq")) {
            m.gallery_seq = std::stoll(*seq);
        } else {
            // A new history has nothing to erase: follow from the gallery's present.
            FG_ASSIGN_OR_RETURN(m.gallery_seq, options.gallery->last_change());
            FG_RETURN_IF_ERROR(m.SetMeta("gallery_change_seq", std::to_string(m.gallery_seq)));
        }
    }
    spdlog::info("history {}: {} sighting(s) searchable, {} stranger(s)", m.db->where(), loaded,
                 m.strangers.size());
    return h;
}

std::int64_t HistoryStore::count() const {
    std::lock_guard lock(impl_->mu);
    Q q(impl_->db, "SELECT COUNT(*) FROM history_sightings");
    Status st;
    return q.Step(st) ? q.Int(0) : 0;
}

Result<Sighting> HistoryStore::Record(const SightingInput& in) {
    if (options_.retention_days == 0) return Sighting{};
    if (in.stream.empty()) return InvalidArgument("history: sighting without a stream");
    Impl& m = *impl_;
    std::lock_guard lock(m.mu);
    Impl::Tx tx(m);
    FG_RETURN_IF_ERROR(tx.Begin(/*durable=*/false));  // an observation log (see history_db.h)
    Sighting s;
    s.time_ms = in.time_ms;
    s.stream = in.stream;
    s.track = in.track;
    s.outcome = in.outcome;
    s.subject_id = in.subject_id;
    s.display_name = in.display_name;
    s.score = in.score;
    s.margin = in.margin;
    s.liveness = in.liveness;
    s.quality = in.quality;
    // The id first (the write lock is held), so the row goes in with its sealed blobs in one
    // INSERT: an UPDATE that grows a row afterwards fragments the pages (twice the file size).
    FG_ASSIGN_OR_RETURN(s.id, m.db->NextSightingId());
    const bool has_emb = !in.embedding.empty();
    const bool has_crop = options_.keep_crops && !in.crop_jpeg.empty();
    std::vector<std::uint8_t> emb_blob, crop_blob;
    if (has_emb) {
        FG_ASSIGN_OR_RETURN(emb_blob, options_.keys->Seal(in.embedding, Aad(s.id, in.stream, in.time_ms,
                                                                            options_.model_id, "embedding")));
    }
    if (has_crop) {
        FG_ASSIGN_OR_RETURN(crop_blob, options_.keys->SealBytes(in.crop_jpeg, Aad(s.id, in.stream, in.time_ms,
                                                                                 options_.model_id, "crop")));
    }
    s.has_crop = has_crop;
    StrangerMatch match;  // stranger_id 0: not clustered
    if (in.outcome == Outcome::kUnknown && has_emb) {
        // The gallery's threshold read live: /v1/settings or a saved calibration applies to the
        // next sighting without a restart (a cheap shared-locked copy of the settings).
        if (options_.gallery) m.strangers.SetThreshold(options_.gallery->settings().threshold);
        match = m.strangers.Assign(s.id, in.embedding, in.quality, m.next_stranger);
        Status st;
        if (match.stranger_id == 0) {
            // wrong dimension: stored, not clustered
        } else if (match.created) {
            Q ins(m.db, "INSERT INTO history_strangers (id, first_seen_ms, last_seen_ms, sightings, best_sighting_id, "
                        "best_quality) VALUES (?1, ?2, ?2, 1, ?3, ?4)");
            st = ins.Bind(1, match.stranger_id).Bind(2, in.time_ms).Bind(3, s.id).Bind(4, double(in.quality)).Run();
        } else {
            Q up(m.db, "UPDATE history_strangers SET "
                       "first_seen_ms = CASE WHEN ?2 < first_seen_ms THEN ?2 ELSE first_seen_ms END, "
                       "last_seen_ms = CASE WHEN ?2 > last_seen_ms THEN ?2 ELSE last_seen_ms END, "
                       "sightings = sightings + 1, "
                       "best_sighting_id = CASE WHEN ?4 >= best_quality THEN ?3 ELSE best_sighting_id END, "
                       "best_quality = CASE WHEN ?4 >= best_quality THEN ?4 ELSE best_quality END WHERE id = ?1");
            st = up.Bind(1, match.stranger_id).Bind(2, in.time_ms).Bind(3, s.id).Bind(4, double(in.quality)).Run();
        }
        if (!st.ok()) {
            m.strangers.RemoveSighting(s.id);
            return st;
        }
        if (match.stranger_id != 0) s.stranger_id = match.stranger_id;
    }
    {
        Q q(m.db, "INSERT INTO history_sightings (id, time_ms, stream, track, outcome, subject_id, display_name, "
                  "score, margin, liveness, quality, model_id, key_id, embedding, crop, stranger_id) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
        q.Bind(1, s.id).Bind(2, in.time_ms).Bind(3, std::string_view(in.stream)).Bind(4, in.track);
        q.Bind(5, std::int64_t(in.outcome)).BindOpt(6, in.subject_id).BindOpt(7, in.display_name);
        q.Bind(8, double(in.score)).Bind(9, double(in.margin));
        if (in.liveness) q.Bind(10, double(*in.liveness)); else q.BindNull(10);
        q.Bind(11, double(in.quality)).Bind(12, std::string_view(options_.model_id));
        q.Bind(13, std::string_view(options_.keys->current_id()));
        if (has_emb) q.BindBlob(14, emb_blob); else q.BindNull(14);
        if (has_crop) q.BindBlob(15, crop_blob); else q.BindNull(15);
        if (s.stranger_id) q.Bind(16, *s.stranger_id); else q.BindNull(16);
        if (Status st = q.Run(); !st.ok()) {
            if (match.stranger_id != 0) m.strangers.RemoveSighting(s.id);
            return st;
        }
    }
    if (Status st = tx.Commit(); !st.ok()) {
        if (match.stranger_id != 0) m.strangers.RemoveSighting(s.id);
        return st;
    }
    if (match.created) m.next_stranger = match.stranger_id + 1;
    if (has_emb) (void)m.index.Add(s.id, in.embedding);
    return s;
}

Result<HistoryPage> HistoryStore::List(const HistoryQuery& q) const {
    if (q.limit < 1 || q.limit > 1000) return InvalidArgument("limit: must be 1..1000");
    if (q.from_ms && q.to_ms && *q.from_ms > *q.to_ms) return InvalidArgument("from: after to");
    // Fixed parameter numbers; only the filters given are in the SQL (and bound).
    std::string sql = std::string("SELECT ") + kSightingColumns + " FROM history_sightings WHERE 1=1";
    if (q.from_ms) sql += " AND time_ms >= ?1";
    if (q.to_ms) sql += " AND time_ms <= ?2";
    if (!q.stream.empty()) sql += " AND stream = ?3";
    if (!q.subject.empty()) sql += " AND subject_id = ?4";
    if (q.outcome) sql += " AND outcome = ?5";
    if (q.stranger) sql += " AND stranger_id = ?6";
    std::pair<std::int64_t, std::int64_t> c{0, 0};
    if (!q.cursor.empty()) {
        FG_ASSIGN_OR_RETURN(c, ParseCursor(q.cursor));
        // The redundant `time_ms <= ?7` gives both engines an index range to start from.
        sql += " AND time_ms <= ?7 AND (time_ms < ?7 OR (time_ms = ?7 AND id < ?8))";
    }
    sql += " ORDER BY time_ms DESC, id DESC LIMIT " + std::to_string(q.limit + 1);
    std::lock_guard lock(impl_->mu);
    Q s(impl_->db, sql);
    if (q.from_ms) s.Bind(1, *q.from_ms);
    if (q.to_ms) s.Bind(2, *q.to_ms);
    if (!q.stream.empty()) s.Bind(3, std::string_view(q.stream));
    if (!q.subject.empty()) s.Bind(4, std::string_view(q.subject));
    if (q.outcome) s.Bind(5, std::int64_t(*q.outcome));
    if (q.stranger) s.Bind(6, *q.stranger);
    if (!q.cursor.empty()) s.Bind(7, c.first).Bind(8, c.second);
    HistoryPage page;
    Status st;
    while (s.Step(st)) page.items.push_back(ReadSighting(s));
    FG_RETURN_IF_ERROR(st);
    if (static_cast<int>(page.items.size()) > q.limit) {
        page.items.pop_back();
        page.next_cursor = MakeCursor(page.items.back().time_ms, page.items.back().id);
    }
    return page;
}

Result<Sighting> HistoryStore::Get(std::int64_t id) const {
    std::lock_guard lock(impl_->mu);
    Q q(impl_->db, std::string("SELECT ") + kSightingColumns + " FROM history_sightings WHERE id = ?1");
    q.Bind(1, id);
    Status st;
    if (q.Step(st)) return ReadSighting(q);
    FG_RETURN_IF_ERROR(st);
    return NotFound("sighting " + std::to_string(id) + " not found");
}

namespace {

/// One sealed column of a sighting row with what opens it: the key id and the row's AAD.
struct SealedCell {
    std::vector<std::uint8_t> blob;
    std::string key_id;
    std::string aad;
};

// `column` is "crop" or "embedding" (a fixed name, never input). Caller holds the store's mutex.
Result<SealedCell> ReadSealed(const std::unique_ptr<Db>& db, std::int64_t id, const char* column) {
    Q q(db, std::string("SELECT stream, time_ms, model_id, key_id, ") + column +
                " FROM history_sightings WHERE id = ?1");
    q.Bind(1, id);
    Status st;
    if (!q.Step(st)) {
        FG_RETURN_IF_ERROR(st);
        return NotFound("sighting " + std::to_string(id) + " not found");
    }
    if (q.Null(4)) return NotFound("sighting " + std::to_string(id) + " has no " + column);
    return SealedCell{q.Blob(4), q.Text(3), Aad(id, q.Text(0), q.Int(1), q.Text(2), column)};
}

}  // namespace

Result<std::vector<std::uint8_t>> HistoryStore::Crop(std::int64_t id) const {
    std::lock_guard lock(impl_->mu);
    FG_ASSIGN_OR_RETURN(SealedCell cell, ReadSealed(impl_->db, id, "crop"));
    Result<std::vector<std::uint8_t>> r = options_.keys->OpenBytes(cell.blob, cell.key_id, cell.aad);
    if (!r.ok() && r.status().code() == StatusCode::kDataLoss) {
        return DataLoss("sighting " + std::to_string(id) + ": crop fails its integrity check (tampered or moved row)");
    }
    return r;
}

Result<std::vector<float>> HistoryStore::Embedding(std::int64_t id) const {
    std::lock_guard lock(impl_->mu);
    FG_ASSIGN_OR_RETURN(SealedCell cell, ReadSealed(impl_->db, id, "embedding"));
    Result<std::vector<float>> r = options_.keys->Open(cell.blob, cell.key_id, cell.aad);
    if (!r.ok() && r.status().code() == StatusCode::kDataLoss) {
        return DataLoss("sighting " + std::to_string(id) + ": embedding fails its integrity check");
    }
    return r;
}

Result<std::vector<std::pair<Sighting, float>>> HistoryStore::Search(std::span<const float> probe, int limit,
                                                                    float min_score) const {
    if (limit < 1 || limit > 1000) return InvalidArgument("limit: must be 1..1000");
    if (static_cast<int>(probe.size()) != options_.dim) {
        return InvalidArgument("probe dimension " + std::to_string(probe.size()) + " != " + std::to_string(options_.dim));
    }
    std::vector<std::pair<Sighting, float>> out;
    for (const auto& [id, score] : impl_->index.Search(probe, limit, min_score)) {
        Result<Sighting> s = Get(id);
        if (s.ok()) out.emplace_back(std::move(*s), score);  // purged meanwhile: skipped
    }
    return out;
}

Result<StrangerPage> HistoryStore::ListStrangers(const StrangerQuery& sq) const {
    if (sq.limit < 1 || sq.limit > 1000) return InvalidArgument("limit: must be 1..1000");
    std::string sql = "SELECT id, last_seen_ms FROM history_strangers s WHERE 1=1";
    if (sq.since_ms) sql += " AND last_seen_ms >= ?1";
    if (!sq.stream.empty()) sql += " AND EXISTS (SELECT 1 FROM history_sightings h WHERE h.stranger_id = s.id AND h.stream = ?2)";
    std::pair<std::int64_t, std::int64_t> c{0, 0};
    if (!sq.cursor.empty()) {
        FG_ASSIGN_OR_RETURN(c, ParseCursor(sq.cursor));
        sql += " AND (last_seen_ms < ?3 OR (last_seen_ms = ?3 AND id < ?4))";
    }
    sql += " ORDER BY last_seen_ms DESC, id DESC LIMIT " + std::to_string(sq.limit + 1);
    std::lock_guard lock(impl_->mu);
    std::vector<std::int64_t> ids;
    {
        Q q(impl_->db, sql);
        if (sq.since_ms) q.Bind(1, *sq.since_ms);
        if (!sq.stream.empty()) q.Bind(2, std::string_view(sq.stream));
        if (!sq.cursor.empty()) q.Bind(3, c.first).Bind(4, c.second);
        Status st;
        while (q.Step(st)) ids.push_back(q.Int(0));
        FG_RETURN_IF_ERROR(st);
    }
    StrangerPage page;
    const bool more = static_cast<int>(ids.size()) > sq.limit;
    if (more) ids.pop_back();
    for (std::int64_t id : ids) {
        FG_ASSIGN_OR_RETURN(Stranger s, impl_->LoadStranger(id));
        page.items.push_back(std::move(s));
    }
    if (more) page.next_cursor = MakeCursor(page.items.back().last_seen_ms, page.items.back().id);
    return page;
}

Result<Stranger> HistoryStore::GetStranger(std::int64_t id) const {
    std::lock_guard lock(impl_->mu);
    return impl_->LoadStranger(id);
}

Result<Stranger> HistoryStore::MergeStrangers(std::int64_t from, std::int64_t into) {
    if (from == into) return InvalidArgument("into: a stranger cannot be merged into itself");
    Impl& m = *impl_;
    std::lock_guard lock(m.mu);
    FG_RETURN_IF_ERROR(m.LoadStranger(from).status());
    FG_RETURN_IF_ERROR(m.LoadStranger(into).status().WithContext("into"));
    Impl::Tx tx(m);
    FG_RETURN_IF_ERROR(tx.Begin());
    Q u(m.db, "UPDATE history_sightings SET stranger_id = ?2 WHERE stranger_id = ?1");
    FG_RETURN_IF_ERROR(u.Bind(1, from).Bind(2, into).Run());
    Q d(m.db, "DELETE FROM history_strangers WHERE id = ?1");
    FG_RETURN_IF_ERROR(d.Bind(1, from).Run());
    Q best(m.db, "UPDATE history_strangers SET best_sighting_id = 0 WHERE id = ?1");  // re-chosen over both
    FG_RETURN_IF_ERROR(best.Bind(1, into).Run());
    FG_RETURN_IF_ERROR(m.Refresh({into}));
    FG_RETURN_IF_ERROR(tx.Commit());
    m.strangers.Merge(from, into);
    return m.LoadStranger(into);
}

Status HistoryStore::DismissStranger(std::int64_t id) { return NameStranger(id, "", ""); }

Status HistoryStore::NameStranger(std::int64_t id, const std::string& subject_id, const std::string& display_name) {
    Impl& m = *impl_;
    std::lock_guard lock(m.mu);
    FG_RETURN_IF_ERROR(m.LoadStranger(id).status());
    Impl::Tx tx(m);
    FG_RETURN_IF_ERROR(tx.Begin());
    // Named: the sightings keep their outcome (unknown at the time) and gain the subject.
    Q u(m.db, subject_id.empty()
                  ? "UPDATE history_sightings SET stranger_id = NULL WHERE stranger_id = ?1"
                  : "UPDATE history_sightings SET stranger_id = NULL, subject_id = ?2, display_name = ?3 WHERE stranger_id = ?1");
    u.Bind(1, id);
    if (!subject_id.empty()) u.Bind(2, std::string_view(subject_id)).BindOpt(3, display_name);
    FG_RETURN_IF_ERROR(u.Run());
    Q d(m.db, "DELETE FROM history_strangers WHERE id = ?1");
    FG_RETURN_IF_ERROR(d.Bind(1, id).Run());
    FG_RETURN_IF_ERROR(tx.Commit());
    m.strangers.Remove(id);
    return Status::Ok();
}

Result<std::int64_t> HistoryStore::Purge(std::int64_t now_ms, int max_batches) {
    Impl& m = *impl_;
    const std::int64_t cutoff = now_ms - std::int64_t(options_.retention_days) * 86'400'000;
    std::int64_t total = 0;
    for (int b = 0; b < max_batches; ++b) {
        // One bounded batch per lock hold: the recorder and queries interleave with a long purge.
        std::lock_guard lock(m.mu);
        std::vector<std::pair<std::int64_t, std::optional<std::int64_t>>> rows;
        {
            Q q(m.db, "SELECT id, stranger_id FROM history_sightings WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2");
            q.Bind(1, cutoff).Bind(2, std::int64_t(std::max(options_.purge_batch, 1)));
            Status st;
            while (q.Step(st)) rows.emplace_back(q.Int(0), q.Null(1) ? std::nullopt : std::optional(q.Int(1)));
            FG_RETURN_IF_ERROR(st);
        }
        if (rows.empty()) break;
        FG_ASSIGN_OR_RETURN(std::int64_t n, m.DeleteIds(rows));
        total += n;
    }
    return total;
}

Result<std::int64_t> HistoryStore::EraseSubject(const std::string& subject_id) {
    if (subject_id.empty()) return InvalidArgument("subject_id: empty");
    Impl& m = *impl_;
    std::lock_guard lock(m.mu);
    std::vector<std::pair<std::int64_t, std::optional<std::int64_t>>> rows;
    {
        Q q(m.db, "SELECT id, stranger_id FROM history_sightings WHERE subject_id = ?1");
        q.Bind(1, std::string_view(subject_id));
        Status st;
        while (q.Step(st)) rows.emplace_back(q.Int(0), q.Null(1) ? std::nullopt : std::optional(q.Int(1)));
        FG_RETURN_IF_ERROR(st);
    }
    return m.DeleteIds(rows);
}

Result<int> HistoryStore::FollowGallery() {
    Impl& m = *impl_;
    if (!options_.gallery || m.gallery_seq < 0) return 0;
    int applied = 0;
    for (;;) {
        FG_ASSIGN_OR_RETURN(std::vector<gallery::Change> changes, options_.gallery->ChangesSince(m.gallery_seq, 1000));
        if (changes.empty()) break;
        for (const gallery::Change& c : changes) {
            if (c.kind == "delete_subject" && !c.subject_id.empty()) {
                FG_RETURN_IF_ERROR(EraseSubject(c.subject_id).status());
                ++applied;
            } else if (c.kind == "merge" && !c.subject_id.empty() && !c.into.empty()) {
                std::lock_guard lock(m.mu);
                Q u(m.db, "UPDATE history_sightings SET subject_id = ?2 WHERE subject_id = ?1");
                FG_RETURN_IF_ERROR(u.Bind(1, std::string_view(c.subject_id)).Bind(2, std::string_view(c.into)).Run());
                ++applied;
            }
            std::lock_guard lock(m.mu);
            m.gallery_seq = c.seq;
            FG_RETURN_IF_ERROR(m.SetMeta("gallery_change_seq", std::to_string(c.seq)));
        }
    }
    return applied;
}

void HistoryStore::StartBackground(std::chrono::milliseconds purge_interval, std::chrono::milliseconds follow_interval) {
    Impl& m = *impl_;
    if (m.bg.joinable()) return;
    m.bg = std::thread([this, &m, purge_interval, follow_interval] {
        auto next_purge = std::chrono::steady_clock::now();
        std::unique_lock lock(m.bg_mu);
        while (!m.bg_stop) {
            lock.unlock();
            if (Result<int> f = FollowGallery(); !f.ok()) {
                spdlog::warn("history: following the gallery: {}", f.status().ToString());
            }
            if (std::chrono::steady_clock::now() >= next_purge) {
                const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch()).count();
                // A few batches per round: Stop never waits for a 1M-row purge.
                if (Result<std::int64_t> p = Purge(now, 20); !p.ok()) {
                    spdlog::warn("history: purge: {}", p.status().ToString());
                } else if (*p > 0) {
                    spdlog::info("history: purged {} sighting(s) older than {} day(s)", *p, options_.retention_days);
                    if (*p >= 20 * options_.purge_batch) next_purge = std::chrono::steady_clock::now();  // more left
                    else next_purge = std::chrono::steady_clock::now() + purge_interval;
                } else {
                    next_purge = std::chrono::steady_clock::now() + purge_interval;
                }
            }
            lock.lock();
            m.bg_cv.wait_for(lock, std::min(follow_interval, purge_interval), [&m] { return m.bg_stop; });
        }
    });
}

void HistoryStore::Stop() {
    if (!impl_) return;
    {
        std::lock_guard lock(impl_->bg_mu);
        impl_->bg_stop = true;
    }
    impl_->bg_cv.notify_all();
    if (impl_->bg.joinable()) impl_->bg.join();
}

}  // namespace fg::history
