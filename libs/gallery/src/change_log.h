// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the SQLite and PostgreSQL change logs: face ids are stored as one
// comma-separated text column (a change lists the ids it touched, never embeddings).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fg/gallery/store.h"

namespace fg::gallery::internal {

inline std::string JoinIds(const std::vector<std::int64_t>& ids) {
    std::string out;
    out.reserve(ids.size() * 8);
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ',';
        out += std::to_string(ids[i]);
    }
    return out;
}

inline std::vector<std::int64_t> SplitIds(const std::string& text) {
    std::vector<std::int64_t> out;
    const char* p = text.c_str();
    while (*p) {
        char* end = nullptr;
        const long long v = std::strtoll(p, &end, 10);
        if (end == p) break;  // not a number: stop rather than loop
        out.push_back(std::int64_t(v));
        p = *end == ',' ? end + 1 : end;
    }
    return out;
}

/// The subject of a bulk of templates: the one subject they all belong to, or "".
inline std::string CommonSubject(const std::vector<TemplateRecord>& records) {
    if (records.empty()) return "";
    for (const TemplateRecord& r : records) {
        if (r.subject_id != records.front().subject_id) return "";
    }
    return records.front().subject_id;
}

inline Change Note(std::string kind, std::string subject = "",
                   std::vector<std::int64_t> face_ids = {}, std::string into = "") {
    Change c;
    c.kind = std::move(kind);
    c.subject_id = std::move(subject);
    c.face_ids = std::move(face_ids);
    c.into = std::move(into);
    return c;
}

}  // namespace fg::gallery::internal
