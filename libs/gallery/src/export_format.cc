// SPDX-License-Identifier: Apache-2.0
#include "fg/gallery/export_format.h"

#include <charconv>
#include <cmath>
#include <exception>
#include <type_traits>

namespace fg::gallery {
namespace {

using nlohmann::json;

constexpr size_t kMaxDim = 65536;  // far beyond any embedder; bounds a hostile line's vector

Status Bad(const std::string& field, const std::string& what) {
    return InvalidArgument("\"" + field + "\" " + what);
}

Result<std::string> Str(const json& j, const char* key, bool required, std::string fallback = "") {
    auto it = j.find(key);
    if (it == j.end()) {
        if (required) return Bad(key, "is missing");
        return fallback;
    }
    if (!it->is_string()) return Bad(key, "must be a string");
    return it->get<std::string>();
}

Result<std::int64_t> Int(const json& j, const char* key, std::int64_t fallback = 0) {
    auto it = j.find(key);
    if (it == j.end()) return fallback;
    if (!it->is_number_integer()) return Bad(key, "must be a whole number");
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > std::uint64_t(INT64_MAX))
        return Bad(key, "is too large");
    return it->get<std::int64_t>();
}

Result<ExportHeader> HeaderFrom(const json& j) {
    ExportHeader h;
    FG_ASSIGN_OR_RETURN(std::string format, Str(j, "format", true));
    if (format != "facegate-gallery")
        return InvalidArgument("not a facegate gallery export (format != facegate-gallery)");
    FG_ASSIGN_OR_RETURN(std::int64_t version, Int(j, "version", 0));
    if (version < 1 || version > kExportVersion) {
        return InvalidArgument("unsupported export version " + std::to_string(version) +
                               " (this facegate reads 1.." + std::to_string(kExportVersion) + ")");
    }
    h.version = int(version);
    FG_ASSIGN_OR_RETURN(h.exported_at, Int(j, "exported_at"));
    FG_ASSIGN_OR_RETURN(h.model_id, Str(j, "model_id", false));
    FG_ASSIGN_OR_RETURN(std::int64_t dim, Int(j, "dim"));
    if (dim < 0 || dim > std::int64_t(kMaxDim)) return Bad("dim", "is out of range");
    h.dim = int(dim);
    if (auto it = j.find("settings"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) return Bad("settings", "must be an object");
        h.settings = *it;
    }
    return h;
}

Result<ExportSubject> SubjectFrom(const json& j, const char* id_key) {
    ExportSubject s;
    FG_ASSIGN_OR_RETURN(s.id, Str(j, id_key, true));
    FG_ASSIGN_OR_RETURN(s.display_name, Str(j, "display_name", false));
    if (auto it = j.find("metadata"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) return Bad("metadata", "must be a JSON object");
        s.metadata = it->dump();
    }
    FG_ASSIGN_OR_RETURN(s.created_at, Int(j, "created_at"));
    FG_ASSIGN_OR_RETURN(s.updated_at, Int(j, "updated_at"));
    return s;
}

Result<ExportFace> FaceFrom(const json& j) {
    ExportFace f;
    auto e = j.find("embedding");
    if (e == j.end()) return Bad("embedding", "is missing");
    if (!e->is_array() || e->empty()) return Bad("embedding", "must be a non-empty array of numbers");
    if (e->size() > kMaxDim) return Bad("embedding", "has more than 65536 values");
    f.embedding.reserve(e->size());
    for (const json& x : *e) {
        if (!x.is_number()) return Bad("embedding", "must hold numbers only");
        f.embedding.push_back(float(x.get<double>()));
    }
    FG_ASSIGN_OR_RETURN(f.model_id, Str(j, "model_id", false));
    if (auto it = j.find("quality"); it != j.end() && !it->is_null()) {
        if (!it->is_number()) return Bad("quality", "must be a number");
        f.quality = float(it->get<double>());
        if (!std::isfinite(f.quality)) f.quality = -1;
    }
    FG_ASSIGN_OR_RETURN(f.source, Str(j, "source", false));
    FG_ASSIGN_OR_RETURN(f.created_at, Int(j, "created_at"));
    FG_ASSIGN_OR_RETURN(f.display_name, Str(j, "display_name", false));
    return f;
}

Result<ExportLine> LineFrom(const json& j) {
    if (!j.is_object()) return InvalidArgument("not a JSON object");
    if (j.contains("format")) {
        FG_ASSIGN_OR_RETURN(ExportHeader h, HeaderFrom(j));
        return ExportLine(std::move(h));
    }
    FG_ASSIGN_OR_RETURN(std::string type, Str(j, "type", false, "face"));
    if (type == "subject") {
        FG_ASSIGN_OR_RETURN(ExportSubject s, SubjectFrom(j, "id"));
        return ExportLine(std::move(s));
    }
    if (type != "face") return Bad("type", "must be \"subject\" or \"face\"");
    FG_ASSIGN_OR_RETURN(ExportFace f, FaceFrom(j));
    FG_ASSIGN_OR_RETURN(f.subject_id, Str(j, "subject_id", true));
    return ExportLine(std::move(f));
}

void AppendFloat(std::string& out, float v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, std::isfinite(v) ? v : 0.f);
    out.append(buf, r.ptr);
}

