// SPDX-License-Identifier: Apache-2.0
// One HTTP connection (plain TCP or TLS): reads requests with the size limits and timeouts of
// ServerConfig, dispatches them (inline on the IO thread, or on the compute pool), writes the
// responses, keeps the connection alive, and runs streaming responses through a bounded queue.
// Every method except RequestStop runs on the connection's strand.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "internal.h"
#include "parse.h"

namespace fg::server::detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

/// The StreamWriter handed to a streaming handler: a byte queue bounded by stream_queue_bytes.
/// Thread-safe. `wake` posts a drain to the connection's strand; it is called under the mutex,
/// so once Detach() returned no thread can post to the IO context any more (Server::Stop).
class QueueWriter final : public StreamWriter {
  public:
    QueueWriter(std::size_t limit, std::function<void()> wake) : limit_(limit), wake_(std::move(wake)) {}

    bool Write(std::string bytes) override {
        std::lock_guard lock(mu_);
        if (!open_) return false;
        if (bytes.empty()) return true;
        if (queued_ + bytes.size() > limit_) {  // too slow: cut it off rather than grow
            open_ = false;
            aborted_ = true;
            queue_.clear();
            queued_ = 0;
            WakeLocked();
            return false;
        }
        queued_ += bytes.size();
        queue_.push_back(std::move(bytes));
        WakeLocked();
        return true;
    }
    bool Open() const override {
        std::lock_guard lock(mu_);
        return open_;
    }
    void Close() override {
        std::lock_guard lock(mu_);
        if (!open_) return;
        open_ = false;
        finished_ = true;
        WakeLocked();
    }

    // Connection side.
    struct Batch {
        std::string data;
        bool finished = false;  ///< the producer closed: end the body after `data`
        bool aborted = false;   ///< overflow or connection gone: close now
    };
    Batch Take() {
        std::lock_guard lock(mu_);
        wake_pending_ = false;
        Batch b;
        for (auto& s : queue_) b.data += s;
        queue_.clear();
        queued_ = 0;
        b.finished = finished_;
        b.aborted = aborted_;
        return b;
    }
    bool Aborted() const {
        std::lock_guard lock(mu_);
        return aborted_;
    }
    /// The connection is gone: Write returns false from now on.
    void MarkGone() {
        std::lock_guard lock(mu_);
        if (open_) aborted_ = true;
        open_ = false;
        queue_.clear();
        queued_ = 0;
    }
    /// Like MarkGone, and never wake the connection again (the IO context is going away).
    void Detach() {
        std::lock_guard lock(mu_);
        open_ = false;
        aborted_ = true;
        wake_ = nullptr;
    }

