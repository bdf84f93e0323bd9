#include "proxy/tcp_relay.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <memory>

#include "tls/authorization.h"
#include "tls/tls_context.h"

namespace pillion::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using observe::Flag;
using observe::flag_bit;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr size_t kRelayBuffer = 16 * 1024;

}  // namespace

TcpRelay::TcpRelay(Worker& worker, tcp::socket downstream, RuntimePtr runtime,
                   const ListenerRuntime& listener, TcpDestination destination,
                   std::string first_bytes, Clock::time_point accepted)
    : worker_(worker),
      downstream_(std::move(downstream)),
      upstream_(tcp::socket(worker.context())),
      runtime_(std::move(runtime)),
      listener_(listener),
      destination_(std::move(destination)),
      first_bytes_(std::move(first_bytes)),
      upstream_label_(endpoint_label(destination_.address)),
      start_wall_(
          std::chrono::system_clock::now() -
          std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - accepted)),
      start_(accepted) {
  worker_.link(*this);
  worker_.stats().downstream_cx_total.add();
  worker_.stats().downstream_cx_active.add();
  worker_.stats().tcp_passthrough_total.add();
  boost::system::error_code ec;
  auto remote = downstream_.socket().remote_endpoint(ec);
  if (!ec) {
    client_address_ = endpoint_label(remote);
  }
}

TcpRelay::~TcpRelay() {
  worker_.stats().downstream_cx_active.sub();
}

void TcpRelay::arm(Phase phase, core::Duration timeout) {
  phase_ = phase;
  deadline_ = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
}

void TcpRelay::on_tick(Clock::time_point now) {
  if (now < deadline_) {
    return;
  }
  deadline_ = Clock::time_point::max();
  timed_out_ = true;
  switch (phase_) {
    case Phase::kHandshake:
      break;  // the handshake's failure is logged by accept_tls
    case Phase::kConnect:
      flags_ |= flag_bit(Flag::kUpstreamConnectFailure);
      break;
    case Phase::kRelay:
      flags_ |= flag_bit(Flag::kStreamIdleTimeout);
      break;
  }
  close_both();
}

void TcpRelay::abort() {
  flags_ |= flag_bit(Flag::kLocalReset);
  close_both();
}

void TcpRelay::close_both() {
  boost::system::error_code ignored;
  downstream_.socket().close(ignored);
  upstream_.socket().close(ignored);
}

// Inbound: the sidecar's mutual TLS, terminated with the workload identity current now. The
// capture listener chose this relay because the ClientHello offered "pillion-mtls-tcp".
awaitable<bool> TcpRelay::accept_tls() {
  auto& stats = worker_.stats();
  const auto& name = listener_.config->name;
  identity_ = worker_.identity_ptr();
  if (!identity_) {
    spdlog::error("listener {}: mutual TLS asked for, but no workload identity is loaded", name);
    co_return false;
  }
  auto& tls = downstream_.start_tls(*identity_->server_context());
  // A client that stalls mid-handshake must not hold the connection for ever, even when
  // connect_timeout is 0 (no limit on connecting).
  auto timeout = worker_.runtime().config->transparent.connect_timeout;
  arm(Phase::kHandshake, timeout.count() > 0 ? timeout : core::Duration(std::chrono::seconds(10)));
  auto [ec, used] = co_await tls.async_handshake(asio::ssl::stream_base::server,
                                                 asio::buffer(first_bytes_), kUse);
  first_bytes_.clear();
  SSL* ssl = tls.native_handle();
  std::string problem;
  if (ec) {
    problem = timed_out_ ? std::string("timeout") : tls::handshake_error(ssl, ec);
  } else if (tls::selected_alpn(ssl) != tls::kAlpnPillionMtlsTcp) {
    problem = fmt::format("ALPN {} is not {}", tls::selected_alpn(ssl), tls::kAlpnPillionMtlsTcp);
  }
  if (!problem.empty()) {
    stats.downstream_tls_handshake_failures.add();
    spdlog::info("listener {}: TLS handshake with {} failed: {}", name, client_address_, problem);
    co_return false;
  }
  stats.downstream_tls_handshakes.add();
  peer_id_ = tls::peer_spiffe_id(ssl).value_or("");
  co_return true;
}

