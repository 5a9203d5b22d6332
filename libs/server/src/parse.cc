// SPDX-License-Identifier: Apache-2.0
#include "parse.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace fg::server::detail {
namespace http = boost::beast::http;

namespace {
int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return InvalidArgument("truncated percent escape");
            const int hi = HexValue(in[i + 1]);
            const int lo = HexValue(in[i + 2]);
            if (hi < 0 || lo < 0) return InvalidArgument("malformed percent escape");
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') return InvalidArgument("NUL byte in URL");
        out.push_back(c);
    }
    return out;
}

Status BuildRequest(BeastRequest&& message, Request& out) {
    out.method = std::string(message.method_string());
    out.target = std::string(message.target());
    std::string_view target = out.target;
    if (target == "*" && message.method() == http::verb::options) {
        out.path = "*";
    } else {
        if (target.empty() || target.front() != '/') return InvalidArgument("request target must start with '/'");
        const std::size_t q = target.find('?');
        FG_ASSIGN_OR_RETURN(out.path, PercentDecode(target.substr(0, q), false));
        if (q != std::string_view::npos) {
            std::string_view query = target.substr(q + 1);
            const std::size_t hash = query.find('#');
            if (hash != std::string_view::npos) query = query.substr(0, hash);
            while (!query.empty()) {
                const std::size_t amp = query.find('&');
                const std::string_view pair = query.substr(0, amp);
                query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
                if (pair.empty()) continue;
                const std::size_t eq = pair.find('=');
                FG_ASSIGN_OR_RETURN(std::string key, PercentDecode(pair.substr(0, eq), true));
                std::string value;
                if (eq != std::string_view::npos) {
                    FG_ASSIGN_OR_RETURN(value, PercentDecode(pair.substr(eq + 1), true));
                }
                out.query[std::move(key)] = std::move(value);
            }
        }
    }
    out.headers.clear();
    for (const auto& field : message) {
        out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(message.body());
    return Status::Ok();
}

Result<Request> ParseRequestBytes(std::string_view bytes, std::size_t max_header_bytes, std::size_t max_body_bytes) {
    BeastParser parser;
    parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
    parser.body_limit(max_body_bytes);
    parser.eager(true);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (used < bytes.size() && !parser.is_done()) {
        const std::size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        if (ec == http::error::need_more) break;
        if (ec) return InvalidArgument("malformed request: " + ec.message());
        if (n == 0) break;
        used += n;
    }
    if (!parser.is_done()) {
        parser.put_eof(ec);
        if (ec || !parser.is_done()) return NotFound("incomplete request");
    }
    Request request;
    FG_RETURN_IF_ERROR(BuildRequest(parser.release(), request));
    return request;
}

}  // namespace fg::server::detail
