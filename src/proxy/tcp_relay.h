#pragma once
// Passes a captured connection that is not HTTP through as bytes, both ways, to where it was
// going. Half-closes are propagated (a client's FIN reaches the server and the reply still
// flows back), bytes are counted, and one connection-level access-log line is written.
//
// Either side may be under the sidecars' mutual TLS (each side is a Stream, plain or TLS):
//   - outbound with `transparent.outbound_tls`: the upstream side is originated as mutual TLS
//     offering ALPN "pillion-mtls-tcp", the peer verified like HTTP's (chain, SPIFFE ID, the
//     expected IDs), sessions resumed;
//   - inbound: a sidecar's ClientHello offering "pillion-mtls-tcp" is terminated here, the
//     listener's authorization decides on the peer's SPIFFE ID, and the decrypted bytes go to the
//     app.
// Over TLS, a half-close is a close_notify followed by the TCP FIN; a close_notify received is
// passed on as a FIN. A TLS stream cut without close_notify ends both sides (it may be a
// truncation).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "config/schema.h"
#include "observe/flags.h"
#include "proxy/stream.h"
#include "proxy/worker.h"
#include "tls/identity.h"
#include "upstream/host.h"

namespace pillion::proxy {

struct TcpDestination {
  boost::asio::ip::tcp::endpoint address;
  std::optional<boost::asio::ip::address> source;   // bind before connecting (127.0.0.6 inbound)
  std::string protocol;                             // what detection saw: "tcp", "tls", "h2c"
  std::optional<config::ClusterTls> originate_tls;  // outbound: tunnel inside mutual TLS
  bool terminate_tls = false;  // inbound: the client is a sidecar tunnelling TCP in mutual TLS
  uint16_t port = 0;           // the original destination port (for log lines)
};

class TcpRelay final : public Connection {
 public:
  // `accepted`: when the connection was accepted, so its duration includes protocol detection.
  // `first_bytes`: read during detection; with terminate_tls they begin the ClientHello.
  // `listener` belongs to `runtime`, which the relay keeps alive (a reload may replace it).
  TcpRelay(Worker& worker, boost::asio::ip::tcp::socket downstream, RuntimePtr runtime,
           const ListenerRuntime& listener, TcpDestination destination, std::string first_bytes,
           Clock::time_point accepted);
  ~TcpRelay() override;

  boost::asio::awaitable<void> run();

  void on_tick(Clock::time_point now) override;
  void on_drain() override {}  // opaque bytes have no place to say "go away"; drain time ends it
  void abort() override;
  void close_now() override { close_both(); }

 private:
  using tcp = boost::asio::ip::tcp;
  enum class Phase { kHandshake, kConnect, kRelay };

  boost::asio::awaitable<bool> accept_tls();
  bool authorized();
  boost::asio::awaitable<bool> connect();
  boost::asio::awaitable<bool> originate_tls();
  boost::asio::awaitable<void> copy(Stream& from, Stream& to, uint64_t& counter);
  boost::asio::awaitable<void> half_close(Stream& to);
  void arm(Phase phase, core::Duration timeout);
  void close_both();
  void log_connection();

  Worker& worker_;
  Stream downstream_;
  Stream upstream_;
  RuntimePtr runtime_;
  const ListenerRuntime& listener_;
  TcpDestination destination_;
  tls::IdentityPtr identity_;  // keeps the TLS context of either side alive
  std::string first_bytes_;    // read during detection; the upstream gets them first
  std::string client_address_;
  std::string upstream_label_;
  std::string peer_id_;  // inbound mutual TLS: the client's SPIFFE ID
  std::chrono::system_clock::time_point start_wall_;
  Clock::time_point start_;
  Clock::time_point deadline_ = Clock::time_point::max();
  Phase phase_ = Phase::kConnect;
  bool timed_out_ = false;
  bool log_ = true;  // false: no access-log line (a failed inbound handshake, like HTTP's)
  uint64_t bytes_from_client_ = 0;
  uint64_t bytes_to_client_ = 0;
  observe::Flags flags_ = 0;
};

// "1.2.3.4:80" or "[::1]:80".
using upstream::endpoint_label;

}  // namespace pillion::proxy
