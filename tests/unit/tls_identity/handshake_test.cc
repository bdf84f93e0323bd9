// Real TLS handshakes over loopback TCP between the contexts Identity builds.
#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "test_certs.h"
#include "tls/identity.h"
#include "tls/session_cache.h"
#include "tls/tls_context.h"

namespace pillion::tls {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using testing::LeafOptions;
using testing::Pem;
using testing::TempDir;
using testing::TestCa;
using testing::write_file;
using namespace std::chrono_literals;

constexpr const char* kServerId = "spiffe://cluster.local/ns/prod/sa/payments";
constexpr const char* kClientId = "spiffe://cluster.local/ns/prod/sa/web";

struct Result {
  boost::system::error_code server_error;
  boost::system::error_code client_error;  // handshake, then the read of the server's byte
  std::optional<std::string> server_sees;  // peer_spiffe_id on the server
  std::optional<std::string> client_sees;
  std::string server_verify_error;
  std::string client_verify_error;
  std::string server_alpn;
  std::string client_alpn;
  bool server_saw_pillion_alpn = false;
  bool client_resumed = false;
  bool server_resumed = false;
};

// One connection: the server accepts, handshakes and writes one byte; the client connects,
// handshakes (offering a cached session when given one) and reads that byte, which also takes in
// TLS 1.3 session tickets. In TLS 1.3 a client learns that the server refused its certificate
// only on that read.
Result connect_once(ssl::context& server_context, ssl::context& client_context,
                    SessionCache* cache = nullptr, const std::string& key = "upstream",
                    bool tcp_tunnel = false) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  ssl::stream<tcp::socket> server(io, server_context);
  ssl::stream<tcp::socket> client(io, client_context);
  Result result;
  char out = 'x';
  char in = 0;

  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code ec) {
    if (ec) {
      result.server_error = ec;
      return;
    }
    server.async_handshake(ssl::stream_base::server, [&](boost::system::error_code ec) {
      result.server_error = ec;
      result.server_verify_error = verify_error(server.native_handle());
      if (ec) {
        server.next_layer().close();
        return;
      }
      result.server_sees = peer_spiffe_id(server.native_handle());
      result.server_alpn = selected_alpn(server.native_handle());
      result.server_saw_pillion_alpn = peer_offered_pillion_alpn(server.native_handle());
      result.server_resumed = session_resumed(server.native_handle());
      asio::async_write(server, asio::buffer(&out, 1), [](boost::system::error_code, size_t) {});
    });
  });
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) {
      result.client_error = ec;
      return;
    }
    if (cache != nullptr) {
      cache->apply(client.native_handle(), key);
    }
    set_server_name(client.native_handle(), "payments.prod");
    if (tcp_tunnel) {
      EXPECT_TRUE(offer_tcp_tunnel_alpn(client.native_handle()));
    }
    client.async_handshake(ssl::stream_base::client, [&](boost::system::error_code ec) {
      result.client_error = ec;
      result.client_verify_error = verify_error(client.native_handle());
      if (ec) {
        client.next_layer().close();
        return;
      }
      result.client_sees = peer_spiffe_id(client.native_handle());
      result.client_alpn = selected_alpn(client.native_handle());
      result.client_resumed = cache != nullptr ? cache->resumed(client.native_handle())
                                               : session_resumed(client.native_handle());
      asio::async_read(client, asio::buffer(&in, 1), [&](boost::system::error_code ec, size_t) {
        result.client_error = ec;
        if (ec) {
          return;
        }
        // Done: close both ends so the loop runs out of work.
        client.next_layer().close();
        server.next_layer().close();
      });
    });
  });
  io.run_for(10s);
  return result;
}

class HandshakeTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Identity> make_identity(const TestCa& ca, const Pem& leaf,
                                                const std::string& name) {
    IdentityFiles files;
    files.cert = dir_.file(name + "-cert.pem");
    files.key = dir_.file(name + "-key.pem");
    files.ca = dir_.file(name + "-ca.pem");
    write_file(files.cert, leaf.cert);
    write_file(files.key, leaf.key);
    write_file(files.ca, ca.cert_pem());
    std::string error;
    auto identity = Identity::load(files, error);
    EXPECT_NE(identity, nullptr) << error;
    return identity;
  }

  // A client context made directly (not through Identity): for peers Identity would refuse.
  static std::unique_ptr<ssl::context> raw_client(const TestCa& trusted, const Pem* leaf) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
    if (leaf != nullptr) {
      context->use_certificate_chain(asio::buffer(leaf->cert));
      context->use_private_key(asio::buffer(leaf->key), ssl::context::pem);
    }
    context->add_certificate_authority(asio::buffer(trusted.cert_pem()));
    context->set_verify_mode(ssl::verify_peer);
    return context;
  }

  TempDir dir_;
  TestCa ca_{"Test CA"};
  std::shared_ptr<const Identity> server_ = make_identity(ca_, ca_.issue(kServerId), "server");
  std::shared_ptr<const Identity> client_ = make_identity(ca_, ca_.issue(kClientId), "client");
};

TEST_F(HandshakeTest, MutualTlsCompletesAndEachSideSeesTheOthersId) {
  auto result = connect_once(*server_->server_context(), *client_->client_context());
  ASSERT_FALSE(result.server_error)
      << result.server_error.message() << " " << result.server_verify_error;
  ASSERT_FALSE(result.client_error)
      << result.client_error.message() << " " << result.client_verify_error;
  EXPECT_EQ(result.server_sees, kClientId);
  EXPECT_EQ(result.client_sees, kServerId);
  EXPECT_EQ(result.server_alpn, "http/1.1");
  EXPECT_EQ(result.client_alpn, "http/1.1");
  EXPECT_TRUE(result.server_saw_pillion_alpn);
  EXPECT_EQ(result.server_verify_error, "");
  EXPECT_EQ(result.client_verify_error, "");
  EXPECT_TRUE(peer_id_allowed(*result.client_sees, {kServerId}));
  EXPECT_FALSE(peer_id_allowed(*result.client_sees, {kClientId}));
}

TEST_F(HandshakeTest, ThroughAnIntermediate) {
  TestCa intermediate("Test Intermediate", ca_);
  auto leaf = intermediate.issue(kServerId);
  leaf.cert += intermediate.cert_pem();
  auto server = make_identity(ca_, leaf, "chained");
  ASSERT_NE(server, nullptr);
  auto result = connect_once(*server->server_context(), *client_->client_context());
  EXPECT_FALSE(result.server_error) << result.server_error.message();
  EXPECT_FALSE(result.client_error) << result.client_error.message();
  EXPECT_EQ(result.client_sees, kServerId);
}

TEST_F(HandshakeTest, TlsOnePointTwoAlsoWorks) {
  SSL_CTX_set_max_proto_version(client_->client_context()->native_handle(), TLS1_2_VERSION);
  auto result = connect_once(*server_->server_context(), *client_->client_context());
  SSL_CTX_set_max_proto_version(client_->client_context()->native_handle(), 0);
  ASSERT_FALSE(result.server_error) << result.server_error.message();
  ASSERT_FALSE(result.client_error) << result.client_error.message();
  EXPECT_EQ(result.server_sees, kClientId);
  EXPECT_EQ(result.client_sees, kServerId);
}

TEST_F(HandshakeTest, AClientWithoutACertificateIsRefused) {
  auto client = raw_client(ca_, nullptr);
  auto result = connect_once(*server_->server_context(), *client);
  EXPECT_TRUE(result.server_error);
  EXPECT_TRUE(result.client_error);
  EXPECT_EQ(result.server_verify_error, "peer presented no certificate");
  EXPECT_EQ(result.server_sees, std::nullopt);
}

TEST_F(HandshakeTest, AClientFromAnotherCaIsRefused) {
  TestCa other("Other CA");
  auto leaf = other.issue(kClientId);
  auto client = raw_client(ca_, &leaf);
  auto result = connect_once(*server_->server_context(), *client);
  EXPECT_TRUE(result.server_error);
  EXPECT_TRUE(result.client_error);
  EXPECT_EQ(result.server_verify_error, "unable to get local issuer certificate");
}

TEST_F(HandshakeTest, AServerFromAnotherCaIsRefusedByTheClient) {
  TestCa other("Other CA");
  auto server = make_identity(other, other.issue(kServerId), "other");
  auto result = connect_once(*server->server_context(), *client_->client_context());
  EXPECT_TRUE(result.client_error);
  EXPECT_EQ(result.client_verify_error, "unable to get local issuer certificate");
}

