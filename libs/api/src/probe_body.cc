// SPDX-License-Identifier: Apache-2.0
// The identify-by-embedding body's fast reader (probe_body.h says why and what it accepts).
#include "probe_body.h"

#include <cctype>
#include <charconv>

namespace fg::api {
namespace {

/// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?: exactly JSON's number grammar.
bool JsonNumberShape(std::string_view t) {
    std::size_t i = 0;
    auto digits = [&] {
        const std::size_t b = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        return i > b;
    };
    if (i < t.size() && t[i] == '-') ++i;
    if (i < t.size() && t[i] == '0') {
        ++i;
    } else if (!digits()) {
        return false;
    }
    if (i < t.size() && t[i] == '.') {
        ++i;
        if (!digits()) return false;
    }
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        ++i;
        if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
        if (!digits()) return false;
    }
    return i == t.size();
}

}  // namespace

bool ParseProbeBodyFast(std::string_view body, FastProbe& out) {
    const std::string_view s = body;
    if (s.size() > 64 * 1024 || s.find('\\') != std::string_view::npos) return false;
    std::size_t i = 0;
    auto ws = [&] {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    };
    auto lit = [&](char c) {
        ws();
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    };
    auto text = [&](std::string_view& o) {
        ws();
        if (i >= s.size() || s[i] != '"') return false;
        const std::size_t end = s.find('"', i + 1);
        if (end == std::string_view::npos) return false;
        o = s.substr(i + 1, end - i - 1);
        for (unsigned char c : o) {
            if (c < 0x20 || c >= 0x80) return false;
        }
        i = end + 1;
        return true;
    };
    if (!lit('{')) return false;
    bool have_embedding = false;
    do {
        std::string_view key;
        if (!text(key) || !lit(':')) return false;
        if (key == "embedding" && !have_embedding) {
            if (!lit('[')) return false;
            out.values.reserve(512);
            do {
                ws();
                std::size_t j = i;
                while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == '+' ||
                                        s[j] == '.' || s[j] == 'e' || s[j] == 'E')) {
                    ++j;
                }
                const std::string_view tok = s.substr(i, j - i);
                if (!JsonNumberShape(tok)) return false;
                // An integer beyond 15 digits would round twice (text -> double -> float) where
                // nlohmann's integer -> float rounds once: leave it to the general parser.
                if (tok.find_first_of(".eE") == std::string_view::npos && tok.size() > 15) return false;
                double v = 0;  // as nlohmann: a double, then the float
                const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
                if (ec != std::errc() || end != tok.data() + tok.size()) return false;
                out.values.push_back(static_cast<float>(v));
                if (out.values.size() > 4096) return false;
                i = j;
            } while (lit(','));
            if (!lit(']')) return false;
            have_embedding = true;
        } else if (key == "model_id" && !out.model_id) {
            std::string_view m;
            if (!text(m)) return false;
            out.model_id = std::string(m);
        } else {
            return false;
        }
    } while (lit(','));
    if (!lit('}')) return false;
    ws();
    return i == s.size() && have_embedding && !out.values.empty();
}

}  // namespace fg::api
