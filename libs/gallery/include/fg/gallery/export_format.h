// SPDX-License-Identifier: Apache-2.0
// The gallery export format (docs/gallery.md, "Export format"), as pure functions: parsing and
// writing one JSON Lines record, and reading the version-1 single document. No gallery, no
// database: Gallery::ExportTo/ImportFrom use them, and the libFuzzer harness
// (libs/gallery/fuzz) feeds them untrusted bytes.
//
// Version 2 (JSON Lines, what `gallery export` writes): a header line, then each subject's
// line followed by one line per face of it:
//   {"format":"facegate-gallery","version":2,"exported_at":..,"model_id":..,"dim":..,"settings":{..}}
//   {"type":"subject","id":"alice","display_name":"Alice","metadata":{..},"created_at":..,"updated_at":..}
//   {"type":"face","subject_id":"alice","model_id":..,"quality":0.83,"source":"a1.jpg","created_at":..,"embedding":[..]}
// A face line without "type" is a bulk-enrollment record (`gallery import` of records.jsonl).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/base/status.h"

namespace fg::gallery {

inline constexpr int kExportVersion = 2;

struct ExportHeader {
    int version = kExportVersion;
    std::int64_t exported_at = 0;
    std::string model_id;
    int dim = 0;
    nlohmann::json settings;  ///< null when absent
};

struct ExportSubject {
    std::string id;
    std::string display_name;     ///< "" = the id
    std::string metadata = "{}";  ///< a JSON object, as text
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
};

struct ExportFace {
    std::string subject_id;
    std::vector<float> embedding;  ///< not empty; finiteness is checked on enrollment
    std::string model_id;          ///< "" = the header's
    float quality = -1;
    std::string source;
    std::int64_t created_at = 0;
    std::string display_name;  ///< bulk records only (a created subject's name)
};

/// One line: blank (monostate), the header, a subject or a face.
using ExportLine = std::variant<std::monostate, ExportHeader, ExportSubject, ExportFace>;

/// Parses one line (without its newline). InvalidArgument naming the field on bad input; never
/// throws. Blank lines (spaces, tabs, \r) are monostate. Accepts header versions 1..current;
/// a newer version is InvalidArgument.
Result<ExportLine> ParseExportLine(std::string_view line);

/// The same checks for a version-1 document (one JSON object holding "subjects"): the header,
/// then each subject followed by its faces, in the order of the document.
Result<std::vector<ExportLine>> ParseExportDocument(const nlohmann::json& doc);

/// One line of the version-2 format, with its trailing newline. Floats are written in their
/// shortest exact form (std::to_chars), so import reads back the very same values.
/// InvalidArgument when a string is not valid UTF-8 (JSON cannot carry it).
Result<std::string> FormatExportLine(const ExportLine& line);

}  // namespace fg::gallery
