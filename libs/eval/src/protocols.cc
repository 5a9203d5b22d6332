// SPDX-License-Identifier: Apache-2.0
#include "fg/eval/protocols.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace fg::eval {
namespace {

namespace fs = std::filesystem;

// Line-oriented reader that tolerates CRLF files and remembers the 1-based line number, so every
// parse error can point at the offending line.
class LineReader {
  public:
    explicit LineReader(const fs::path& path) : path_(path), in_(path) {}

    bool is_open() const { return in_.is_open(); }
    int line_number() const { return line_number_; }

    // Next line that is not blank; false at end of file.
    bool NextNonBlank(std::string& line) {
        while (std::getline(in_, line)) {
            ++line_number_;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find_first_not_of(" \t") != std::string::npos) return true;
        }
        return false;
    }

    Status Error(std::string_view reason) const {
        return InvalidArgument(path_.string() + ":" + std::to_string(line_number_) + ": " +
                               std::string(reason));
    }

  private:
    fs::path path_;
    std::ifstream in_;
    int line_number_ = 0;
};

std::vector<std::string_view> SplitFields(std::string_view line, std::string_view separators) {
    std::vector<std::string_view> fields;
    size_t pos = 0;
    while (pos < line.size()) {
        size_t begin = line.find_first_not_of(separators, pos);
        if (begin == std::string_view::npos) break;
        size_t end = line.find_first_of(separators, begin);
        if (end == std::string_view::npos) end = line.size();
        fields.push_back(line.substr(begin, end - begin));
        pos = end;
    }
    return fields;
}

std::string_view Trim(std::string_view s) {
    size_t begin = s.find_first_not_of(" \t");
    if (begin == std::string_view::npos) return {};
    size_t end = s.find_last_not_of(" \t");
    return s.substr(begin, end - begin + 1);
}

// Strictly positive decimal integer; rejects signs, spaces and trailing garbage.
std::optional<int> ParsePositive(std::string_view s) {
    int value = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || ptr != s.data() + s.size() || value <= 0) return std::nullopt;
    return value;
}

Status RequireReadable(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return NotFound("file not found: " + path.string());
    return Status::Ok();
}

// A person name becomes a folder under root: refuse anything that could leave it.
bool IsPlainName(std::string_view name) {
    return name != "." && name != ".." && name.find_first_of("/\\") == std::string_view::npos;
}

fs::path LfwImagePath(const fs::path& root, std::string_view name, int index) {
    char number[16];
    std::snprintf(number, sizeof(number), "%04d", index);
    std::string file(name);
    file += '_';
    file += number;
    file += ".jpg";
    return root / std::string(name) / file;
}

// ---- CFP ----

using PairList = std::unordered_map<int, fs::path>;

// Pair_list_{F,P}.txt: "<index> <path relative to Protocol/>", index 1-based.
Result<PairList> LoadCfpPairList(const fs::path& file, const fs::path& protocol_dir) {
    FG_RETURN_IF_ERROR(RequireReadable(file));
    LineReader reader(file);
    if (!reader.is_open()) return NotFound("cannot open " + file.string());
    PairList images;
    std::string line;
    while (reader.NextNonBlank(line)) {
        std::string_view rest = Trim(line);
        size_t split = rest.find_first_of(" \t");
        if (split == std::string_view::npos) return reader.Error("expected '<index> <path>'");
        auto index = ParsePositive(rest.substr(0, split));
        if (!index) {
            return reader.Error("invalid image index '" + std::string(rest.substr(0, split)) + "'");
        }
        const fs::path rel(std::string(Trim(rest.substr(split))));
        if (!images.emplace(*index, (protocol_dir / rel).lexically_normal()).second) {
            return reader.Error("duplicate image index " + std::to_string(*index));
        }
    }
    if (images.empty()) return InvalidArgument(file.string() + ": no images listed");
    return images;
}

// same.txt / diff.txt: lines "i,j" (1-based indices into the first and second pair list).
Status AppendCfpSplit(const fs::path& file, const PairList& first, const PairList& second,
                      bool same, int fold, std::vector<ImagePair>& out) {
    FG_RETURN_IF_ERROR(RequireReadable(file));
    LineReader reader(file);
    if (!reader.is_open()) return NotFound("cannot open " + file.string());
    std::string line;
    while (reader.NextNonBlank(line)) {
        auto fields = SplitFields(line, ",");
        if (fields.size() != 2) return reader.Error("expected 'i,j'");
        auto i = ParsePositive(Trim(fields[0]));
        auto j = ParsePositive(Trim(fields[1]));
        if (!i || !j) return reader.Error("invalid index in '" + line + "'");
        auto a = first.find(*i);
        if (a == first.end()) {
            return reader.Error("index " + std::to_string(*i) + " is not in the first pair list");
        }
        auto b = second.find(*j);
        if (b == second.end()) {
            return reader.Error("index " + std::to_string(*j) + " is not in the second pair list");
        }
        out.push_back(ImagePair{a->second, b->second, same, fold});
    }
    return Status::Ok();
}

}  // namespace