TEST_F(HandshakeTest, AnExpiredClientCertificateIsRefusedWithAClearError) {
  LeafOptions expired;
  expired.uris = {kClientId};
  expired.not_before_seconds = -7200;
  expired.not_after_seconds = -60;
  auto leaf = ca_.issue(expired);
  auto client = raw_client(ca_, &leaf);
  auto result = connect_once(*server_->server_context(), *client);
  EXPECT_TRUE(result.server_error);
  EXPECT_TRUE(result.client_error);
  EXPECT_EQ(result.server_verify_error, "certificate has expired");
}

TEST_F(HandshakeTest, APeerWithoutASpiffeIdOrOfAnotherTrustDomainIsRefused) {
  LeafOptions none;
  auto leaf = ca_.issue(none);
  auto client = raw_client(ca_, &leaf);
  auto result = connect_once(*server_->server_context(), *client);
  EXPECT_TRUE(result.server_error);
  EXPECT_EQ(result.server_verify_error, "peer certificate: no URI SAN (a SPIFFE ID is required)");

  leaf = ca_.issue("spiffe://elsewhere.org/ns/prod/sa/web");
  client = raw_client(ca_, &leaf);
  result = connect_once(*server_->server_context(), *client);
  EXPECT_TRUE(result.server_error);
  EXPECT_EQ(result.server_verify_error,
            "peer ID spiffe://elsewhere.org/ns/prod/sa/web is not of a trusted trust domain");
}

TEST_F(HandshakeTest, AClientWithoutAlpnGetsNone) {
  auto leaf = ca_.issue(kClientId);
  auto client = raw_client(ca_, &leaf);
  auto result = connect_once(*server_->server_context(), *client);
  ASSERT_FALSE(result.server_error) << result.server_error.message();
  EXPECT_EQ(result.server_alpn, "");
  EXPECT_FALSE(result.server_saw_pillion_alpn);
  EXPECT_EQ(result.server_sees, kClientId);
}

TEST_F(HandshakeTest, ATcpTunnelOffersItsOwnAlpnAndTheServerPicksIt) {
  auto result = connect_once(*server_->server_context(), *client_->client_context(), nullptr,
                             "upstream", true);
  ASSERT_FALSE(result.server_error) << result.server_error.message();
  ASSERT_FALSE(result.client_error) << result.client_error.message();
  EXPECT_EQ(result.server_alpn, kAlpnPillionMtlsTcp);
  EXPECT_EQ(result.client_alpn, kAlpnPillionMtlsTcp);
  EXPECT_TRUE(result.server_saw_pillion_alpn);  // a sidecar, not an app's own TLS
  EXPECT_EQ(result.server_sees, kClientId);
}

// A half-close inside TLS: the client sends its close_notify (taken from OpenSSL and written on
// the socket by hand) and a FIN; the server reads the end of the stream and still answers; the
// client reads the whole answer after its own close_notify.
TEST_F(HandshakeTest, CloseNotifyTakenByHandIsAHalfClose) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  ssl::stream<tcp::socket> server(io, *server_->server_context());
  ssl::stream<tcp::socket> client(io, *client_->client_context());
  boost::system::error_code server_read_error;
  std::string reply = "reply after the client's close_notify";
  std::string received(reply.size(), '\0');
  boost::system::error_code client_read_error;
  std::string second_take = "unset";
  char sink = 0;

  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code ec) {
    ASSERT_FALSE(ec);
    server.async_handshake(ssl::stream_base::server, [&](boost::system::error_code ec) {
      ASSERT_FALSE(ec) << ec.message();
      server.async_read_some(asio::buffer(&sink, 1), [&](boost::system::error_code ec, size_t) {
        server_read_error = ec;
        asio::async_write(server, asio::buffer(reply), [](boost::system::error_code, size_t) {});
      });
    });
  });
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    ASSERT_FALSE(ec);
    client.async_handshake(ssl::stream_base::client, [&](boost::system::error_code ec) {
      ASSERT_FALSE(ec) << ec.message();
      std::string alert = take_close_notify(client.native_handle());
      ASSERT_FALSE(alert.empty());
      EXPECT_EQ(alert[0], 0x17);  // TLS 1.3 hides the alert in an application-data record
      second_take = take_close_notify(client.native_handle());
      asio::write(client.next_layer(), asio::buffer(alert));
      client.next_layer().shutdown(tcp::socket::shutdown_send);
      asio::async_read(client, asio::buffer(received), [&](boost::system::error_code ec, size_t) {
        client_read_error = ec;
        client.next_layer().close();
        server.next_layer().close();
      });
    });
  });
  io.run_for(10s);
  EXPECT_EQ(server_read_error, asio::error::eof) << server_read_error.message();
  EXPECT_EQ(second_take, "");  // already sent: nothing twice
  EXPECT_FALSE(client_read_error) << client_read_error.message();
  EXPECT_EQ(received, reply);
}

