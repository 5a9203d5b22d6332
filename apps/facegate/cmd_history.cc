// SPDX-License-Identifier: Apache-2.0
// facegate history list|show|purge|strangers: the recognition history beside a gallery, or in a
// PostgreSQL gallery's database (docs/history.md), the same filters as GET /v1/history.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "common.h"
#include "fg/history/history.h"

namespace fg::cli {
namespace {

struct HistoryArgs {
    std::string db;       // the gallery (its key; the default history file beside it)
    std::string history;  // the history file or postgres:// URL ("" = beside / inside the gallery)
    std::string key_file;
    std::string from, to, stream, subject, outcome, cursor;
    std::int64_t stranger = 0;
    std::int64_t id = 0;
    int limit = 50;
    int retention_days = 7;
    bool json = false;
};

Result<std::unique_ptr<history::HistoryStore>> OpenHistory(const HistoryArgs& a) {
    if (a.history.empty() && a.db.empty()) {
        return InvalidArgument("--db GALLERY (the history is <db>.history.db, or the tables of a PostgreSQL "
                               "gallery's database) or --history FILE|URL is required");
    }
    history::HistoryOptions o;
    history::SetHistoryLocation(o, a.db, a.history);
    o.create_if_missing = false;  // a mistyped location is an error, never a new empty history
    std::error_code ec;
    if (o.url.empty() && !std::filesystem::exists(o.path, ec)) return NotFound("no history at " + o.path.string());
    FG_ASSIGN_OR_RETURN(o.keys, ResolveGalleryKeys({.db = a.db, .key_file = a.key_file}));
    o.retention_days = a.retention_days;
    o.load_index = false;  // queries and purge need no decrypted embeddings
    return history::HistoryStore::Open(o);
}

void PrintSighting(const history::Sighting& s) {
    std::printf("%-8lld %s  %-12s track %-6lld %-7s %-16s score %.3f%s\n", static_cast<long long>(s.id),
                history::FormatTime(s.time_ms).c_str(), s.stream.c_str(), static_cast<long long>(s.track),
                std::string(history::OutcomeName(s.outcome)).c_str(),
                s.subject_id.empty() ? (s.stranger_id ? ("stranger " + std::to_string(*s.stranger_id)).c_str() : "-")
                                     : s.subject_id.c_str(),
                s.score, s.has_crop ? "  crop" : "");
}

/// {"items": [...], "next_cursor": ...} of a page of sightings or strangers, as GET /v1/history.
template <typename Page>
void PrintPageJson(const Page& page) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& s : page.items) items.push_back(history::ToJson(s));
    PrintJson({{"items", items},
               {"next_cursor", page.next_cursor.empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(page.next_cursor)}});
}

int List(const HistoryArgs& a) {
    history::HistoryQuery q;
    for (auto [text, out, name] : {std::tuple{&a.from, &q.from_ms, "--from"}, std::tuple{&a.to, &q.to_ms, "--to"}}) {
        if (text->empty()) continue;
        Result<std::int64_t> t = history::ParseTime(*text);
        if (!t.ok()) return Fail(t.status().WithContext(name));
        *out = *t;
    }
    q.stream = a.stream;
    q.subject = a.subject;
    if (!a.outcome.empty()) {
        auto o = history::ParseOutcome(a.outcome);
        if (!o.ok()) return Fail(o.status().WithContext("--outcome"));
        q.outcome = *o;
    }
    if (a.stranger > 0) q.stranger = a.stranger;
    q.cursor = a.cursor;
    q.limit = a.limit;
    auto h = OpenHistory(a);
    if (!h.ok()) return Fail(h.status());
    auto page = (*h)->List(q);
    if (!page.ok()) return Fail(page.status());
    if (a.json) {
        PrintPageJson(*page);
        return kExitOk;
    }
    for (const auto& s : page->items) PrintSighting(s);
    if (!page->next_cursor.empty()) std::printf("more: --cursor %s\n", page->next_cursor.c_str());
    return kExitOk;
}

int Show(const HistoryArgs& a) {
    auto h = OpenHistory(a);
    if (!h.ok()) return Fail(h.status());
    auto s = (*h)->Get(a.id);
    if (!s.ok()) return Fail(s.status());
    if (a.json) {
        PrintJson(history::ToJson(*s));
    } else {
        PrintSighting(*s);
    }
    return kExitOk;
}