Result<std::vector<ImagePair>> LoadLfwPairs(const fs::path& pairs_file, const fs::path& root) {
    FG_RETURN_IF_ERROR(RequireReadable(pairs_file));
    LineReader reader(pairs_file);
    if (!reader.is_open()) return NotFound("cannot open " + pairs_file.string());

    std::string line;
    if (!reader.NextNonBlank(line)) return reader.Error("empty file, expected a header");
    // "<folds> <n>" (pairs.txt, view 2) or "<n>" (pairsDevTrain/DevTest, view 1: one fold).
    auto header = SplitFields(line, " \t");
    std::optional<int> folds;
    std::optional<int> per_class;
    if (header.size() == 1) {
        folds = 1;
        per_class = ParsePositive(header[0]);
    } else if (header.size() == 2) {
        folds = ParsePositive(header[0]);
        per_class = ParsePositive(header[1]);
    }
    if (!folds || !per_class) {
        return reader.Error("invalid header, expected '<folds> <n>' or '<n>'");
    }

    std::vector<ImagePair> pairs;
    for (int fold = 0; fold < *folds; ++fold) {
        for (long long k = 0; k < 2LL * *per_class; ++k) {
            const bool same = k < *per_class;
            if (!reader.NextNonBlank(line)) {
                return reader.Error("unexpected end of file: fold " + std::to_string(fold + 1) +
                                    " expects " + std::to_string(*per_class) +
                                    (same ? " same" : " different") + " pairs");
            }
            auto f = SplitFields(line, " \t");
            if (same) {
                if (f.size() != 3) return reader.Error("expected a same pair 'name i j'");
                if (!IsPlainName(f[0])) return reader.Error("invalid name in '" + line + "'");
                auto i = ParsePositive(f[1]);
                auto j = ParsePositive(f[2]);
                if (!i || !j) return reader.Error("invalid image number in '" + line + "'");
                pairs.push_back(ImagePair{LfwImagePath(root, f[0], *i),
                                          LfwImagePath(root, f[0], *j), true, fold});
            } else {
                if (f.size() != 4) {
                    return reader.Error("expected a different pair 'name1 i name2 j'");
                }
                if (!IsPlainName(f[0]) || !IsPlainName(f[2])) {
                    return reader.Error("invalid name in '" + line + "'");
                }
                auto i = ParsePositive(f[1]);
                auto j = ParsePositive(f[3]);
                if (!i || !j) return reader.Error("invalid image number in '" + line + "'");
                pairs.push_back(ImagePair{LfwImagePath(root, f[0], *i),
                                          LfwImagePath(root, f[2], *j), false, fold});
            }
        }
    }
    if (reader.NextNonBlank(line)) return reader.Error("unexpected extra line after the last fold");
    return pairs;
}

Result<std::vector<ImagePair>> LoadCfpPairs(const fs::path& root, const std::string& protocol) {
    std::string proto = protocol;
    std::transform(proto.begin(), proto.end(), proto.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (proto != "FF" && proto != "FP") {
        return InvalidArgument("CFP protocol must be FF or FP, got '" + protocol + "'");
    }
    const fs::path protocol_dir = root / "Protocol";
    std::error_code ec;
    if (!fs::is_directory(protocol_dir, ec)) {
        return NotFound("CFP protocol folder not found: " + protocol_dir.string());
    }

    FG_ASSIGN_OR_RETURN(auto frontal,
                        LoadCfpPairList(protocol_dir / "Pair_list_F.txt", protocol_dir));
    PairList profile;
    if (proto == "FP") {
        FG_ASSIGN_OR_RETURN(profile,
                            LoadCfpPairList(protocol_dir / "Pair_list_P.txt", protocol_dir));
    }
    const PairList& second = proto == "FP" ? profile : frontal;

    // Split folders are named 01, 02, ...; they must run from 1 without gaps, so that a missing
    // folder is reported here rather than showing up as a silently smaller protocol.
    const fs::path split_dir = protocol_dir / "Split" / proto;
    if (!fs::is_directory(split_dir, ec)) {
        return NotFound("CFP split folder not found: " + split_dir.string());
    }
    std::vector<std::pair<int, fs::path>> splits;
    for (const auto& entry : fs::directory_iterator(split_dir, ec)) {
        if (!entry.is_directory()) continue;
        if (auto n = ParsePositive(entry.path().filename().string())) {
            splits.emplace_back(*n, entry.path());
        }
    }
    if (ec) return NotFound("cannot list " + split_dir.string() + ": " + ec.message());
    if (splits.empty()) return NotFound("no numbered split folders in " + split_dir.string());
    std::sort(splits.begin(), splits.end());
    for (size_t k = 0; k < splits.size(); ++k) {
        if (splits[k].first != static_cast<int>(k) + 1) {
            return InvalidArgument("CFP split folders in " + split_dir.string() +
                                   " must be numbered 1..N without gaps; split " +
                                   std::to_string(k + 1) + " is missing");
        }
    }

    std::vector<ImagePair> pairs;
    for (const auto& [number, dir] : splits) {
        const int fold = number - 1;
        FG_RETURN_IF_ERROR(AppendCfpSplit(dir / "same.txt", frontal, second, true, fold, pairs));
        FG_RETURN_IF_ERROR(AppendCfpSplit(dir / "diff.txt", frontal, second, false, fold, pairs));
    }
    return pairs;
}

}  // namespace fg::eval
