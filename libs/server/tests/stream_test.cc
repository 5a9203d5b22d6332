// SPDX-License-Identifier: Apache-2.0
// Streaming responses (SSE), many connections at once, clients that vanish or stall, TLS.
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fg/testing/testing.h"
#include "server_fixture.h"

namespace fg::server::testing {
namespace {

using namespace std::chrono_literals;

// Opens an SSE subscription and reads up to the server's first comment.
std::unique_ptr<Client> Subscribe(int port) {
    auto c = std::make_unique<Client>(port);
    if (!c->SendRaw("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")) return nullptr;
    if (!c->ReadUntil(": hello", 5s)) return nullptr;
    return c;
}

TEST_F(ServerFixture, StreamDeliversEventsChunked) {
    Client c(port_);
    ASSERT_TRUE(c.SendRaw("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(c.ReadUntil("Transfer-Encoding: chunked", 2s));
    ASSERT_TRUE(subscribers_.WaitFor(1));
    EXPECT_EQ(subscribers_.Broadcast("data: {\"n\":1}\n\n"), 1);
    EXPECT_TRUE(c.ReadUntil("data: {\"n\":1}", 2s));
    subscribers_.writers[0]->Close();  // the producer ends the stream: last chunk, then close
    EXPECT_TRUE(c.WaitClosed(2s));
}

TEST_F(ServerFixture, VanishedStreamClientClosesTheWriter) {
    auto c = Subscribe(port_);
    ASSERT_TRUE(c);
    ASSERT_TRUE(subscribers_.WaitFor(1));
    auto writer = subscribers_.writers[0];
    EXPECT_TRUE(writer->Open());
    c->Close();  // gone without a word
    bool closed = false;
    for (int i = 0; i < 300 && !closed; ++i) {
        closed = !writer->Write("data: tick\n\n");
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(closed);
    EXPECT_FALSE(writer->Open());
    ExpectHealthy();
}

TEST_F(ServerFixture, StalledStreamClientIsCutOffWithoutBlockingTheProducer) {
    Client c(port_);  // subscribes, then never reads again
    ASSERT_TRUE(c.SendRaw("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(subscribers_.WaitFor(1));
    auto writer = subscribers_.writers[0];
    const std::string chunk(16 * 1024, 'z');
    const auto t0 = std::chrono::steady_clock::now();
    bool cut = false;
    // The kernel buffers take a few MB; the 64 KB queue or write_timeout then cut the client off.
    while (!cut && std::chrono::steady_clock::now() - t0 < 10s) {
        const auto w0 = std::chrono::steady_clock::now();
        cut = !writer->Write(chunk);
        EXPECT_LT(std::chrono::steady_clock::now() - w0, 1s) << "Write blocked the producer";
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_TRUE(cut);
    ExpectHealthy();
}

TEST_F(ServerFixture, StopEndsOpenStreams) {
    auto c = Subscribe(port_);
    ASSERT_TRUE(c);
    ASSERT_TRUE(subscribers_.WaitFor(1));
    server_->Stop();
    EXPECT_FALSE(subscribers_.writers[0]->Write("data: x\n\n"));
    EXPECT_TRUE(c->WaitClosed(2s));
}

class ManyConnectionsTest : public ServerFixture {
  protected:
    void SetUp() override {
        auto c = TestConfig();
        c.idle_timeout = std::chrono::seconds(30);
        c.header_timeout = std::chrono::seconds(5);
        StartServer(c);
    }
};

// Issue 14 point 7: 256 keep-alive connections and 100 SSE subscribers on 2 IO threads, and
// plain requests still succeed.
TEST_F(ManyConnectionsTest, KeepAliveAndSseAtOnce) {
    std::vector<std::unique_ptr<Client>> idle;
    for (int i = 0; i < 256; ++i) {
        idle.push_back(std::make_unique<Client>(port_));
        ASSERT_EQ(idle.back()->Do("GET", "/healthz").status, 200) << i;
    }
    std::vector<std::unique_ptr<Client>> sse;
    for (int i = 0; i < 100; ++i) {
        sse.push_back(Subscribe(port_));
        ASSERT_TRUE(sse.back()) << i;
    }
    ASSERT_TRUE(subscribers_.WaitFor(100));
    EXPECT_EQ(server_->open_connections(), 356u);
    // A producer keeps publishing while other clients make requests.
    std::atomic<bool> stop{false};
    std::thread producer([&] {
        for (int n = 0; !stop; ++n) {
            subscribers_.Broadcast("id: " + std::to_string(n) + "\ndata: {}\n\n");
            std::this_thread::sleep_for(20ms);
        }
    });
    for (int i = 0; i < 50; ++i) EXPECT_EQ(Fetch(port_, "GET", "/healthz").status, 200) << i;
    for (auto& c : idle) EXPECT_EQ(c->Do("GET", "/healthz").status, 200);
    for (auto& c : sse) EXPECT_TRUE(c->ReadUntil("data: {}", 5s));
    stop = true;
    producer.join();
}

// A self-signed P-256 certificate for 127.0.0.1, written as PEM files readable only by us.
void WriteSelfSigned(const std::string& cert_path, const std::string& key_path) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ASSERT_NE(key, nullptr);
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    const mode_t old = umask(077);
    FILE* f = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    umask(old);
    X509_free(cert);
    EVP_PKEY_free(key);
}

class TlsTest : public ServerFixture {
  protected:
    void SetUp() override {
        WriteSelfSigned((dir_ / "cert.pem").string(), (dir_ / "key.pem").string());
        auto c = TestConfig();
        c.tls = TlsConfig{.cert_file = (dir_ / "cert.pem").string(), .key_file = (dir_ / "key.pem").string()};
        StartServer(c);
    }
    fg::testing::TmpDir dir_;
};

TEST_F(TlsTest, ServesHttpsAndKeepsAlive) {
    Client c(port_, /*tls=*/true);
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.Do("GET", "/healthz").status, 200);
    auto r = c.Do("GET", "/v1/items/x", "", {{"X-API-Key", "read-key"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(nlohmann::json::parse(r.body)["id"], "x");
    // Plain HTTP on the TLS port gets nowhere, and the server stays up.
    Client plain(port_);
    plain.SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(plain.ReadReply(2s).status, 0);
    EXPECT_EQ(Fetch(port_, "GET", "/healthz", "", {}, true).status, 200);
}

TEST(TlsConfigTest, MissingCertificateFailsStart) {
    ServerConfig c;
    c.port = 0;
    c.tls = TlsConfig{.cert_file = "/nonexistent/cert.pem", .key_file = "/nonexistent/key.pem"};
    auto server = Server::Create(c, Router{});
    ASSERT_TRUE(server.ok());
    Status s = (*server)->Start();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("tls.cert_file"), std::string::npos) << s.ToString();
}

TEST(ListenTest, AddressInUseIsAnError) {
    ServerConfig c;
    c.port = 0;
    auto a = Server::Create(c, Router{});
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE((*a)->Start().ok());
    c.port = (*a)->port();
    auto b = Server::Create(c, Router{});
    ASSERT_TRUE(b.ok());
    EXPECT_FALSE((*b)->Start().ok());
}

}  // namespace
}  // namespace fg::server::testing