TEST_F(HandshakeTest, ReconnectsResumeTheSession) {
  SessionCache cache;
  auto first = connect_once(*server_->server_context(), *client_->client_context(), &cache);
  ASSERT_FALSE(first.client_error) << first.client_error.message();
  EXPECT_FALSE(first.client_resumed);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_GE(cache.stored(), 1u);

  auto second = connect_once(*server_->server_context(), *client_->client_context(), &cache);
  ASSERT_FALSE(second.client_error) << second.client_error.message();
  EXPECT_TRUE(second.client_resumed);
  EXPECT_TRUE(second.server_resumed);
  EXPECT_EQ(second.client_sees, kServerId);  // the peer's ID survives resumption
  EXPECT_EQ(second.server_sees, kClientId);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);

  // Another key has no session.
  auto other =
      connect_once(*server_->server_context(), *client_->client_context(), &cache, "elsewhere");
  EXPECT_FALSE(other.client_resumed);
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(HandshakeTest, TlsOnePointTwoSessionsResumeToo) {
  SSL_CTX_set_max_proto_version(client_->client_context()->native_handle(), TLS1_2_VERSION);
  SessionCache cache;
  auto first = connect_once(*server_->server_context(), *client_->client_context(), &cache);
  auto second = connect_once(*server_->server_context(), *client_->client_context(), &cache);
  SSL_CTX_set_max_proto_version(client_->client_context()->native_handle(), 0);
  ASSERT_FALSE(second.client_error) << second.client_error.message();
  EXPECT_TRUE(second.client_resumed);
  EXPECT_EQ(second.server_sees, kClientId);
}

TEST_F(HandshakeTest, ASessionFromAnotherClientContextIsNotOffered) {
  SessionCache cache;
  connect_once(*server_->server_context(), *client_->client_context(), &cache);
  ASSERT_EQ(cache.size(), 1u);
  // A rotated identity has new contexts: the old session is dropped, not offered.
  auto rotated = make_identity(ca_, ca_.issue(kClientId), "rotated");
  auto result = connect_once(*server_->server_context(), *rotated->client_context(), &cache);
  ASSERT_FALSE(result.client_error) << result.client_error.message();
  EXPECT_FALSE(result.client_resumed);
  EXPECT_EQ(result.server_sees, kClientId);
}

TEST_F(HandshakeTest, TheCacheIsBounded) {
  SessionCache cache(2);
  for (const char* key : {"a", "b", "c"}) {
    connect_once(*server_->server_context(), *client_->client_context(), &cache, key);
  }
  EXPECT_EQ(cache.size(), 2u);
  auto oldest = connect_once(*server_->server_context(), *client_->client_context(), &cache, "a");
  EXPECT_FALSE(oldest.client_resumed);  // dropped as the oldest
  auto newest = connect_once(*server_->server_context(), *client_->client_context(), &cache, "c");
  EXPECT_TRUE(newest.client_resumed);
}

TEST_F(HandshakeTest, TheCacheMayDieBeforeItsConnections) {
  asio::io_context io;
  auto cache = std::make_unique<SessionCache>();
  ssl::stream<tcp::socket> stream(io, *client_->client_context());
  cache->apply(stream.native_handle(), "k");
  cache.reset();
  // A ticket arriving now finds no cache and is left to OpenSSL.
  SSL_SESSION* session = SSL_SESSION_new();
  EXPECT_EQ(SessionCache::on_new_session(stream.native_handle(), session), 0);
  SSL_SESSION_free(session);
}

}  // namespace
}  // namespace pillion::tls