int Purge(const HistoryArgs& a) {
    auto h = OpenHistory(a);
    if (!h.ok()) return Fail(h.status());
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    const auto t0 = std::chrono::steady_clock::now();
    auto n = (*h)->Purge(now);
    if (!n.ok()) return Fail(n.status());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (a.json) {
        PrintJson({{"purged", *n}, {"retention_days", a.retention_days}, {"seconds", s}});
    } else {
        std::printf("purged %lld sighting(s) older than %d day(s) in %.2f s\n", static_cast<long long>(*n),
                    a.retention_days, s);
    }
    return kExitOk;
}

int Strangers(const HistoryArgs& a) {
    history::StrangerQuery q;
    q.stream = a.stream;
    q.cursor = a.cursor;
    q.limit = a.limit;
    if (!a.from.empty()) {
        Result<std::int64_t> t = history::ParseTime(a.from);
        if (!t.ok()) return Fail(t.status().WithContext("--since"));
        q.since_ms = *t;
    }
    auto h = OpenHistory(a);
    if (!h.ok()) return Fail(h.status());
    auto page = (*h)->ListStrangers(q);
    if (!page.ok()) return Fail(page.status());
    if (a.json) {
        PrintPageJson(*page);
        return kExitOk;
    }
    for (const auto& s : page->items) {
        std::string streams;
        for (const auto& st : s.streams) streams += (streams.empty() ? "" : ",") + st;
        std::printf("stranger %-6lld %3lld sighting(s)  %s .. %s  %s\n", static_cast<long long>(s.id),
                    static_cast<long long>(s.sightings), history::FormatTime(s.first_seen_ms).c_str(),
                    history::FormatTime(s.last_seen_ms).c_str(), streams.c_str());
    }
    if (!page->next_cursor.empty()) std::printf("more: --cursor %s\n", page->next_cursor.c_str());
    return kExitOk;
}

}  // namespace

void RegisterHistoryCommands(CLI::App& app, Action& action) {
    auto a = std::make_shared<HistoryArgs>();
    CLI::App* group = SubcommandOf(app, "history", "Recognition history beside a gallery (docs/history.md)");
    auto common = [a](CLI::App* c) {
        c->add_option("--db", a->db, "Gallery file or postgres:// URL (its key; the history is <db>.history.db, or "
                                     "the fg_history_* tables of a PostgreSQL gallery, unless --history)");
        c->add_option("--history", a->history, "History file or postgres:// URL (history.location of the serve/run config)");
        c->add_option("--key-file", a->key_file, "Gallery key file (default: $FG_GALLERY_KEY, else the per-user key)");
        c->add_flag("--json", a->json, "JSON output");
    };
    CLI::App* list = group->add_subcommand("list", "Stored decisions, newest first (filters as GET /v1/history)");
    common(list);
    list->add_option("--from", a->from, "At or after: RFC 3339, unix ms, or 15m/2h/7d ago");
    list->add_option("--to", a->to, "At or before (same forms)");
    list->add_option("--stream", a->stream, "Only this stream");
    list->add_option("--subject", a->subject, "Only this subject");
    list->add_option("--outcome", a->outcome, "known, unknown or spoof");
    list->add_option("--stranger", a->stranger, "Only this stranger's sightings")->check(CLI::PositiveNumber);
    list->add_option("--cursor", a->cursor, "The next page (printed after a full page)");
    list->add_option("--limit", a->limit, "Rows per page (1..1000)")->check(CLI::Range(1, 1000))->capture_default_str();
    list->callback([a, &action] { action = [a] { return List(*a); }; });
    CLI::App* show = group->add_subcommand("show", "One sighting");
    common(show);
    show->add_option("id", a->id, "Sighting id")->required()->check(CLI::PositiveNumber);
    show->callback([a, &action] { action = [a] { return Show(*a); }; });
    CLI::App* purge = group->add_subcommand("purge", "Delete sightings older than the retention now");
    common(purge);
    purge->add_option("--retention-days", a->retention_days, "Keep this many days (0 = delete everything)")
        ->check(CLI::Range(0, 36500))->capture_default_str();
    purge->callback([a, &action] { action = [a] { return Purge(*a); }; });
    CLI::App* strangers = group->add_subcommand("strangers", "Strangers (clustered unknown sightings), last seen first");
    common(strangers);
    strangers->add_option("--since", a->from, "Last seen at or after (RFC 3339, unix ms, 2h)");
    strangers->add_option("--stream", a->stream, "Only strangers seen on this stream");
    strangers->add_option("--cursor", a->cursor, "The next page");
    strangers->add_option("--limit", a->limit, "Rows per page (1..1000)")->check(CLI::Range(1, 1000))->capture_default_str();
    strangers->callback([a, &action] { action = [a] { return Strangers(*a); }; });
}

}  // namespace fg::cli
