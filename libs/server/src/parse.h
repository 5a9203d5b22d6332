// SPDX-License-Identifier: Apache-2.0
// Turning untrusted bytes into a Request: Beast's parser with our limits, then target checks,
// percent-decoding and the query string. The server and the fuzz harness use exactly this.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "fg/base/status.h"
#include "fg/server/http.h"

namespace fg::server::detail {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// Decodes %XX escapes (and '+' as space when `plus_is_space`, for query strings). Errors on a
/// malformed escape or a decoded NUL byte.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);

/// Fills method, target, path, query, headers and body of `out` from a parsed message.
/// Errors (400): a target that is not origin-form ("/path?query", or "*" for OPTIONS), bad
/// percent-encoding.
Status BuildRequest(BeastRequest&& message, Request& out);

/// The fuzz entry point: feeds `bytes` to a parser limited like the server's, then BuildRequest.
/// NotFound when the bytes hold no complete request.
Result<Request> ParseRequestBytes(std::string_view bytes, std::size_t max_header_bytes, std::size_t max_body_bytes);

}  // namespace fg::server::detail
