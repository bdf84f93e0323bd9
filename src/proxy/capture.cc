#include "proxy/capture.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "proxy/original_destination.h"
#include "proxy/protocol_detect.h"
#include "proxy/session.h"
#include "proxy/tcp_relay.h"
#include "tls/client_hello.h"
#include "tls/tls_context.h"

namespace pillion::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

bool listed(const std::vector<uint16_t>& ports, uint16_t port) {
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

// Reads the client's first bytes until they tell the protocol, the detection timeout passes
// (then it is opaque: the server may be the one to speak first), or the client closes.
awaitable<Protocol> detect(tcp::socket& socket, std::string& first_bytes, core::Duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(timeout);
  while (true) {
    auto ready =
        co_await (socket.async_wait(tcp::socket::wait_read, kUse) || timer.async_wait(kUse));
    if (ready.index() == 1) {
      co_return Protocol::kOpaque;  // the client is silent: a server-first protocol
    }
    if (std::get<0>(std::get<0>(ready))) {
      co_return Protocol::kOpaque;  // the relay will see the error and end the connection
    }
    char buffer[kDetectBytes];
    boost::system::error_code ec;
    size_t n = socket.read_some(asio::buffer(buffer, kDetectBytes - first_bytes.size()), ec);
    if (ec) {
      co_return Protocol::kOpaque;  // closed or reset before the protocol was clear
    }
    first_bytes.append(buffer, n);
    auto protocol = detect_protocol(first_bytes);
    if (protocol != Protocol::kNeedMore) {
      co_return protocol;
    }
    if (first_bytes.size() >= kDetectBytes) {
      co_return Protocol::kOpaque;
    }
  }
}

// The inbound TLS mode for a port: its own setting, else the listener's.
config::InboundTls inbound_tls_mode(const ListenerRuntime& listener, uint16_t port) {
  const auto& tls = listener.config->tls;
  auto found = tls.port_modes.find(port);
  return found != tls.port_modes.end() ? found->second : tls.mode;
}

// Whom a ClientHello comes from, by the ALPN names it offers: a sidecar sending HTTP
// ("pillion-mtls"), a sidecar tunnelling TCP ("pillion-mtls-tcp"), or anyone else (an app's own
// TLS).
enum class Hello { kOther, kSidecarHttp, kSidecarTcp };

// Peeks at the rest of the hello (the first bytes were read by detection), for at most
// `timeout`. An incomplete hello (cut, or over 16 KiB) counts as kOther.
awaitable<Hello> peek_client_hello(tcp::socket& socket, std::string_view first_bytes,
                                   core::Duration timeout) {
  constexpr size_t kMaxHello = 16 * 1024;
  std::vector<uint8_t> bytes(first_bytes.begin(), first_bytes.end());
  bytes.resize(kMaxHello);
  asio::steady_timer pause(socket.get_executor());
  auto deadline = Clock::now() + timeout;
  while (true) {
    ssize_t n = ::recv(socket.native_handle(), bytes.data() + first_bytes.size(),
                       kMaxHello - first_bytes.size(), MSG_PEEK | MSG_DONTWAIT);
    size_t have = first_bytes.size() + (n > 0 ? static_cast<size_t>(n) : 0);
    auto hello = tls::parse_client_hello(std::span<const uint8_t>(bytes.data(), have));
    if (!hello.is_tls || hello.complete || have == kMaxHello || n == 0 ||
        Clock::now() >= deadline) {
      auto offered = [&hello](std::string_view name) {
        return hello.complete &&
               std::find(hello.alpn.begin(), hello.alpn.end(), name) != hello.alpn.end();
      };
      co_return offered(tls::kAlpnPillionMtlsTcp) ? Hello::kSidecarTcp
      : offered(tls::kAlpnPillionMtls)            ? Hello::kSidecarHttp
                                                  : Hello::kOther;
    }
    pause.expires_after(std::chrono::milliseconds(2));
    co_await pause.async_wait(kUse);
  }
}

// Where the bytes go: the original destination (outbound), or the app on loopback at the
// original port, from the configured source address so the pod's rules leave it alone.
TcpDestination destination_for(const ListenerRuntime& listener, const tcp::endpoint& original,
                               const config::Transparent& transparent) {
  TcpDestination destination;
  destination.address = original;
  if (listener.config->mode == config::ListenerMode::kTransparentInbound) {
    if (original.address().is_v6()) {
      destination.address = tcp::endpoint(asio::ip::address_v6::loopback(), original.port());
    } else {
      destination.address = tcp::endpoint(asio::ip::address_v4::loopback(), original.port());
      boost::system::error_code ec;
      auto source = asio::ip::make_address(transparent.inbound_source, ec);
      if (!ec && source.is_v4()) {
        destination.source = source;
      }
    }
  }
  return destination;
}

}  // namespace