// The listener's rules on the peer's SPIFFE ID (a TCP connection has no route).
bool TcpRelay::authorized() {
  if (listener_.authorization == nullptr || listener_.authorization->allows(peer_id_)) {
    return true;
  }
  worker_.stats().downstream_rq_denied.add();
  flags_ |= flag_bit(Flag::kAccessDenied);
  upstream_label_.clear();
  spdlog::info("listener {}: denied TCP connection from {} (peer {}) to port {}",
               listener_.config->name, client_address_, peer_id_.empty() ? "-" : peer_id_,
               destination_.port);
  return false;
}

awaitable<bool> TcpRelay::connect() {
  auto& stats = worker_.stats();
  auto& socket = upstream_.socket();
  boost::system::error_code ec;
  socket.open(destination_.address.protocol(), ec);
  if (!ec && destination_.source) {
    socket.bind(tcp::endpoint(*destination_.source, 0), ec);
  }
  if (!ec) {
    arm(Phase::kConnect, worker_.runtime().config->transparent.connect_timeout);
    std::tie(ec) = co_await socket.async_connect(destination_.address, kUse);
  }
  if (ec) {
    stats.upstream_cx_connect_fail.add();
    flags_ |= flag_bit(Flag::kUpstreamConnectFailure);
    spdlog::debug("tcp passthrough to {}: {}", upstream_label_, ec.message());
    co_return false;
  }
  socket.set_option(tcp::no_delay(true), ec);
  if (destination_.originate_tls && !co_await originate_tls()) {
    flags_ |= flag_bit(Flag::kUpstreamConnectFailure);
    co_return false;
  }
  stats.upstream_cx_total.add();
  co_return true;
}

// Outbound: mutual TLS to the destination's sidecar, as Session::originate_tls does for HTTP
// (our workload certificate, the peer's chain and SPIFFE ID against the expected IDs, SNI when
// configured, resumed sessions), but offering only "pillion-mtls-tcp", which the peer must select:
// a sidecar that does not know it would take the bytes for HTTP. Within the connect timeout.
awaitable<bool> TcpRelay::originate_tls() {
  auto& stats = worker_.stats();
  const auto& settings = *destination_.originate_tls;
  identity_ = worker_.identity_ptr();
  std::string problem;
  if (!identity_) {
    problem = "no workload identity is loaded";
  } else {
    auto& tls = upstream_.start_tls(*identity_->client_context());
    SSL* ssl = tls.native_handle();
    if (!settings.sni.empty()) {
      tls::set_server_name(ssl, settings.sni);
    }
    tls::offer_tcp_tunnel_alpn(ssl);
    std::string session_key = upstream_label_ + "|" + settings.sni + "|tcp";
    worker_.tls_sessions().apply(ssl, session_key);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kUse);
    if (ec) {
      problem = fmt::format("TLS handshake failed: {}",
                            timed_out_ ? std::string("timeout") : tls::handshake_error(ssl, ec));
      worker_.tls_sessions().forget(session_key);
    } else {
      if (worker_.tls_sessions().resumed(ssl)) {
        stats.upstream_tls_resumed.add();
      }
      auto peer = tls::peer_spiffe_id(ssl);
      if (!peer || !tls::peer_id_allowed(*peer, settings.expected_ids)) {
        problem = fmt::format("upstream identity {} is not one the cluster expects",
                              peer.value_or("(none)"));
      } else if (tls::selected_alpn(ssl) != tls::kAlpnPillionMtlsTcp) {
        problem = fmt::format("upstream {} did not accept TCP in mutual TLS (ALPN {})", *peer,
                              tls::selected_alpn(ssl).empty() ? "none" : tls::selected_alpn(ssl));
      }
    }
  }
  if (problem.empty()) {
    stats.upstream_tls_handshakes.add();
    co_return true;
  }
  stats.upstream_tls_handshake_failures.add();
  spdlog::info("listener {}: tcp to {}: {}", listener_.config->name, upstream_label_, problem);
  co_return false;
}

