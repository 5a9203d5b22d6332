// SPDX-License-Identifier: Apache-2.0
// Server: the listener, the IO threads, TLS set-up and an orderly Stop. Connections live in
// session.h, routing/auth/limits in dispatch.cc.
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include "session.h"

namespace fg::server {
namespace {

using namespace detail;
using tcp = net::ip::tcp;

class ServerImpl final : public Server {
  public:
    explicit ServerImpl(std::shared_ptr<ServerState> state) : st_(std::move(state)) {}
    ~ServerImpl() override { Stop(); }

    Status Start() override {
        if (started_) return FailedPrecondition("server already started");
        const ServerConfig& cfg = st_->config;
        if (cfg.tls) {
            auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
            ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                             net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                             net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
            beast::error_code ec;
            ctx->use_certificate_chain_file(cfg.tls->cert_file, ec);
            if (ec) return InvalidArgument("tls.cert_file: cannot load '" + cfg.tls->cert_file + "': " + ec.message());
            ctx->use_private_key_file(cfg.tls->key_file, net::ssl::context::pem, ec);
            if (ec) return InvalidArgument("tls.key_file: cannot load '" + cfg.tls->key_file + "': " + ec.message());
            tls_ = std::move(ctx);
        }
        ioc_ = std::make_unique<net::io_context>(cfg.io_threads);
        acceptor_.emplace(net::make_strand(*ioc_));
        beast::error_code ec;
        const tcp::endpoint endpoint(net::ip::make_address(cfg.listen_address, ec), static_cast<unsigned short>(cfg.port));
        if (ec) return InvalidArgument("listen_address: " + ec.message());
        const std::string where = cfg.listen_address + ":" + std::to_string(cfg.port);
        acceptor_->open(endpoint.protocol(), ec);
        if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
        if (!ec) acceptor_->bind(endpoint, ec);
        if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
        if (ec) {
            acceptor_.reset();
            ioc_.reset();
            return Unavailable("cannot listen on " + where + ": " + ec.message());
        }
        port_ = acceptor_->local_endpoint().port();
        retry_timer_.emplace(acceptor_->get_executor());
        started_ = true;
        Accept();
        for (int i = 0; i < cfg.io_threads; ++i) {
            threads_.emplace_back([this] {
                // A throwing completion handler must not end the IO thread (or the process).
                for (;;) {
                    try {
                        ioc_->run();
                        return;
                    } catch (const std::exception& e) {
                        spdlog::error("http: IO thread caught: {}", e.what());
                    }
                }
            });
        }
        spdlog::info("http: listening on {}:{}{}", cfg.listen_address, port_.load(), tls_ ? " (TLS)" : "");
        return Status::Ok();
    }

    void Stop() override {
        if (!started_ || stopped_) return;
        stopped_ = true;
        st_->stopping = true;
        std::promise<void> closed;
        net::post(acceptor_->get_executor(), [&] {
            beast::error_code ec;
            acceptor_->close(ec);
            retry_timer_->cancel();
            closed.set_value();
        });
        closed.get_future().wait_for(std::chrono::seconds(2));
        std::vector<std::shared_ptr<SessionBase>> live;
        {
            std::lock_guard lock(st_->sessions_mu);
            for (auto& [ptr, weak] : st_->sessions) {
                if (auto s = weak.lock()) live.push_back(std::move(s));
            }
        }
        for (auto& s : live) s->RequestStop();
        live.clear();
        // Let the closes run; then stop whatever is left (bounded).
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (st_->connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ioc_->stop();
        for (auto& t : threads_) t.join();
        threads_.clear();
        st_->pool.Stop();  // running jobs finish and post to the stopped context: dropped below
        {
            std::lock_guard lock(st_->post_mu);  // deferred responses stop posting from here on
            st_->io_gone = true;
        }
        retry_timer_.reset();
        acceptor_.reset();
        ioc_.reset();  // destroys pending handlers, hence the remaining connections
    }

    int port() const override { return port_.load(); }
    std::size_t open_connections() const override { return st_->connections.load(); }
    std::size_t compute_queue_depth() const override { return st_->pool.waiting(); }
    double compute_busy_seconds() const override { return st_->pool.busy_seconds(); }

  private:
    void Accept() {
        acceptor_->async_accept(net::make_strand(*ioc_), [this](beast::error_code ec, tcp::socket socket) {
            if (st_->stopping || ec == net::error::operation_aborted) return;
            if (ec) {
                // EMFILE and friends: back off briefly instead of spinning.
                spdlog::warn("http: accept failed: {}", ec.message());
                retry_timer_->expires_after(std::chrono::milliseconds(50));
                retry_timer_->async_wait([this](beast::error_code wec) {
                    if (!wec && !st_->stopping) Accept();
                });
                return;
            }
            const bool reject = st_->connections.load() >= static_cast<std::size_t>(st_->config.max_connections);
            if (tls_) {
                Launch(std::make_shared<Session<TlsStream>>(st_, std::move(socket), tls_, reject));
            } else {
                Launch(std::make_shared<Session<beast::tcp_stream>>(st_, std::move(socket), nullptr, reject));
            }
            Accept();
        });
    }

    template <class S>
    void Launch(std::shared_ptr<S> session) {
        {
            std::lock_guard lock(st_->sessions_mu);
            st_->sessions[session.get()] = session;
        }
        session->Run();
    }

    std::shared_ptr<ServerState> st_;
    std::shared_ptr<net::ssl::context> tls_;
    std::unique_ptr<net::io_context> ioc_;
    std::optional<tcp::acceptor> acceptor_;
    std::optional<net::steady_timer> retry_timer_;
    std::vector<std::thread> threads_;
    std::atomic<int> port_{0};
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Create(ServerConfig config, Router router, Authenticator auth,
                                               RequestObserver observer) {
    FG_RETURN_IF_ERROR(config.Validate());
    auto state = std::make_shared<ServerState>(std::move(config), std::move(router), std::move(auth), std::move(observer));
    return std::unique_ptr<Server>(std::make_unique<ServerImpl>(std::move(state)));
}

}  // namespace fg::server
