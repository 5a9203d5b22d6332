// SPDX-License-Identifier: Apache-2.0
#include "fg/api/multipart.h"

#include <algorithm>
#include <cctype>

namespace fg::api {
namespace {

std::string Lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view Trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// `key=value` or `key="quoted value"` parameters after the first ';' of a header value.
std::vector<std::pair<std::string, std::string>> Params(std::string_view v) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = v.find(';');
    while (i != std::string_view::npos && i < v.size()) {
        ++i;
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
        const std::size_t eq = v.find('=', i);
        if (eq == std::string_view::npos) break;
        std::string key = Lower(Trim(v.substr(i, eq - i)));
        std::size_t j = eq + 1;
        std::string value;
        if (j < v.size() && v[j] == '"') {
            ++j;
            while (j < v.size() && v[j] != '"') {
                if (v[j] == '\\' && j + 1 < v.size()) ++j;
                value += v[j++];
            }
            if (j < v.size()) ++j;  // closing quote
            i = v.find(';', j);
        } else {
            const std::size_t end = v.find(';', j);
            value = std::string(Trim(v.substr(j, end == std::string_view::npos ? v.npos : end - j)));
            i = end;
        }
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

}  // namespace

Result<std::string> MultipartBoundary(std::string_view content_type) {
    const std::string lower = Lower(content_type.substr(0, content_type.find(';')));
    if (Trim(lower) != "multipart/form-data") {
        return InvalidArgument("Content-Type is not multipart/form-data");
    }
    for (auto& [k, v] : Params(content_type)) {
        if (k != "boundary") continue;
        if (v.empty() || v.size() > 70) return InvalidArgument("multipart boundary must be 1..70 characters");
        for (unsigned char c : v) {
            if (c < 0x20 || c > 0x7e) return InvalidArgument("multipart boundary has a control character");
        }
        return v;
    }
    return InvalidArgument("multipart/form-data without a boundary parameter");
}

Result<std::vector<MultipartPart>> ParseMultipart(std::string_view body, std::string_view boundary,
                                                  const MultipartLimits& limits) {
    if (boundary.empty()) return InvalidArgument("empty multipart boundary");
    const std::string delim = "--" + std::string(boundary);
    // The first delimiter may follow a preamble (ignored) and must end its line.
    std::size_t pos = 0;
    if (body.substr(0, delim.size()) != delim) {
        pos = body.find("\r\n" + delim);
        if (pos == std::string_view::npos) return InvalidArgument("multipart body has no opening boundary");
        pos += 2;
    }
    pos += delim.size();
    const std::string next = "\r\n" + delim;
    std::vector<MultipartPart> parts;
    while (true) {
        if (body.substr(pos, 2) == "--") {
            if (parts.empty()) return InvalidArgument("multipart body has no parts");
            return parts;  // closing delimiter; an epilogue after it is ignored
        }
        if (body.substr(pos, 2) != "\r\n") {
            return InvalidArgument(pos >= body.size() ? "multipart body is truncated"
                                                      : "multipart boundary line is malformed");
        }
        pos += 2;
        if (parts.size() >= limits.max_parts) {
            return InvalidArgument("multipart body has more than " + std::to_string(limits.max_parts) +
                                   " parts");
        }
        const std::size_t head_end = body.find("\r\n\r\n", pos);
        if (head_end == std::string_view::npos) return InvalidArgument("multipart part headers are truncated");
        if (head_end - pos > limits.max_part_header_bytes) {
            return InvalidArgument("multipart part headers are too large");
        }
        MultipartPart part;
        bool form_data = false;
        std::string_view head = body.substr(pos, head_end - pos);
        while (!head.empty()) {
            const std::size_t eol = head.find("\r\n");
            const std::string_view line = head.substr(0, eol);
            head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
            const std::size_t colon = line.find(':');
            if (colon == std::string_view::npos) return InvalidArgument("multipart part header without ':'");
            const std::string name = Lower(Trim(line.substr(0, colon)));
            const std::string_view value = Trim(line.substr(colon + 1));
            if (name == "content-disposition") {
                form_data = Lower(Trim(value.substr(0, value.find(';')))) == "form-data";
                for (auto& [k, v] : Params(value)) {
                    if (k == "name") part.name = v;
                    if (k == "filename") part.filename = v;
                }
            } else if (name == "content-type") {
                part.content_type = Lower(Trim(value.substr(0, value.find(';'))));
            }
        }
        if (!form_data || part.name.empty()) {
            return InvalidArgument("multipart part without Content-Disposition: form-data; name=...");
        }
        pos = head_end + 4;
        const std::size_t end = body.find(next, pos);
        if (end == std::string_view::npos) return InvalidArgument("multipart body is truncated");
        part.body = std::string(body.substr(pos, end - pos));
        parts.push_back(std::move(part));
        pos = end + next.size();
    }
}

}  // namespace fg::api