awaitable<void> run_captured(Worker& worker, tcp::socket socket, size_t listener_index) {
  auto accepted = Clock::now();
  // Held until the connection ends: what is read below stays valid across a config reload.
  RuntimePtr runtime = worker.runtime_ptr();
  const ListenerRuntime& listener = runtime->listeners[listener_index];
  const auto& transparent = runtime->config->transparent;
  const auto& name = listener.config->name;
  std::string error;
  boost::system::error_code ec;
  auto local = socket.local_endpoint(ec);
  auto peer = socket.remote_endpoint(ec);
  auto original = original_destination(socket, error);
  if (!original) {
    worker.stats().capture_refused_total.add();
    spdlog::warn("listener {}: refused {}: {}", name, endpoint_label(peer), error);
    co_return;
  }
  // Without a redirect (or when the app dialled the capture port itself) the original
  // destination is this very listener: proxying would loop back here forever.
  if (*original == local) {
    worker.stats().capture_refused_total.add();
    spdlog::warn(
        "listener {}: refused {}: its destination {} is the proxy itself (not "
        "redirected, or a loop)",
        name, endpoint_label(peer), endpoint_label(*original));
    co_return;
  }
  // Inbound traffic is delivered on loopback: it must never reach the proxy's own admin API
  // (loopback only, because it can drain and stop the proxy) from another pod.
  const auto& config = *runtime->config;
  if (listener.config->mode == config::ListenerMode::kTransparentInbound &&
      original->port() == config.admin.port) {
    worker.stats().capture_refused_total.add();
    spdlog::warn("listener {}: refused {}: port {} is the proxy's admin API", name,
                 endpoint_label(peer), original->port());
    co_return;
  }
  auto destination = destination_for(listener, *original, transparent);
  destination.port = original->port();
  std::string first_bytes;
  Protocol protocol = Protocol::kOpaque;
  uint16_t port = original->port();
  bool inbound = listener.config->mode == config::ListenerMode::kTransparentInbound;
  auto tls_mode = inbound ? inbound_tls_mode(listener, port) : config::InboundTls::kDisabled;
  // A server-first or opaque port is passed through without waiting for the client, except
  // inbound under mutual TLS: there a sidecar's ClientHello comes first (a plaintext client of
  // a PERMISSIVE port waits detect_timeout for its server's greeting).
  bool listed_opaque =
      listed(transparent.server_first_ports, port) || listed(transparent.opaque_ports, port);
  if (!listed_opaque || tls_mode != config::InboundTls::kDisabled) {
    protocol = co_await detect(socket, first_bytes, transparent.detect_timeout);
    if (listed_opaque && protocol != Protocol::kTls) {
      protocol = Protocol::kOpaque;  // listed: bytes that look like HTTP are still not parsed
    }
  }
  if (worker.stopped()) {
    co_return;  // stopped while detecting: a session started now would outlive its worker
  }
  // Inbound mutual TLS: STRICT answers only TLS; PERMISSIVE answers a sidecar's TLS and lets
  // plaintext (and an app's own TLS) through, except plaintext TCP where rules ask for an ID.
  // Either way a sidecar's hello says whether HTTP or opaque TCP travels inside.
  bool terminate_tls = false;
  Hello hello = Hello::kOther;
  if (inbound) {
    if (tls_mode == config::InboundTls::kStrict && protocol != Protocol::kTls) {
      worker.stats().downstream_tls_plaintext_refused.add();
      spdlog::info(
          "listener {}: refused plaintext connection from {} to port {}: mutual TLS is "
          "required",
          name, endpoint_label(peer), port);
      co_return;
    }
    if (tls_mode != config::InboundTls::kDisabled && protocol == Protocol::kTls) {
      hello = co_await peek_client_hello(socket, first_bytes, transparent.detect_timeout);
      if (worker.stopped()) {
        co_return;  // as after detection
      }
    }
    terminate_tls = tls_mode == config::InboundTls::kStrict ||
                    (tls_mode == config::InboundTls::kPermissive && hello != Hello::kOther);
    if (!terminate_tls && protocol != Protocol::kHttp1 && listener.authorization) {
      worker.stats().downstream_rq_denied.add();
      spdlog::info("listener {}: denied TCP connection from {} to port {}: no client certificate",
                   name, endpoint_label(peer), port);
      co_return;
    }
  }
  try {
    if (terminate_tls && hello == Hello::kSidecarTcp) {
      // A sidecar tunnels opaque TCP: the relay terminates TLS, authorizes the peer's ID and
      // passes the bytes to the app.
      destination.protocol = "tcp";
      destination.terminate_tls = true;
      auto relay =
          std::make_unique<TcpRelay>(worker, std::move(socket), runtime, listener,
                                     std::move(destination), std::move(first_bytes), accepted);
      co_await relay->run();
    } else if (terminate_tls) {
      // HTTP inside the sidecars' mutual TLS (or any other TLS on a STRICT port: the session's
      // handshake and HTTP parser judge it).
      auto host = std::make_shared<upstream::Host>(destination.address, endpoint_label(*original),
                                                   1, 1, false);
      host->source = destination.source;
      auto session = std::make_unique<Session>(worker, std::move(socket),
                                               worker.runtime().listeners[listener_index]);
      session->captured(std::move(host), first_bytes, true);
      co_await session->run();
    } else if (protocol == Protocol::kHttp1) {
      // The connection's own destination: one host, never pooled, no shared health.
      auto host = std::make_shared<upstream::Host>(destination.address, endpoint_label(*original),
                                                   1, 1, false);
      host->source = destination.source;
      auto session = std::make_unique<Session>(worker, std::move(socket),
                                               worker.runtime().listeners[listener_index]);
      session->captured(std::move(host), first_bytes);
      co_await session->run();
    } else {
      destination.protocol = protocol_name(protocol);
      // Outbound under outbound_tls: whatever is not HTTP/1 is tunnelled in mutual TLS too.
      if (listener.config->mode == config::ListenerMode::kTransparentOutbound) {
        destination.originate_tls = transparent.outbound_tls;
      }
      auto relay =
          std::make_unique<TcpRelay>(worker, std::move(socket), runtime, listener,
                                     std::move(destination), std::move(first_bytes), accepted);
      co_await relay->run();
    }
  } catch (const std::exception& exception) {
    spdlog::error("bug: captured connection ended by exception: {}", exception.what());
  }
}

}  // namespace pillion::proxy