// Passes on the end of one direction: a FIN on a plain side, close_notify then FIN under TLS.
// The other direction keeps flowing. The alert is written on the socket directly: asio's
// async_shutdown would wait for the peer's close_notify and eat the reply meanwhile.
awaitable<void> TcpRelay::half_close(Stream& to) {
  boost::system::error_code ignored;
  if (auto* tls = to.tls()) {
    std::string alert = tls::take_close_notify(tls->native_handle());
    if (!alert.empty()) {
      co_await asio::async_write(to.socket(), asio::buffer(alert), kUse);
    }
  }
  to.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<void> TcpRelay::copy(Stream& from, Stream& to, uint64_t& counter) {
  auto buffer = std::make_unique<char[]>(kRelayBuffer);
  auto idle = worker_.runtime().config->transparent.tcp_idle_timeout;
  while (true) {
    auto [read_error, n] =
        co_await from.async_read_some(asio::buffer(buffer.get(), kRelayBuffer), kUse);
    if (read_error) {
      // EOF (a FIN, or a close_notify under TLS): pass the half-close on so the other side can
      // still answer. An error, or a TLS stream cut without close_notify, ends both.
      if (read_error == asio::error::eof) {
        co_await half_close(to);
      } else {
        if (read_error == asio::ssl::error::stream_truncated) {
          flags_ |=
              flag_bit(&from == &upstream_ ? Flag::kUpstreamReset : Flag::kDownstreamDisconnect);
        }
        close_both();
      }
      co_return;
    }
    if (idle.count() > 0) {
      deadline_ = Clock::now() + idle;
    }
    auto [write_error, written] = co_await to.async_write(asio::buffer(buffer.get(), n), kUse);
    counter += written;
    if (write_error) {
      close_both();
      co_return;
    }
  }
}

awaitable<void> TcpRelay::run() {
  using namespace asio::experimental::awaitable_operators;
  bool admitted = true;
  if (destination_.terminate_tls) {
    admitted = co_await accept_tls();
    log_ = admitted;
    if (admitted && !authorized()) {
      admitted = false;
      co_await half_close(downstream_);  // close_notify: the client learns it was closed on purpose
    }
  }
  if (admitted && co_await connect()) {
    arm(Phase::kRelay, worker_.runtime().config->transparent.tcp_idle_timeout);
    bool sent = true;
    if (!first_bytes_.empty()) {
      auto [ec, n] = co_await upstream_.async_write(asio::buffer(first_bytes_), kUse);
      bytes_from_client_ += n;
      sent = !ec;
    }
    if (sent) {
      co_await (copy(downstream_, upstream_, bytes_from_client_) &&
                copy(upstream_, downstream_, bytes_to_client_));
    }
  }
  close_both();
  if (log_) {
    log_connection();
  }
}

void TcpRelay::log_connection() {
  auto& stats = worker_.stats();
  stats.downstream_bytes_received.add(bytes_from_client_);
  stats.downstream_bytes_sent.add(bytes_to_client_);
  for (int i = 0; i < static_cast<int>(Flag::kCount); ++i) {
    if (flags_ & (observe::Flags{1} << i)) {
      stats.flags[static_cast<size_t>(i)].add();
    }
  }
  observe::AccessLogEntry entry;
  entry.start = start_wall_;
  entry.protocol = destination_.protocol;
  entry.client = client_address_;
  entry.upstream_host = upstream_label_;
  entry.listener = listener_.config->name;
  entry.peer_id = peer_id_;
  entry.bytes_received = bytes_from_client_;
  entry.bytes_sent = bytes_to_client_;
  entry.duration_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
  entry.flags = flags_;
  worker_.access_log().log(entry);
}

}  // namespace pillion::proxy