  private:
    void WakeLocked() {
        if (wake_pending_ || !wake_) return;
        wake_pending_ = true;
        wake_();
    }
    const std::size_t limit_;
    mutable std::mutex mu_;
    std::function<void()> wake_;
    std::deque<std::string> queue_;
    std::size_t queued_ = 0;
    bool open_ = true;
    bool finished_ = false;
    bool aborted_ = false;
    bool wake_pending_ = false;
};

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  public:
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
    using Clock = std::chrono::steady_clock;

    Session(std::shared_ptr<ServerState> state, net::ip::tcp::socket&& socket,
            std::shared_ptr<net::ssl::context> tls, bool reject)
        : st_(std::move(state)), tls_(std::move(tls)), stream_(MakeStream(std::move(socket), tls_.get())),
          reject_(reject) {
        ++st_->connections;
        beast::error_code ec;
        const auto ep = Tcp().socket().remote_endpoint(ec);
        remote_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    ~Session() override {
        {
            std::lock_guard lock(st_->sessions_mu);
            st_->sessions.erase(this);
        }
        --st_->connections;
    }

    void Run() {
        net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
    }

    void RequestStop() override {
        {
            std::lock_guard lock(writer_mu_);
            if (writer_) writer_->Detach();
        }
        net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(false); });
    }

  private:
    static Stream MakeStream(net::ip::tcp::socket&& socket, net::ssl::context* tls) {
        if constexpr (kTls) {
            return Stream(std::move(socket), *tls);
        } else {
            (void)tls;
            return Stream(std::move(socket));
        }
    }
    beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }
    const ServerConfig& cfg() const { return st_->config; }

    void Begin() {
        if constexpr (kTls) {
            Tcp().expires_after(cfg().header_timeout);
            stream_.async_handshake(net::ssl::stream_base::server,
                                    [self = this->shared_from_this()](beast::error_code ec) {
                                        if (ec) return self->Close(false);  // not TLS, or too slow
                                        self->AfterConnect();
                                    });
        } else {
            AfterConnect();
        }
    }

    void AfterConnect() {
        if (reject_) {
            t0_ = Clock::now();
            route_ = "overloaded";
            Response r = Response::Error(503, "overloaded", "too many connections; retry later");
            r.headers.emplace_back("Retry-After", "1");
            LogRequestError(*st_, nullptr, remote_, 503, "max_connections reached");
            return Send(std::move(r), true);
        }
        ReadRequest();
    }

    void ReadRequest() {
        if (closed_) return;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(cfg().max_header_bytes));
        parser_->body_limit(cfg().max_body_bytes);
        const bool wait_idle = !first_ && buf_.size() == 0;
        first_ = false;
        if (!wait_idle) return ReadHead();
        // Keep-alive: the next request may start within idle_timeout; its head then has
        // header_timeout to arrive complete.
        Tcp().expires_after(cfg().idle_timeout);
        stream_.async_read_some(buf_.prepare(4096), [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
            if (ec) return self->Close(false);
            self->buf_.commit(n);
            self->ReadHead();
        });
    }

    void ReadHead() {
        Tcp().expires_after(cfg().header_timeout);
        bhttp::async_read_header(stream_, buf_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
            self->OnHead(ec);
        });
    }

    static bool IsHttpError(const beast::error_code& ec) {
        return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
    }

    void OnHead(beast::error_code ec) {
        t0_ = Clock::now();
        if (ec) {
            if (ec == bhttp::error::header_limit) {
                return Fail(431, "header_too_large", "the request head exceeds " + std::to_string(cfg().max_header_bytes) + " bytes");
            }
            if (ec == bhttp::error::body_limit) {  // Content-Length over the limit: no need to read it
                return Fail(413, "payload_too_large", "the body exceeds " + std::to_string(cfg().max_body_bytes) + " bytes");
            }
            if (ec == beast::error::timeout) {
                LogRequestError(*st_, nullptr, remote_, 408, "request head not complete within header_timeout");
                return Close(false);
            }
            if (ec == bhttp::error::partial_message) {
                LogRequestError(*st_, nullptr, remote_, 400, "connection closed inside the request head");
                return Close(false);
            }
            if (IsHttpError(ec) && ec != bhttp::error::end_of_stream) {
                return Fail(400, "bad_request", "malformed request: " + ec.message());
            }
            return Close(false);  // EOF between requests, reset, TLS error
        }
        const auto length = parser_->content_length();
        if (length && *length > cfg().max_body_bytes) {
            return Fail(413, "payload_too_large", "the body exceeds " + std::to_string(cfg().max_body_bytes) + " bytes");
        }
        if (parser_->is_done()) return OnRequest();
        if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
            auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, parser_->get().version());
            Tcp().expires_after(cfg().write_timeout);
            return bhttp::async_write(stream_, *cont, [self = this->shared_from_this(), cont](beast::error_code ec2, std::size_t) {
                if (ec2) return self->Close(false);
                self->ReadBody();
            });
        }
        ReadBody();
    }

    void ReadBody() {
        Tcp().expires_after(cfg().body_timeout);
        bhttp::async_read(stream_, buf_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
            if (!ec) return self->OnRequest();
            if (ec == bhttp::error::body_limit) {
                return self->Fail(413, "payload_too_large", "the body exceeds " + std::to_string(self->cfg().max_body_bytes) + " bytes");
            }
            if (ec == beast::error::timeout) {
                LogRequestError(*self->st_, nullptr, self->remote_, 408, "request body not complete within body_timeout");
            } else if (ec == bhttp::error::partial_message) {
                LogRequestError(*self->st_, nullptr, self->remote_, 400, "connection closed inside the request body");
            } else if (IsHttpError(ec)) {
                return self->Fail(400, "bad_request", "malformed request body: " + ec.message());
            }
            self->Close(false);
        });
    }

    // A request we cannot read further: answer and close.
    void Fail(int status, std::string code, std::string message) {
        route_ = "invalid";
        LogRequestError(*st_, nullptr, remote_, status, message);
        Send(Response::Error(status, std::move(code), std::move(message)), true);
    }

    void OnRequest() {
        auto message = parser_->release();
        version_ = message.version();
        keep_alive_ = message.keep_alive();
        req_ = Request{};
        req_.remote = remote_;
        extra_.clear();
        if (Status s = BuildRequest(std::move(message), req_); !s.ok()) {
            route_ = "invalid";
            LogRequestError(*st_, nullptr, remote_, 400, s.message());
            return Send(Response::Error(400, "bad_request", s.message()), !keep_alive_);
        }
        Routed routed;
        try {  // the authenticator is user code too
            routed = Route(*st_, req_);
        } catch (const std::exception& e) {
            route_ = "invalid";
            LogRequestError(*st_, &req_, remote_, 500, std::string("routing threw: ") + e.what());
            return Send(Response::Error(500, "internal", "internal error"), !keep_alive_);
        }
        route_ = std::move(routed.route);
        extra_ = std::move(routed.extra_headers);
        if (routed.response) return Reply(std::move(*routed.response), false);
        const Handler* handler = routed.handler;
        if (!routed.compute) {
            bool logged = false;
            Response r = RunHandler(*st_, *handler, req_, &logged);
            return Reply(std::move(r), logged);
        }
        // req_ is only touched by the pool thread until the reply is posted back.
        auto self = this->shared_from_this();
        const bool queued = st_->pool.TrySubmit([self, handler] {
            bool logged = false;
            Response r = RunHandler(*self->st_, *handler, self->req_, &logged);
            net::post(self->stream_.get_executor(), [self, r = std::move(r), logged]() mutable {
                self->Reply(std::move(r), logged);
            });
        });
        if (!queued) {
            Response r = Response::Error(503, "overloaded", "the compute queue is full; retry later");
            r.headers.emplace_back("Retry-After", "1");
            Reply(std::move(r), false);
        }
    }

    void Reply(Response r, bool logged) {
        if (closed_) return;
        if (r.defer) return Defer(std::move(r.defer));
        if (r.status < 100 || r.status > 599) {  // Beast would throw on the IO thread
            LogRequestError(*st_, &req_, remote_, 500, "handler returned HTTP status " + std::to_string(r.status));
            r = Response::Error(500, "internal", "internal error");
            logged = true;
        }
        if (r.status >= 400 && !logged) {
            LogRequestError(*st_, &req_, remote_, r.status, "on route " + route_);
        }
        for (auto& h : extra_) r.headers.push_back(h);
        if (r.stream && r.status < 300) return StartStream(std::move(r));
        Send(std::move(r), !keep_alive_);
    }

    // A deferred response: the session keeps itself alive (no IO is pending meanwhile) until the
    // responder delivers or the connection closes; the delivery is posted to the strand.
    void Defer(std::function<void(std::shared_ptr<Responder>)> start) {
        pending_self_ = this->shared_from_this();
        std::weak_ptr<Session> weak = pending_self_;
        auto responder = std::make_shared<DeferredResponder>([weak, st = st_](Response out) {
            std::lock_guard lock(st->post_mu);
            if (st->io_gone) return;
            auto s = weak.lock();
            if (!s) return;  // closed meanwhile (server stopping)
            auto ex = s->stream_.get_executor();
            net::post(ex, [s = std::move(s), out = std::move(out)]() mutable { s->OnDeferred(std::move(out)); });
        });
        try {
            start(responder);
        } catch (const std::exception& e) {
            LogRequestError(*st_, &req_, remote_, 500, std::string("deferred response threw: ") + e.what());
            responder->Send(Response::Error(500, "internal", "internal error"));
        } catch (...) {
            responder->Send(Response::Error(500, "internal", "internal error"));
        }
    }

    void OnDeferred(Response out) {
        auto keep = std::move(pending_self_);
        if (closed_) return;
        if (out.defer) {  // one deferral per request
            LogRequestError(*st_, &req_, remote_, 500, "a deferred response deferred again");
            out = Response::Error(500, "internal", "internal error");
        }
        Reply(std::move(out), false);
    }

    void Send(Response r, bool close) {
        if (closed_) return;
        status_ = r.status;
        res_ = std::make_shared<bhttp::response<bhttp::string_body>>();
        res_->version(version_);
        res_->result(static_cast<unsigned>(r.status));
        if (!r.content_type.empty() && !r.body.empty()) res_->set(bhttp::field::content_type, r.content_type);
        for (const auto& [name, value] : r.headers) res_->insert(name, value);
        res_->body() = std::move(r.body);
        res_->keep_alive(!close);
        res_->prepare_payload();
        Tcp().expires_after(cfg().write_timeout);
        bhttp::async_write(stream_, *res_, [self = this->shared_from_this(), close](beast::error_code ec, std::size_t) {
            self->Observe();
            self->res_.reset();
            if (ec || close) return self->Close(!ec);
            self->ReadRequest();
        });
    }

    void Observe() {
        if (!st_->observer) return;
        try {
            st_->observer(route_, status_, std::chrono::duration<double>(Clock::now() - t0_).count());
        } catch (...) {
        }
    }

    void StartStream(Response r) {
        status_ = r.status;
        start_ = std::move(r.stream);
        sres_ = std::make_shared<bhttp::response<bhttp::empty_body>>();
        sres_->version(version_);
        sres_->result(static_cast<unsigned>(r.status));
        sres_->set(bhttp::field::content_type, r.content_type);
        sres_->set(bhttp::field::cache_control, "no-cache");
        for (const auto& [name, value] : r.headers) sres_->insert(name, value);
        // HTTP/1.1: chunked; HTTP/1.0: the body ends when the connection closes.
        chunked_ = version_ >= 11;
        if (chunked_) sres_->chunked(true);
        sres_->keep_alive(false);
        serializer_.emplace(*sres_);
        Tcp().expires_after(cfg().write_timeout);
        bhttp::async_write_header(stream_, *serializer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
            self->OnStreamHead(ec);
        });
    }

    void OnStreamHead(beast::error_code ec) {
        Observe();
        if (ec || closed_) return Close(false);
        std::weak_ptr<Session> weak = this->shared_from_this();
        auto writer = std::make_shared<QueueWriter>(cfg().stream_queue_bytes, [weak] {
            if (auto s = weak.lock()) {
                auto ex = s->stream_.get_executor();
                net::post(ex, [s = std::move(s)] { s->Drain(); });
            }
        });
        {
            std::lock_guard lock(writer_mu_);
            writer_ = writer;
        }
        // Watch the socket: a client that goes away ends the stream at once. Only writes time
        // out from here on (a stream may be quiet for long).
        Tcp().expires_never();
        WatchRead();
        auto start = std::move(start_);
        start_ = nullptr;
        try {
            start(writer);
        } catch (const std::exception& e) {
            LogRequestError(*st_, &req_, remote_, 500, std::string("stream start threw: ") + e.what());
            Close(false);
        } catch (...) {
            Close(false);
        }
    }

    void WatchRead() {
        stream_.async_read_some(net::buffer(watch_), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->Close(false);
            self->WatchRead();  // whatever the client sends now is ignored
        });
    }

    void Drain() {
        if (closed_ || !writer_) return;
        if (writer_->Aborted()) return Close(false);  // overflow: cut off even mid-write
        if (writing_) return;
        auto batch = writer_->Take();
        if (batch.aborted) return Close(false);
        auto done = [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
            self->writing_ = false;
            self->out_.clear();
            if (ec) return self->Close(false);
            self->Drain();
        };
        if (!batch.data.empty()) {
            out_ = std::move(batch.data);
            writing_ = true;
            Tcp().expires_after(cfg().write_timeout);
            if (chunked_) return net::async_write(stream_, bhttp::make_chunk(net::buffer(out_)), std::move(done));
            return net::async_write(stream_, net::buffer(out_), std::move(done));
        }
        if (batch.finished) {
            if (!chunked_) return Close(false);
            writing_ = true;
            Tcp().expires_after(cfg().write_timeout);
            net::async_write(stream_, bhttp::make_chunk_last(), [self = this->shared_from_this()](beast::error_code, std::size_t) {
                self->Close(false);  // not lingering: the watch read is still pending
            });
        }
    }

    // linger: shut down our side and read what the client still sends for a moment, so a
    // response sent before an unread body (413) is not destroyed by a TCP reset.
    void Close(bool linger) {
        if (closed_) return;
        closed_ = true;
        auto keep = std::move(pending_self_);  // a deferred response will find the session gone
        {
            std::lock_guard lock(writer_mu_);
            if (writer_) writer_->MarkGone();
        }
        beast::error_code ec;
        if constexpr (!kTls) {
            if (linger) {
                Tcp().socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
                Tcp().expires_after(std::chrono::milliseconds(500));
                return Discard(0);
            }
        }
        Tcp().socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
        Tcp().close();
    }

    void Discard(std::size_t total) {
        Tcp().async_read_some(net::buffer(watch_), [self = this->shared_from_this(), total](beast::error_code ec, std::size_t n) {
            if (ec || total + n > (1u << 20)) return self->Tcp().close();
            self->Discard(total + n);
        });
    }

    std::shared_ptr<ServerState> st_;
    std::shared_ptr<net::ssl::context> tls_;
    Stream stream_;
    const bool reject_;
    std::string remote_;
    beast::flat_buffer buf_;
    std::optional<BeastParser> parser_;
    bool first_ = true;
    bool closed_ = false;
    bool keep_alive_ = true;
    unsigned version_ = 11;
    Request req_;
    std::string route_;
    std::vector<std::pair<std::string, std::string>> extra_;
    int status_ = 0;
    Clock::time_point t0_ = Clock::now();
    std::shared_ptr<bhttp::response<bhttp::string_body>> res_;
    std::shared_ptr<Session> pending_self_;  // set while a deferred response is awaited
    // streaming
    std::function<void(std::shared_ptr<StreamWriter>)> start_;
    std::shared_ptr<bhttp::response<bhttp::empty_body>> sres_;
    std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer_;
    std::mutex writer_mu_;
    std::shared_ptr<QueueWriter> writer_;
    bool chunked_ = true;
    bool writing_ = false;
    std::string out_;
    char watch_[1024];
};

}  // namespace fg::server::detail