// Strings through nlohmann for escaping; throws on invalid UTF-8 (caught by the caller).
std::string Quote(const std::string& s) { return json(s).dump(); }

}  // namespace

Result<ExportLine> ParseExportLine(std::string_view line) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return ExportLine();
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return InvalidArgument("not valid JSON");
    try {
        return LineFrom(j);
    } catch (const std::exception& e) {  // defensive: every access above is checked
        return InvalidArgument(std::string("malformed record: ") + e.what());
    }
}

Result<std::vector<ExportLine>> ParseExportDocument(const json& doc) {
    std::vector<ExportLine> out;
    try {
        if (!doc.is_object()) return InvalidArgument("not a facegate gallery export");
        FG_ASSIGN_OR_RETURN(ExportHeader h, HeaderFrom(doc));
        out.emplace_back(std::move(h));
        auto subjects = doc.find("subjects");
        if (subjects == doc.end() || !subjects->is_array())
            return InvalidArgument("export has no subjects");
        for (size_t i = 0; i < subjects->size(); ++i) {
            const json& js = (*subjects)[i];
            const std::string where = "subjects[" + std::to_string(i) + "]";
            if (!js.is_object()) return InvalidArgument(where + ": not a JSON object");
            auto s = SubjectFrom(js, "id");
            if (!s.ok()) return s.status().WithContext(where);
            const std::string id = s->id;
            out.emplace_back(std::move(*s));
            auto faces = js.find("faces");
            if (faces == js.end() || faces->is_null()) continue;
            if (!faces->is_array()) return InvalidArgument(where + ": \"faces\" must be an array");
            for (size_t k = 0; k < faces->size(); ++k) {
                const std::string fwhere = where + ".faces[" + std::to_string(k) + "]";
                if (!(*faces)[k].is_object()) return InvalidArgument(fwhere + ": not a JSON object");
                auto f = FaceFrom((*faces)[k]);
                if (!f.ok()) return f.status().WithContext(fwhere);
                f->subject_id = id;
                f->display_name.clear();
                out.emplace_back(std::move(*f));
            }
        }
    } catch (const std::exception& e) {
        return InvalidArgument(std::string("malformed export: ") + e.what());
    }
    return out;
}

Result<std::string> FormatExportLine(const ExportLine& line) {
    try {
        return std::visit(
            [](const auto& v) -> std::string {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::monostate>) {
                    return "\n";
                } else if constexpr (std::is_same_v<T, ExportHeader>) {
                    json j{{"format", "facegate-gallery"}, {"version", v.version},
                           {"exported_at", v.exported_at}, {"model_id", v.model_id},
                           {"dim", v.dim}};
                    if (!v.settings.is_null()) j["settings"] = v.settings;
                    return j.dump() + "\n";
                } else if constexpr (std::is_same_v<T, ExportSubject>) {
                    json meta = json::parse(v.metadata, nullptr, false);
                    if (meta.is_discarded()) meta = json::object();
                    json j{{"type", "subject"},           {"id", v.id},
                           {"display_name", v.display_name}, {"metadata", meta},
                           {"created_at", v.created_at},  {"updated_at", v.updated_at}};
                    return j.dump() + "\n";
                } else {
                    // Written by hand: nlohmann would print each float as a 17-digit double.
                    std::string out = "{\"type\":\"face\",\"subject_id\":" + Quote(v.subject_id);
                    out += ",\"model_id\":" + Quote(v.model_id) + ",\"quality\":";
                    AppendFloat(out, v.quality);
                    out += ",\"source\":" + Quote(v.source) +
                           ",\"created_at\":" + std::to_string(v.created_at);
                    if (!v.display_name.empty())
                        out += ",\"display_name\":" + Quote(v.display_name);
                    out += ",\"embedding\":[";
                    out.reserve(out.size() + v.embedding.size() * 12 + 4);
                    for (size_t i = 0; i < v.embedding.size(); ++i) {
                        if (i) out += ',';
                        AppendFloat(out, v.embedding[i]);
                    }
                    return out + "]}\n";
                }
            },
            line);
    } catch (const std::exception& e) {
        return InvalidArgument(std::string("cannot write an export line: ") + e.what());
    }
}

}  // namespace fg::gallery
