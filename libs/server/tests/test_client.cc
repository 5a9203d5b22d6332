// SPDX-License-Identifier: Apache-2.0
#include "test_client.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace fg::server::testing {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Client::Impl {
    net::io_context ioc;
    net::ssl::context ssl{net::ssl::context::tls_client};
    std::unique_ptr<beast::tcp_stream> tcp_stream;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_stream;
    beast::flat_buffer buffer;
    bool connected = false;

    beast::tcp_stream& Lowest() { return tls_stream ? beast::get_lowest_layer(*tls_stream) : *tcp_stream; }

    // Runs the io_context until `done` or the timeout; on timeout the socket is closed (the
    // pending op then completes with an error).
    bool RunUntil(const bool& done, std::chrono::milliseconds timeout) {
        ioc.restart();
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done && std::chrono::steady_clock::now() < deadline) {
            ioc.run_one_for(std::chrono::milliseconds(20));
        }
        if (!done) {
            beast::error_code ec;
            Lowest().socket().close(ec);
            ioc.restart();
            ioc.run_for(std::chrono::milliseconds(200));
            connected = false;
        }
        return done;
    }

    template <class F>
    void With(F&& f) {
        if (tls_stream) {
            f(*tls_stream);
        } else {
            f(*tcp_stream);
        }
    }
};

Client::Client(int port, bool tls) : impl_(std::make_unique<Impl>()) {
    impl_->ssl.set_verify_mode(net::ssl::verify_none);
    tcp::socket socket(impl_->ioc);
    beast::error_code ec;
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)), ec);
    if (ec) return;
    if (tls) {
        impl_->tls_stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(socket), impl_->ssl);
        bool done = false;
        beast::error_code hec;
        impl_->tls_stream->async_handshake(net::ssl::stream_base::client, [&](beast::error_code e) {
            hec = e;
            done = true;
        });
        impl_->connected = true;
        if (!impl_->RunUntil(done, std::chrono::seconds(5)) || hec) impl_->connected = false;
    } else {
        impl_->tcp_stream = std::make_unique<beast::tcp_stream>(std::move(socket));
        impl_->connected = true;
    }
}

Client::~Client() = default;
bool Client::connected() const { return impl_->connected; }

bool Client::SendRaw(const std::string& bytes) {
    if (!impl_->connected) return false;
    bool done = false;
    beast::error_code ec;
    impl_->With([&](auto& s) {
        net::async_write(s, net::buffer(bytes), [&](beast::error_code e, std::size_t) {
            ec = e;
            done = true;
        });
    });
    return impl_->RunUntil(done, std::chrono::seconds(5)) && !ec;
}

Reply Client::ReadReply(std::chrono::milliseconds timeout) {
    Reply reply;
    if (!impl_->connected) return reply;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bool done = false;
    beast::error_code ec;
    impl_->With([&](auto& s) {
        http::async_read(s, impl_->buffer, parser, [&](beast::error_code e, std::size_t) {
            ec = e;
            done = true;
        });
    });
    if (!impl_->RunUntil(done, timeout) || ec) {
        impl_->connected = false;
        return reply;
    }
    auto msg = parser.release();
    reply.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        reply.headers[name] = std::string(f.value());
    }
    reply.body = std::move(msg.body());
    return reply;
}

Reply Client::Do(const std::string& method, const std::string& target, const std::string& body,
                 const Headers& headers, std::chrono::milliseconds timeout) {
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : headers) raw += k + ": " + v + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT") raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    raw += "\r\n" + body;
    if (!SendRaw(raw)) return {};
    return ReadReply(timeout);
}

bool Client::ReadUntil(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const std::string have = beast::buffers_to_string(impl_->buffer.data());
        if (have.find(needle) != std::string::npos) {
            impl_->buffer.consume(impl_->buffer.size());
            return true;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (!impl_->connected || left.count() <= 0) return false;
        bool done = false;
        beast::error_code ec;
        std::size_t n = 0;
        impl_->With([&](auto& s) {
            s.async_read_some(impl_->buffer.prepare(16384), [&](beast::error_code e, std::size_t got) {
                ec = e;
                n = got;
                done = true;
            });
        });
        if (!impl_->RunUntil(done, left)) return false;
        if (ec) {
            impl_->connected = false;
            return false;
        }
        impl_->buffer.commit(n);
    }
}

bool Client::WaitClosed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        bool done = false;
        beast::error_code ec;
        impl_->With([&](auto& s) {
            s.async_read_some(impl_->buffer.prepare(16384), [&](beast::error_code e, std::size_t) {
                ec = e;
                done = true;
            });
        });
        if (!impl_->RunUntil(done, left)) return false;
        impl_->buffer.consume(impl_->buffer.size());
        if (ec) {
            impl_->connected = false;
            return true;
        }
    }
}

void Client::ShutdownSend() {
    beast::error_code ec;
    impl_->Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
}

void Client::Close() {
    beast::error_code ec;
    impl_->Lowest().socket().close(ec);
    impl_->connected = false;
}

Reply Fetch(int port, const std::string& method, const std::string& target, const std::string& body,
            const Headers& headers, bool tls) {
    Client c(port, tls);
    return c.Do(method, target, body, headers);
}

}  // namespace fg::server::testing
