#include "proxy/session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <span>

#include "http/propagation.h"
#include "http/rewrite.h"
#include "observe/tracing/sampler.h"
#include "observe/tracing/span.h"
#include "proxy/router.h"
#include "tls/tls_context.h"
#include "upstream/backoff.h"

#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace pillion::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using observe::Flag;
using observe::flag_bit;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr size_t kBufferSize = 32 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

size_t buffer_size_for(uint64_t header_limit) {
  return std::max<size_t>(kBufferSize, static_cast<size_t>(header_limit) + 1024);
}

uint32_t parser_limit(uint64_t limit) {
  return static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX - 1));
}

int64_t micros_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

// "1a2f\r\n": the chunk-size line for `size` payload bytes.
std::string_view chunk_size_line(size_t size, std::array<char, 20>& storage) {
  auto end = fmt::format_to(storage.data(), "{:x}\r\n", size);
  return {storage.data(), static_cast<size_t>(end - storage.data())};
}

// The route's cluster, or one of its weighted split drawn at random (per request, so a split
// holds over any mix of connections).
size_t pick_cluster(const RouteRuntime& route) {
  if (route.weighted.size() < 2) {
    return route.cluster;
  }
  auto draw = static_cast<uint32_t>(http::thread_id_generator().next() % route.total_weight);
  for (const auto& [cumulative, cluster] : route.weighted) {
    if (draw < cumulative) {
      return cluster;
    }
  }
  return route.weighted.back().second;
}

struct FaultDecision {
  std::chrono::milliseconds delay{0};
  int abort_status = 0;
};

// Header-driven faults (when allowed) win over the configured shares. Delays are capped: a
// fault must not hold a connection longer than a minute.
FaultDecision decide_fault(const config::Fault& fault, const http::Head& head) {
  constexpr std::chrono::milliseconds kMaxDelay{60000};
  FaultDecision decision;
  auto& random = http::thread_id_generator();
  auto header_number = [&](std::string_view name, long min, long max) -> std::optional<long> {
    auto value = head.find(name);
    long number = 0;
    if (!value ||
        std::from_chars(value->data(), value->data() + value->size(), number).ec != std::errc{} ||
        number < min || number > max) {
      return std::nullopt;
    }
    return number;
  };
  std::optional<long> header_delay, header_abort;
  if (fault.header_control) {
    header_delay = header_number("x-pillion-fault-delay-ms", 0, kMaxDelay.count());
    header_abort = header_number("x-pillion-fault-abort", 200, 599);
  }
  if (header_delay) {
    decision.delay = std::chrono::milliseconds(*header_delay);
  } else if (fault.delay.count() > 0 && random.next_unit() * 100 < fault.delay_percent) {
    decision.delay =
        std::min(kMaxDelay, std::chrono::duration_cast<std::chrono::milliseconds>(fault.delay));
  }
  if (header_abort) {
    decision.abort_status = static_cast<int>(*header_abort);
  } else if (fault.abort_status != 0 && random.next_unit() * 100 < fault.abort_percent) {
    decision.abort_status = fault.abort_status;
  }
  return decision;
}

}  // namespace

Session::Session(Worker& worker, tcp::socket socket, const ListenerRuntime& listener)
    : worker_(worker),
      downstream_(std::move(socket)),
      runtime_(worker.runtime_ptr()),
      listener_(&listener),
      config_(runtime_->config.get()),
      in_(buffer_size_for(config_->limits.max_request_header_bytes)),
      upstream_in_(buffer_size_for(config_->limits.max_response_header_bytes)),
      request_parser_(parser_limit(config_->limits.max_request_header_bytes)),
      response_parser_(parser_limit(config_->limits.max_response_header_bytes)),
      self_(std::make_shared<Session*>(this)) {
  worker_.link(*this);
  worker_.stats().downstream_cx_total.add();
  worker_.stats().downstream_cx_active.add();
  boost::system::error_code ec;
  auto remote = downstream_.socket().remote_endpoint(ec);
  if (!ec) {
    client_ip_ = remote.address().to_string();
    client_address_ = upstream::endpoint_label(remote);
  }
  downstream_.socket().set_option(tcp::no_delay(true), ec);
  out_.reserve(4096);
  response_head_.reserve(2048);
  exchange_.method.reserve(16);
  exchange_.path.reserve(256);
}

void Session::captured(upstream::HostPtr destination, std::string_view first_bytes,
                       bool terminate_tls) {
  terminate_tls_ = terminate_tls;
  captured_destination_ = std::move(destination);
  std::memcpy(in_.write_pointer(), first_bytes.data(), first_bytes.size());
  in_.commit(first_bytes.size());
}

Session::~Session() {
  *self_ = nullptr;
  worker_.stats().downstream_cx_active.sub();
}

// Notices a client that hangs up while its request waits on the upstream, so the upstream
// request is cancelled (flag DC) instead of running to its timeout. A pipelined request that
// arrives meanwhile just stays in the socket until this response is done.
void Session::watch_client() {
  watching_client_ = true;
  if (client_wait_pending_ || !in_.empty()) {
    return;
  }
  client_wait_pending_ = true;
  downstream_.socket().async_wait(tcp::socket::wait_read,
                                  [self = self_](const boost::system::error_code& ec) {
                                    Session* session = *self;
                                    if (session == nullptr) {
                                      return;
                                    }
                                    session->client_wait_pending_ = false;
                                    if (!ec) {
                                      session->on_client_readable();
                                    }
                                  });
}

void Session::on_client_readable() {
  if (!watching_client_ || upstream_ == nullptr) {
    return;
  }
  char byte;
  ssize_t n = ::recv(downstream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
    return;  // a pipelined request waits its turn; or a spurious wakeup
  }
  client_gone_ = true;
  exchange_.flags |= flag_bit(Flag::kDownstreamDisconnect);
  exchange_.close_after = true;
  boost::system::error_code ignored;
  upstream_->cancel(ignored);
}

void Session::arm(Phase phase, core::Duration timeout) {
  phase_ = phase;
  deadline_ = timeout.count() == 0 ? Clock::time_point::max() : Clock::now() + timeout;
}

void Session::refresh_stream_deadline() {
  auto timeout = config_->timeouts.stream_idle;
  deadline_ = timeout.count() == 0 ? Clock::time_point::max() : worker_.now() + timeout;
}

void Session::on_tick(Clock::time_point now) {
  if (awaiting_upstream_ && !watching_client_) {
    watch_client();
  }
  if (now >= response_deadline_) {
    response_deadline_ = Clock::time_point::max();
    timed_out_ = Phase::kAwaitResponse;
    boost::system::error_code ignored;
    if (upstream_ != nullptr) {
      upstream_->cancel(ignored);
    }
    return;
  }
  if (now < deadline_) {
    return;
  }
  deadline_ = Clock::time_point::max();
  timed_out_ = phase_;
  boost::system::error_code ignored;
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kRequestHead:
      downstream_.socket().cancel(ignored);
      break;
    case Phase::kConnect:
    case Phase::kAwaitResponse:
      if (upstream_ != nullptr) {
        upstream_->cancel(ignored);
      }
      break;
    case Phase::kStreaming:
      downstream_.socket().cancel(ignored);
      if (upstream_ != nullptr) {
        upstream_->cancel(ignored);
      }
      break;
  }
}

void Session::on_drain() {
  if (phase_ == Phase::kIdle) {
    boost::system::error_code ignored;
    downstream_.socket().cancel(ignored);
  }
}

void Session::abort() {
  aborted_ = true;
  boost::system::error_code ignored;
  downstream_.socket().cancel(ignored);
  if (upstream_ != nullptr) {
    upstream_->cancel(ignored);
  }
}

void Session::close_now() {
  boost::system::error_code ignored;
  downstream_.socket().close(ignored);
  if (upstream_ != nullptr) {
    upstream_->close(ignored);  // the gauge of open upstream connections no longer matters
  }
}

awaitable<void> Session::run() {
  bool serve = co_await start_tls_if_asked();
  while (serve && !aborted_) {
    adopt_newest_runtime();
    if (!co_await read_request_head()) {
      break;
    }
    adopt_newest_runtime();  // a reload while the connection sat idle
    bool keep_going = co_await handle_request();
    log_request();
    if (!keep_going || exchange_.close_after || worker_.draining()) {
      break;
    }
  }
  boost::system::error_code ignored;
  if (downstream_.secure() && !aborted_) {
    co_await close_tls();
  }
  if (linger_ && !aborted_) {
    co_await linger();
  }
  downstream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  downstream_.socket().close(ignored);
  if (captured_idle_) {
    worker_.pool().discard(*captured_idle_, nullptr);
    captured_idle_.reset();
  }
}

// A reload gave the worker a new runtime: the next request on this connection uses it (the
// listener is found again by name; reloads keep the listener set).
void Session::adopt_newest_runtime() {
  const RuntimePtr& newest = worker_.runtime_ptr();
  if (newest == runtime_) {
    return;
  }
  for (const auto& listener : newest->listeners) {
    if (listener.config->name == listener_->config->name) {
      runtime_ = newest;
      listener_ = &listener;
      config_ = newest->config.get();
      return;
    }
  }
}

// Mutual TLS on the client's side, when the listener asks for it: STRICT requires it (a
// plaintext client is refused), PERMISSIVE takes either, told apart by the first byte (a TLS
// record of type handshake). False when the connection is to be closed.
awaitable<bool> Session::start_tls_if_asked() {
  if (terminate_tls_) {
    co_return co_await accept_tls();
  }
  auto mode = listener_->config->tls.mode;
  if (mode == config::InboundTls::kDisabled ||
      listener_->config->mode != config::ListenerMode::kHttp) {
    co_return true;  // captured connections were sorted out by the capture listener
  }
  arm(Phase::kIdle, config_->timeouts.idle);
  auto [ec] = co_await downstream_.socket().async_wait(tcp::socket::wait_read, kUse);
  uint8_t first = 0;
  ssize_t n = ec ? -1 : ::recv(downstream_.socket().native_handle(), &first, 1, MSG_PEEK);
  if (n <= 0) {
    co_return false;  // gone, or idle past the timeout
  }
  if (first == 0x16) {
    co_return co_await accept_tls();
  }
  if (mode == config::InboundTls::kStrict) {
    worker_.stats().downstream_tls_plaintext_refused.add();
    spdlog::info("listener {}: refused plaintext connection from {}: mutual TLS is required",
                 listener_->config->name, client_address_);
    co_return false;
  }
  co_return true;
}

// The TLS handshake as server, with the workload identity current at this moment (a rotation
// changes what later handshakes present; this connection keeps its context).
awaitable<bool> Session::accept_tls() {
  auto& stats = worker_.stats();
  tls_identity_ = worker_.identity_ptr();
  if (!tls_identity_) {
    spdlog::error("listener {}: mutual TLS asked for, but no workload identity is loaded",
                  listener_->config->name);
    co_return false;
  }
  auto& tls = downstream_.start_tls(*tls_identity_->server_context());
  arm(Phase::kRequestHead, config_->timeouts.request_headers);
  boost::system::error_code ec;
  if (in_.empty()) {
    std::tie(ec) = co_await tls.async_handshake(asio::ssl::stream_base::server, kUse);
  } else {
    // The capture listener read the first bytes of the ClientHello to detect TLS.
    size_t used = 0;
    std::tie(ec, used) = co_await tls.async_handshake(asio::ssl::stream_base::server,
                                                      asio::buffer(in_.data(), in_.size()), kUse);
    in_.clear();
  }
  if (ec) {
    stats.downstream_tls_handshake_failures.add();
    spdlog::info("listener {}: TLS handshake with {} failed: {}", listener_->config->name,
                 client_address_, tls::handshake_error(tls.native_handle(), ec));
    co_return false;
  }
  if (tls::selected_alpn(tls.native_handle()) == tls::kAlpnPillionMtlsTcp) {
    // A sidecar's TCP tunnel whose ClientHello the capture listener could not read in time:
    // its bytes are not HTTP. Closing makes the caller fail cleanly (UF) instead of hanging.
    stats.downstream_tls_handshake_failures.add();
    spdlog::info("listener {}: closed a TCP tunnel from {} that reached the HTTP data plane",
                 listener_->config->name, client_address_);
    co_return false;
  }
  stats.downstream_tls_handshakes.add();
  peer_id_ = tls::peer_spiffe_id(tls.native_handle()).value_or("");
  if (!peer_id_.empty() && stats.peer_ids != nullptr) {
    peer_slot_ = stats.peer_ids->slot(peer_id_);
  }
  co_return true;
}

// The listener's and the route's rules both let the client's identity in (a plaintext client
// has none).
bool Session::authorized() const {
  for (const auto* rules :
       {listener_->authorization.get(),
        exchange_.route != nullptr ? exchange_.route->authorization.get() : nullptr}) {
    if (rules != nullptr && !rules->allows(peer_id_)) {
      return false;
    }
  }
  return true;
}

// After an error reply the client may still be sending a body; closing at once would make the
// kernel answer with RST and the client could lose our reply. Read and discard for a while.
// A TLS close_notify before the TCP close: the client learns the stream ended cleanly (an
// OpenSSL client otherwise reports "unexpected eof" and drops the session it could resume).
// The peer's own close_notify is waited for briefly only.
awaitable<void> Session::close_tls() {
  arm(Phase::kStreaming, std::chrono::milliseconds(100));
  co_await downstream_.tls()->async_shutdown(kUse);
}

awaitable<void> Session::linger() {
  boost::system::error_code ignored;
  downstream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  arm(Phase::kStreaming, std::chrono::seconds(2));
  size_t discarded = 0;
  while (discarded < (1 << 20)) {
    in_.clear();
    auto [ec, n] = co_await downstream_.async_read_some(
        asio::buffer(in_.write_pointer(), in_.write_space()), kUse);
    if (ec) {
      break;
    }
    discarded += n;
  }
}

void Session::reset_exchange() {
  auto& e = exchange_;
  e.method.clear();
  e.path.clear();
  e.incoming_request_id.clear();
  e.request_id_view = {};
  e.route = nullptr;
  e.host = nullptr;
  // host_set is kept: the next request on this connection most often uses the same set, and
  // copying the pointer again would be an atomic increment on a line every worker shares.
  e.cluster_state = nullptr;
  e.replayable = false;
  e.holds_retry = false;
  e.try_failed_host = false;
  e.per_try_deadline = false;
  e.route_deadline = Clock::time_point::max();
  e.retry_delay = core::Duration::zero();
  e.body_remaining = 0;
  e.trace_hop.context.flags = 0;  // no span unless this request gets one
  e.head_request = false;
  e.client_keep_alive = true;
  e.http10 = false;
  e.expect_continue = false;
  e.body = http::BodyKind::kNone;
  e.body_length = 0;
  e.body_complete = true;
  e.response_started = false;
  e.status = 0;
  e.attempts = 0;
  e.upstream_us = -1;
  e.bytes_received = 0;
  e.bytes_sent = 0;
  e.flags = 0;
  e.close_after = false;
  e.abort_upstream_for_body = false;
  e.upstream_reusable = false;
  e.logged = false;
  client_gone_ = false;
}

awaitable<bool> Session::read_request_head() {
  reset_exchange();
  request_parser_.start();
  timed_out_.reset();
  bool got_bytes = !in_.empty();
  if (got_bytes) {
    exchange_.start = Clock::now();
    exchange_.start_wall = std::chrono::system_clock::now();
    arm(Phase::kRequestHead, config_->timeouts.request_headers);
  } else {
    arm(Phase::kIdle, config_->timeouts.idle);
  }
  while (true) {
    if (!in_.empty()) {
      auto status = request_parser_.parse_head(in_.view());
      if (status == http::ParseStatus::kDone) {
        break;
      }
      if (status == http::ParseStatus::kTooLarge) {
        exchange_.close_after = true;
        linger_ = true;
        co_await send_local_reply(431, "request header block too large",
                                  Flag::kDownstreamProtocolError);
        co_return !log_and_stop();
      }
      if (status == http::ParseStatus::kBadMessage) {
        exchange_.close_after = true;
        linger_ = true;
        co_await send_local_reply(400, request_parser_.error(), Flag::kDownstreamProtocolError);
        co_return !log_and_stop();
      }
      if (in_.write_space() == 0) {
        // The buffer holds more than the header limit allows; the parser saw no end yet.
        exchange_.close_after = true;
        linger_ = true;
        co_await send_local_reply(431, "request header block too large",
                                  Flag::kDownstreamProtocolError);
        co_return !log_and_stop();
      }
    }
    auto [ec, n] = co_await downstream_.async_read_some(
        asio::buffer(in_.write_pointer(), in_.write_space()), kUse);
    if (ec) {
      if (got_bytes && timed_out_ == Phase::kRequestHead) {
        exchange_.close_after = true;
        co_await send_local_reply(408, "request head not received in time",
                                  Flag::kRequestHeaderTimeout);
        log_and_stop();
      }
      co_return false;
    }
    in_.commit(n);
    worker_.stats().downstream_bytes_received.add(n);
    if (!got_bytes) {
      got_bytes = true;
      exchange_.start = Clock::now();
      exchange_.start_wall = std::chrono::system_clock::now();
      arm(Phase::kRequestHead, config_->timeouts.request_headers);
    }
  }
  co_return true;
}

// Logs a request that ended before handle_request; returns true (meaning: stop).
bool Session::log_and_stop() {
  log_request();
  return true;
}

void Session::ensure_request_id() {
  if (exchange_.request_id_view.empty()) {
    http::thread_id_generator().uuid_v4(exchange_.request_id.data());
    exchange_.request_id_view = {exchange_.request_id.data(), exchange_.request_id.size()};
  }
}

bool Session::request_is_idempotent() const {
  const auto& m = exchange_.method;
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

awaitable<bool> Session::handle_request() {
  const http::Head& head = request_parser_.head();
  auto& stats = worker_.stats();
  stats.downstream_rq_total.add();
  stats.downstream_rq_active.add();
  exchange_.method.assign(head.method);
  exchange_.path.assign(head.target);
  exchange_.http10 = head.version == 10;
  exchange_.client_keep_alive = head.keep_alive;
  exchange_.head_request = head.method == "HEAD";
  exchange_.body = head.body;
  exchange_.body_length = head.content_length;
  exchange_.body_complete = head.body == http::BodyKind::kNone;
  // The head leaves the buffer now, so every early answer below leaves the connection at the
  // next request. Its views stay valid until the next read into the buffer, which comes after
  // the upstream head was built.
  in_.consume(head.head_bytes);
  if (exchange_.http10 && head.find("transfer-encoding")) {
    exchange_.close_after =
        true;  // RFC 9112 §6.1: framing of an HTTP/1.0 request with TE is faulty
  }

  auto incoming_id = head.find("x-request-id");
  if (incoming_id && !incoming_id->empty() && incoming_id->size() <= 200) {
    exchange_.incoming_request_id.assign(*incoming_id);
    exchange_.request_id_view = exchange_.incoming_request_id;
  }
  ensure_request_id();
  auto& ids = http::thread_id_generator();
  auto incoming_trace = http::extract_trace(head, config_->tracing.accept);
  bool sampled = observe::tracing::Sampler(config_->tracing.sampling).sample(incoming_trace, ids);
  exchange_.trace_hop = http::next_hop(incoming_trace, sampled, ids);
  exchange_.trace_headers.format(exchange_.trace_hop, config_->tracing.emit);

  auto fail_before_upstream = [&](int status, std::string_view detail, Flag flag,
                                  std::string_view extra_headers = {}) {
    // The request body (if any) was not read: the connection cannot be reused.
    if (head.body != http::BodyKind::kNone) {
      exchange_.close_after = true;
      linger_ = true;
    }
    return send_local_reply(status, detail, flag, extra_headers);
  };

  std::optional<std::string_view> host;
  int host_count = 0;
  for (const auto& field : head.fields) {
    if (http::iequals(field.name, "host")) {
      host = field.value;
      ++host_count;
    }
  }
  // RFC 9112 §3.2: a request without Host (HTTP/1.1), with several, or with an invalid one is 400.
  std::string_view host_problem;
  if (!exchange_.http10 && host_count == 0) {
    host_problem = "HTTP/1.1 request without Host header";
  } else if (host_count > 1) {
    host_problem = "more than one Host header";
  } else if (host && !http::valid_host(*host)) {
    host_problem = "invalid Host header";
  }
  if (!host_problem.empty()) {
    exchange_.close_after = true;
    co_await fail_before_upstream(400, host_problem, Flag::kDownstreamProtocolError);
    co_return false;
  }
  std::string_view absolute_authority;
  std::string_view origin_target;
  bool absolute = split_absolute_target(head.target, absolute_authority, origin_target);
  if (absolute && !http::valid_host(absolute_authority)) {
    // Userinfo ("user@host", RFC 9110 §4.2.4) or a malformed host would become the Host header.
    exchange_.close_after = true;
    co_await fail_before_upstream(400, "invalid authority in the request target",
                                  Flag::kDownstreamProtocolError);
    co_return false;
  }
  if (absolute && !origin_target.starts_with('/')) {
    origin_target_.assign("/").append(origin_target);  // "http://h?q=1" asks for "/?q=1"
    origin_target = origin_target_;
  }
  std::string_view route_host = absolute ? absolute_authority : host.value_or("");
  exchange_.route =
      match_route(*listener_, route_host, absolute ? origin_target : head.target, head);
  if (exchange_.route == nullptr && listener_->fallback) {
    exchange_.route = &*listener_->fallback;
  }
  if (exchange_.route == nullptr) {
    std::string detail = fmt::format("no route for host '{}'", route_host);
    co_await fail_before_upstream(404, detail, Flag::kNoRoute);
    co_return !exchange_.close_after;
  }
  if (!authorized()) {
    worker_.stats().downstream_rq_denied.add();
    spdlog::info("listener {}: denied {} {} from {} ({})", listener_->config->name,
                 exchange_.method, exchange_.path, client_address_,
                 peer_id_.empty() ? std::string("no client certificate") : peer_id_);
    std::string detail = peer_id_.empty() ? std::string("a client certificate is required here")
                                          : fmt::format("{} is not allowed here", peer_id_);
    co_await fail_before_upstream(403, detail, Flag::kAccessDenied);
    co_return !exchange_.close_after;
  }
  if (!co_await enforce_route_policy(head)) {
    co_return !exchange_.close_after;
  }
  auto body_limit = config_->limits.max_request_body_bytes;
  if (body_limit > 0 && head.body == http::BodyKind::kContentLength &&
      head.content_length > body_limit) {
    exchange_.close_after = true;
    std::string detail = fmt::format("request body of {} bytes is over the limit of {}",
                                     head.content_length, body_limit);
    co_await fail_before_upstream(413, detail, Flag::kBodyTooLarge);
    co_return false;
  }
  if (auto expect = head.find("expect")) {
    if (!http::iequals(*expect, "100-continue")) {
      exchange_.close_after = true;
      co_await fail_before_upstream(417, "only Expect: 100-continue is supported",
                                    Flag::kDownstreamProtocolError);
      co_return false;
    }
    // Never a 1xx to an HTTP/1.0 client (RFC 9110 §15.2).
    exchange_.expect_continue = head.body != http::BodyKind::kNone && !exchange_.http10;
  }

  exchange_.cluster = pick_cluster(*exchange_.route);
  const auto& cluster = runtime_->clusters[exchange_.cluster];
  if (cluster.destination != Destination::kEndpoints && !captured_destination_) {
    std::string detail = fmt::format("cluster {} needs a captured connection (transparent mode)",
                                     cluster.config->name);
    co_await fail_before_upstream(502, detail, Flag::kNoRoute);
    co_return !exchange_.close_after;
  }
  exchange_.cluster_state = cluster.state.get();

  http::UpstreamRequestContext context;
  context.request_id = exchange_.request_id_view;
  context.request_had_id = !exchange_.incoming_request_id.empty();
  context.trace_headers = exchange_.trace_headers.lines();
  // A transparent outbound hop is the app's own call, not a new client: like Istio's outbound,
  // it leaves X-Forwarded-For to the receiving side (else the caller appears twice).
  if (listener_->config->mode != config::ListenerMode::kTransparentOutbound) {
    context.client_ip = client_ip_;
  }
  // For an HTTP/1.0 request without Host: the cluster's first endpoint as configured.
  std::string authority = cluster.destination == Destination::kEndpoints
                              ? cluster.config->endpoints.front().address.to_string()
                              : captured_destination_->authority();
  context.authority = authority;
  if (absolute) {
    context.target_override = origin_target;
    context.host_override = absolute_authority;
  }
  out_.clear();
  http::build_upstream_request(head, context, out_);

  // Safe to send again: an idempotent method, an Idempotency-Key (the client vouches for it),
  // or a route that says so. A body must be read ahead (within the retry buffer) to be resent.
  const auto& retry = exchange_.route->config->retry;
  bool replayable_method = request_is_idempotent() || head.find("idempotency-key").has_value() ||
                           (retry && retry->replay_non_idempotent);
  exchange_.replayable = replayable_method && head.body == http::BodyKind::kNone;
  exchange_.body_remaining = head.body == http::BodyKind::kContentLength ? head.content_length : 0;
  replay_body_.clear();

  if (exchange_.expect_continue) {
    // Like Envoy by default: answer 100 here and strip Expect, so a client never waits on an
    // upstream that ignores Expect.
    if (!co_await write_downstream(kContinue)) {
      co_return false;
    }
  }
  if (retry && replayable_method && head.body != http::BodyKind::kNone) {
    exchange_.replayable = co_await buffer_request_body(retry->buffer_limit);
    if (exchange_.response_started) {
      co_return false;  // the client failed while sending its body; it was answered
    }
  }
  auto route_timeout = exchange_.route->config->timeout;
  exchange_.route_deadline =
      route_timeout.count() == 0 ? Clock::time_point::max() : Clock::now() + route_timeout;

  if (!co_await forward(cluster)) {
    co_return false;
  }
  if (!exchange_.body_complete) {
    exchange_.close_after = true;
  }
  co_return !exchange_.close_after && !aborted_;
}

// The route's local rate limit and fault injection, before anything goes upstream. False when
// a local reply was sent instead.
awaitable<bool> Session::enforce_route_policy(const http::Head& head) {
  auto fail = [&](int status, std::string_view detail, Flag flag,
                  std::string_view extra_headers = {}) {
    if (head.body != http::BodyKind::kNone) {
      exchange_.close_after = true;  // the body was not read
      linger_ = true;
    }
    return send_local_reply(status, detail, flag, extra_headers);
  };
  if (const auto& limiter = exchange_.route->rate_limiter) {
    std::chrono::nanoseconds wait{};
    if (!limiter->try_acquire(Clock::now(), wait)) {
      // Whole seconds, rounded up: a client that waits that long gets a token.
      auto seconds = std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(wait).count());
      co_await fail(429, "local rate limit of this route", Flag::kRateLimited,
                    fmt::format("retry-after: {}\r\n", seconds));
      co_return false;
    }
  }
  const auto& fault = exchange_.route->config->fault;
  if (!fault) {
    co_return true;
  }
  FaultDecision decision = decide_fault(*fault, head);
  if (decision.delay.count() > 0) {
    exchange_.flags |= flag_bit(Flag::kFaultDelay);
    asio::steady_timer timer(worker_.context());
    timer.expires_after(decision.delay);
    co_await timer.async_wait(kUse);
  }
  if (decision.abort_status != 0) {
    co_await fail(decision.abort_status, "fault injected", Flag::kFaultAbort);
    co_return false;
  }
  co_return true;
}

// Sends 503 UO for a full circuit breaker of the request's cluster.
awaitable<void> Session::send_overflow(std::string_view limit) {
  const auto& cluster = *runtime_->clusters[exchange_.cluster].config;
  worker_.stats().upstream_rq_overflow.add();
  std::string detail = fmt::format("cluster {} is at its {} limit", cluster.name, limit);
  co_await send_local_reply(503, detail, Flag::kUpstreamOverflow, "x-pillion-overloaded: true\r\n");
}

// The request's breaker, its tries and their retries. False when the connection must close.
awaitable<bool> Session::forward(const ClusterRuntime& cluster) {
  using Resource = upstream::ClusterLimits::Resource;
  auto* state = cluster.state.get();
  if (state != nullptr && !state->limits().try_acquire(Resource::kRequests)) {
    if (!exchange_.body_complete) {
      exchange_.close_after = true;  // the body was not read
      linger_ = true;
    }
    co_await send_overflow("max_requests");
    co_return true;
  }
  co_await forward_with_retries(cluster);
  if (state != nullptr) {
    state->limits().release(Resource::kRequests);
    if (exchange_.holds_retry) {
      state->limits().release(Resource::kRetries);
    }
  }
  exchange_.holds_retry = false;
  co_return true;
}

awaitable<Session::Outcome> Session::forward_with_retries(const ClusterRuntime& cluster) {
  auto& stats = worker_.stats();
  const upstream::Host* previous = nullptr;
  while (true) {
    upstream::Host* host = nullptr;
    if (cluster.destination == Destination::kEndpoints) {
      auto& slot = worker_.cluster_slot(*cluster.state);
      auto pick =
          slot.balancer.pick(*slot.hosts, worker_.now(), cluster.config->panic_threshold, previous);
      if (pick.host == nullptr) {
        std::string detail = fmt::format("no healthy endpoint in cluster {}", cluster.config->name);
        co_await send_local_reply(503, detail, Flag::kNoHealthyUpstream);
        co_return Outcome::kFailed;
      }
      if (exchange_.host_set != slot.hosts) {
        exchange_.host_set = slot.hosts;
      }
      host = pick.host;
    } else {
      host = captured_destination_.get();
    }
    Outcome outcome = co_await forward_once(*host, true);
    if (outcome == Outcome::kRetryFresh) {
      stats.upstream_rq_stale_retry.add();
      outcome = co_await forward_once(*host, false);
      if (outcome == Outcome::kRetryFresh) {
        co_await send_local_reply(502, "upstream closed the connection before responding",
                                  Flag::kUpstreamReset);
        outcome = Outcome::kFailed;
      }
    }
    if (outcome != Outcome::kRetry) {
      co_return outcome;
    }
    stats.upstream_rq_retry.add();
    previous = host;
    if (exchange_.retry_delay.count() > 0 && !co_await wait_before_retry()) {
      co_return Outcome::kFailed;
    }
  }
}

// The backoff (or Retry-After) before a retry, watching the client: one that hangs up meanwhile
// ends the request (DC) instead of a retry nobody will read. False when not to retry.
awaitable<bool> Session::wait_before_retry() {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer backoff(worker_.context());
  backoff.expires_after(exchange_.retry_delay);
  bool client_waiting = in_.empty();  // pipelined bytes already read: nothing to watch
  while (true) {
    if (!client_waiting) {
      co_await backoff.async_wait(kUse);
      break;
    }
    auto woke = co_await (backoff.async_wait(kUse) ||
                          downstream_.socket().async_wait(tcp::socket::wait_read, kUse));
    if (woke.index() == 0) {
      break;
    }
    char byte;
    ssize_t n = ::recv(downstream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      exchange_.flags |= flag_bit(Flag::kDownstreamDisconnect);
      exchange_.close_after = true;
      exchange_.response_started = true;  // nobody to answer
      co_return false;
    }
    client_waiting = n < 0;  // bytes: a pipelined request (or TLS record) waits its turn
  }
  if (aborted_) {
    co_await send_local_reply(503, "the proxy is shutting down", Flag::kLocalReset);
    co_return false;
  }
  co_return true;
}

// Reads the request body ahead, as framed, into replay_body_ so a try can be repeated. True
// when all of it fits in `limit`; else what was read goes first and the rest streams (and the
// request cannot be retried). On a client failure a local reply is sent.
awaitable<bool> Session::buffer_request_body(uint64_t limit) {
  bool chunked = exchange_.body == http::BodyKind::kChunked;
  auto body_limit = config_->limits.max_request_body_bytes;
  arm(Phase::kStreaming, config_->timeouts.stream_idle);
  while (true) {
    if (!in_.empty()) {
      size_t raw = 0;
      uint64_t payload = 0;
      bool done = false;
      if (chunked) {
        auto progress = request_parser_.parse_chunked(in_.view());
        if (progress.status == http::ParseStatus::kBadMessage ||
            (progress.consumed == 0 && progress.status == http::ParseStatus::kNeedMore &&
             in_.write_space() == 0)) {
          exchange_.close_after = true;
          co_await send_local_reply(400, "malformed chunked request body",
                                    Flag::kDownstreamProtocolError);
          co_return false;
        }
        raw = progress.consumed;
        payload = progress.payload;
        done = progress.status == http::ParseStatus::kDone;
      } else {
        raw = static_cast<size_t>(std::min<uint64_t>(in_.size(), exchange_.body_remaining));
        payload = raw;
        exchange_.body_remaining -= raw;
        done = exchange_.body_remaining == 0;
      }
      exchange_.bytes_received += payload;
      if (body_limit > 0 && exchange_.bytes_received > body_limit) {
        exchange_.close_after = true;
        linger_ = true;
        co_await send_local_reply(413, "request body over the configured limit",
                                  Flag::kBodyTooLarge);
        co_return false;
      }
      replay_body_.append(in_.data(), raw);
      in_.consume(raw);
      if (done) {
        exchange_.body_complete = true;
        co_return exchange_.bytes_received <= limit;  // read whole, but replayed only within it
      }
      if (exchange_.bytes_received > limit) {
        co_return false;  // too large to keep: the rest streams, no retry
      }
    }
    auto [ec, n] = co_await downstream_.async_read_some(
        asio::buffer(in_.write_pointer(), in_.write_space()), kUse);
    if (ec) {
      exchange_.close_after = true;
      if (timed_out_ == Phase::kStreaming) {
        co_await send_local_reply(408, "request body stalled past the stream idle timeout",
                                  Flag::kStreamIdleTimeout);
      } else {
        exchange_.flags |= flag_bit(Flag::kDownstreamDisconnect);
        exchange_.response_started = true;  // nobody to answer
      }
      co_return false;
    }
    in_.commit(n);
    worker_.stats().downstream_bytes_received.add(n);
    refresh_stream_deadline();
  }
}

// A try failed before anything went downstream: retry when the route's policy allows
// (`retry_on`: which conditions this failure meets), else answer the client.
awaitable<Session::Outcome> Session::fail_try(int status, std::string_view detail, Flag flag,
                                              uint8_t retry_on) {
  if (claim_retry(retry_on)) {
    co_return Outcome::kRetry;
  }
  co_await send_local_reply(status, detail, flag);
  co_return Outcome::kFailed;
}

// Whether the failed try may be repeated: the policy covers the failure, tries and time are
// left, the request can be replayed, nothing went downstream, and the cluster's retry budget
// has room. Sets the wait before the retry.
bool Session::claim_retry(uint8_t retry_on, std::optional<core::Duration> retry_after) {
  const auto& retry = exchange_.route->config->retry;
  if (!retry || (retry->on & retry_on) == 0 || !exchange_.replayable ||
      exchange_.response_started || client_gone_ || aborted_) {
    return false;
  }
  if (exchange_.attempts >= static_cast<int>(retry->attempts)) {
    exchange_.flags |= flag_bit(Flag::kRetryLimitExceeded);
    return false;
  }
  auto delay = retry_after ? *retry_after
                           : upstream::backoff_delay(static_cast<uint32_t>(exchange_.attempts - 1),
                                                     retry->backoff_base, retry->backoff_max,
                                                     http::thread_id_generator().next_unit());
  if (Clock::now() + delay >= exchange_.route_deadline) {
    return false;  // the route's time would run out while waiting
  }
  if (exchange_.cluster_state != nullptr) {
    // Every retry asks the budget again: the retry in flight gives its unit back first.
    auto& limits = exchange_.cluster_state->limits();
    if (exchange_.holds_retry) {
      limits.release(upstream::ClusterLimits::Resource::kRetries);
      exchange_.holds_retry = false;
    }
    if (!limits.try_acquire_retry()) {
      worker_.stats().upstream_rq_retry_overflow.add();
      exchange_.flags |= flag_bit(Flag::kRetryLimitExceeded);
      return false;
    }
    exchange_.holds_retry = true;  // until the next retry's claim or the request's end
  }
  exchange_.retry_delay = delay;
  return true;
}

// A response head whose status the policy retries (5xx, gateway errors, listed codes). A
// Retry-After longer than retry_after_max is honoured by not retrying.
bool Session::retry_for_status(const http::Head& response) {
  const auto& retry = exchange_.route->config->retry;
  if (!retry) {
    return false;
  }
  int status = response.status;
  uint8_t retry_on = 0;
  if (status >= 500) {
    retry_on |= config::kRetryOn5xx;
  }
  if (status == 502 || status == 503 || status == 504) {
    retry_on |= config::kRetryOnGatewayError;
  }
  if (std::find(retry->retriable_status_codes.begin(), retry->retriable_status_codes.end(),
                status) != retry->retriable_status_codes.end()) {
    retry_on |= config::kRetryOnRetriableStatusCodes;
  }
  if ((retry->on & retry_on) == 0) {
    return false;
  }
  std::optional<core::Duration> retry_after;
  if (status == 429 || status == 503) {
    if (auto value = response.find("retry-after")) {
      retry_after = upstream::parse_retry_after(*value, std::chrono::system_clock::now());
      if (retry_after && *retry_after > retry->retry_after_max) {
        return false;
      }
    }
  }
  return claim_retry(retry_on, retry_after);
}

// A try's end: its host is less busy, and outlier detection hears how it went.
void Session::end_try(upstream::Host& host) {
  auto* state = exchange_.cluster_state;
  if (state == nullptr) {
    return;
  }
  host.add_active(worker_.index(), -1);
  auto* outlier = state->outlier();
  if (outlier == nullptr) {
    return;
  }
  if (exchange_.try_failed_host) {
    if (outlier->report_failure(host, *exchange_.host_set, Clock::now())) {
      spdlog::warn("cluster {}: endpoint {} ejected after {} consecutive failures (ejection {})",
                   state->config().name, host.label(),
                   state->config().outlier_detection->consecutive_failures,
                   host.times_ejected.load(std::memory_order_relaxed));
    }
  } else if (exchange_.upstream_us >= 0) {
    outlier->report_success(host);
  }
}

// The response head did not come in time: the try's own timeout may be retried, the route's
// ends the request.
awaitable<Session::Outcome> Session::response_timeout() {
  exchange_.try_failed_host = true;
  if (exchange_.per_try_deadline && Clock::now() < exchange_.route_deadline) {
    co_return co_await fail_try(
        504, "upstream per-try timeout", Flag::kUpstreamTimeout,
        config::kRetryOnReset | config::kRetryOn5xx | config::kRetryOnGatewayError);
  }
  co_await send_local_reply(504, "upstream request timeout", Flag::kUpstreamTimeout);
  co_return Outcome::kFailed;
}

awaitable<std::optional<Session::Outcome>> Session::connect(upstream::Host& host,
                                                            Stream& upstream) {
  using Resource = upstream::ClusterLimits::Resource;
  auto& stats = worker_.stats();
  const auto& cluster = (*runtime_).clusters[exchange_.cluster];
  auto* state = exchange_.cluster_state;
  // At max_connections, an idle pooled connection of the cluster (to another endpoint) gives
  // its place up rather than refusing the request.
  if (state != nullptr && !state->limits().try_acquire(Resource::kConnections) &&
      !(worker_.pool().close_one_idle(*state) &&
        state->limits().try_acquire(Resource::kConnections))) {
    co_await send_overflow("max_connections");
    co_return Outcome::kFailed;
  }
  if (state != nullptr && !state->limits().try_acquire(Resource::kPendingRequests)) {
    state->limits().release(Resource::kConnections);
    co_await send_overflow("max_pending_requests");
    co_return Outcome::kFailed;
  }
  boost::system::error_code ec;
  upstream.socket().open(host.address().protocol(), ec);
  if (!ec && host.source) {
    upstream.socket().bind(tcp::endpoint(*host.source, 0), ec);
  }
  if (!ec) {
    arm(Phase::kConnect, cluster.config->connect_timeout);
    std::tie(ec) = co_await upstream.socket().async_connect(host.address(), kUse);
  }
  if (state != nullptr) {
    state->limits().release(Resource::kPendingRequests);
  }
  if (ec) {
    if (state != nullptr) {
      state->limits().release(Resource::kConnections);
    }
    stats.upstream_cx_connect_fail.add();
    std::string reason =
        timed_out_ == Phase::kConnect ? std::string("connect timeout") : ec.message();
    boost::system::error_code ignored;
    upstream.socket().close(ignored);
    exchange_.upstream_reusable = false;
    exchange_.try_failed_host = true;
    timed_out_.reset();
    std::string detail = fmt::format("upstream connect error: {}", reason);
    co_return co_await fail_try(
        502, detail, Flag::kUpstreamConnectFailure,
        config::kRetryOnConnectFailure | config::kRetryOn5xx | config::kRetryOnGatewayError);
  }
  upstream.socket().set_option(tcp::no_delay(true), ec);
  if (auto failed = co_await originate_tls(host, upstream)) {
    co_return failed;
  }
  stats.upstream_cx_total.add();
  stats.upstream_cx_active.add();
  co_return std::nullopt;
}

// Mutual TLS to the upstream when its cluster asks (or, transparent outbound, the config does
// for every captured destination): our workload certificate, the peer verified against the
// bundle and its SPIFFE ID against the cluster's expected IDs, SNI, resumed sessions. A
// failure counts as a connect failure (UF; retried under connect-failure).
awaitable<std::optional<Session::Outcome>> Session::originate_tls(upstream::Host& host,
                                                                  Stream& upstream) {
  using Resource = upstream::ClusterLimits::Resource;
  const auto& cluster = runtime_->clusters[exchange_.cluster];
  const config::ClusterTls* settings = nullptr;
  if (cluster.config->tls) {
    settings = &*cluster.config->tls;
  } else if (cluster.destination == Destination::kOriginalDestination &&
             config_->transparent.outbound_tls) {
    settings = &*config_->transparent.outbound_tls;
  }
  if (settings == nullptr) {
    co_return std::nullopt;
  }
  auto& stats = worker_.stats();
  auto identity = worker_.identity_ptr();
  std::string problem;
  std::string session_key;
  if (!identity) {
    problem = "no workload identity is loaded";
  } else {
    auto& tls = upstream.start_tls(*identity->client_context());
    SSL* ssl = tls.native_handle();
    // SNI: the configured name, else the endpoint's host when it is a name (not an IP).
    std::string server_name = settings->sni;
    if (server_name.empty()) {
      auto authority = std::string_view(host.authority());
      auto colon = authority.rfind(':');
      server_name = std::string(authority.substr(0, colon));
      boost::system::error_code not_ip;
      asio::ip::make_address(server_name, not_ip);
      if (!not_ip || server_name.starts_with('[')) {
        server_name.clear();
      }
    }
    if (!server_name.empty()) {
      tls::set_server_name(ssl, server_name);
    }
    session_key = host.label() + "|" + server_name;
    worker_.tls_sessions().apply(ssl, session_key);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kUse);
    if (ec) {
      problem = fmt::format("TLS handshake failed: {}", timed_out_ == Phase::kConnect
                                                            ? std::string("timeout")
                                                            : tls::handshake_error(ssl, ec));
      worker_.tls_sessions().forget(session_key);
    } else {
      if (worker_.tls_sessions().resumed(ssl)) {
        stats.upstream_tls_resumed.add();
      }
      auto peer = tls::peer_spiffe_id(ssl);
      if (!peer || !tls::peer_id_allowed(*peer, settings->expected_ids)) {
        problem = fmt::format("upstream identity {} is not one the cluster expects",
                              peer.value_or("(none)"));
      }
    }
  }
  if (problem.empty()) {
    stats.upstream_tls_handshakes.add();
    co_return std::nullopt;
  }
  stats.upstream_tls_handshake_failures.add();
  spdlog::info("cluster {}: {}: {}", cluster.config->name, host.label(), problem);
  boost::system::error_code ignored;
  upstream.socket().close(ignored);
  if (exchange_.cluster_state != nullptr) {
    exchange_.cluster_state->limits().release(Resource::kConnections);
  }
  exchange_.try_failed_host = true;
  timed_out_.reset();
  co_return co_await fail_try(
      502, fmt::format("upstream {}", problem), Flag::kUpstreamConnectFailure,
      config::kRetryOnConnectFailure | config::kRetryOn5xx | config::kRetryOnGatewayError);
}

awaitable<Session::Outcome> Session::forward_once(upstream::Host& host, bool allow_pooled) {
  using namespace asio::experimental::awaitable_operators;
  auto& stats = worker_.stats();
  auto& pool = worker_.pool();
  const auto& cluster = runtime_->clusters[exchange_.cluster];
  ++exchange_.attempts;
  exchange_.host = &host;
  exchange_.upstream_reusable = false;
  exchange_.try_failed_host = false;
  exchange_.upstream_us = -1;
  timed_out_.reset();
  if (exchange_.cluster_state != nullptr) {
    host.add_active(worker_.index(), 1);
  }
  Stream upstream(tcp::socket(worker_.context()));
  upstream_ = &upstream.socket();
  bool reused = false;
  if (allow_pooled) {
    // A request that could not be retried on a fresh connection is worth one peek more.
    bool retryable = exchange_.replayable && exchange_.body_complete;
    if (host.id() == upstream::Host::kNotPooled) {
      if (captured_idle_ && connection_looks_open(captured_idle_->socket())) {
        upstream = std::move(*captured_idle_);
        reused = true;
        stats.upstream_rq_pool_reused.add();
      } else if (captured_idle_) {
        pool.discard(*captured_idle_, nullptr);
      }
      captured_idle_.reset();
    } else if (auto pooled =
                   pool.acquire(host.id(), exchange_.cluster_state, worker_.now(), !retryable)) {
      upstream = std::move(*pooled);
      reused = true;
      stats.upstream_rq_pool_reused.add();
    }
  }
  if (!reused) {
    if (auto failed = co_await connect(host, upstream)) {
      upstream_ = nullptr;
      end_try(host);
      co_return *failed;
    }
  }
  stats.upstream_rq_total.add();
  exchange_.upstream_sent = Clock::now();
  arm(Phase::kStreaming, config_->timeouts.stream_idle);
  const auto& retry = exchange_.route->config->retry;
  auto try_deadline = retry && retry->per_try_timeout.count() > 0
                          ? exchange_.upstream_sent + retry->per_try_timeout
                          : Clock::time_point::max();
  exchange_.per_try_deadline = try_deadline < exchange_.route_deadline;
  response_deadline_ = std::min(try_deadline, exchange_.route_deadline);
  std::array<asio::const_buffer, 2> request{asio::buffer(out_), asio::buffer(replay_body_)};
  auto [ec, written] = co_await upstream.async_write(request, kUse);
  Outcome outcome = Outcome::kFailed;
  if (ec) {
    if (reused && exchange_.replayable && exchange_.body_complete && !timed_out_) {
      outcome = Outcome::kRetryFresh;
    } else if (timed_out_ == Phase::kAwaitResponse) {
      outcome = co_await response_timeout();
    } else {
      exchange_.try_failed_host = true;
      std::string detail = fmt::format("upstream write failed: {}", ec.message());
      outcome = co_await fail_try(
          502, detail, Flag::kUpstreamReset,
          config::kRetryOnReset | config::kRetryOn5xx | config::kRetryOnGatewayError);
    }
  } else if (exchange_.body_complete) {
    // The ticker arms the client watch once this has waited a tick: fast requests never pay.
    awaiting_upstream_ = true;
    outcome = co_await relay_response(upstream, reused);
    awaiting_upstream_ = false;
    watching_client_ = false;
  } else {
    outcome = co_await (pump_request_body(upstream) && relay_and_stop_pump(upstream, reused));
  }
  upstream_ = nullptr;
  response_deadline_ = Clock::time_point::max();
  bool keep = exchange_.upstream_reusable && exchange_.body_complete && !timed_out_ && !aborted_;
  if (keep && host.id() == upstream::Host::kNotPooled) {
    captured_idle_.emplace(std::move(upstream));
  } else if (keep) {
    pool.release(host.id(), std::move(upstream), worker_.now(), cluster.state);
  } else {
    pool.discard(upstream, exchange_.cluster_state);
  }
  end_try(host);
  co_return outcome;
}

awaitable<void> Session::pump_request_body(Stream& upstream) {
  auto limit = config_->limits.max_request_body_bytes;
  uint64_t remaining = exchange_.body_remaining;
  bool chunked = exchange_.body == http::BodyKind::kChunked;
  bool upstream_open = true;
  auto stop_with = [&](Flag flag) {
    exchange_.flags |= flag_bit(flag);
    exchange_.abort_upstream_for_body = true;
    boost::system::error_code ignored;
    upstream.socket().cancel(ignored);
  };
  while (true) {
    if (!in_.empty()) {
      size_t raw = 0;
      uint64_t payload = 0;
      bool done = false;
      if (chunked) {
        auto progress = request_parser_.parse_chunked(in_.view());
        if (progress.status == http::ParseStatus::kBadMessage) {
          stop_with(Flag::kDownstreamProtocolError);
          co_return;
        }
        raw = progress.consumed;
        payload = progress.payload;
        done = progress.status == http::ParseStatus::kDone;
      } else {
        raw = static_cast<size_t>(std::min<uint64_t>(in_.size(), remaining));
        payload = raw;
        remaining -= raw;
        done = remaining == 0;
      }
      exchange_.bytes_received += payload;
      if (limit > 0 && exchange_.bytes_received > limit) {
        stop_with(Flag::kBodyTooLarge);
        co_return;
      }
      if (raw > 0 && upstream_open) {
        auto [ec, n] = co_await upstream.async_write(asio::buffer(in_.data(), raw), kUse);
        if (ec) {
          // The upstream stopped reading (it may have answered early): its response decides.
          upstream_open = false;
        }
        refresh_stream_deadline();
      }
      in_.consume(raw);
      if (done) {
        exchange_.body_complete = true;
        co_return;
      }
      if (!upstream_open) {
        co_return;
      }
      if (chunked && raw == 0 && in_.write_space() == 0) {
        stop_with(Flag::kDownstreamProtocolError);  // a chunk-size line longer than the buffer
        co_return;
      }
    }
    auto [ec, n] = co_await downstream_.async_read_some(
        asio::buffer(in_.write_pointer(), in_.write_space()), kUse);
    if (ec) {
      if (ec != asio::error::operation_aborted) {
        stop_with(Flag::kDownstreamDisconnect);
      }
      // Cancelled by a timeout, shutdown or the relay: the relay reports why.
      co_return;
    }
    in_.commit(n);
    worker_.stats().downstream_bytes_received.add(n);
  }
}

// The upstream may answer before the request body is complete (an early 413, a redirect) or the
// relay may fail; then the pump must not wait for the client forever.
awaitable<Session::Outcome> Session::relay_and_stop_pump(Stream& upstream, bool reused) {
  Outcome outcome = co_await relay_response(upstream, reused);
  if (!exchange_.body_complete) {
    exchange_.close_after = true;
    boost::system::error_code ignored;
    downstream_.socket().cancel(ignored);
    upstream.socket().cancel(ignored);
  }
  co_return outcome;
}

awaitable<Session::Outcome> Session::relay_response(Stream& upstream, bool reused) {
  upstream_in_.clear();
  response_parser_.start(exchange_.head_request);
  bool got_bytes = false;
  while (true) {
    if (!upstream_in_.empty()) {
      auto status = response_parser_.parse_head(upstream_in_.view());
      if (status == http::ParseStatus::kDone) {
        const auto& head = response_parser_.head();
        if (head.status >= 100 && head.status < 200 && head.status != 101) {
          // Interim responses: 100 was already sent by us (Expect is answered locally);
          // others (102, 103) go to the client as they are.
          if (head.status != 100 && !exchange_.http10) {
            response_head_.clear();
            http::build_downstream_response(head, {}, response_head_);
            if (!co_await write_downstream(response_head_)) {
              co_return Outcome::kFailed;
            }
          }
          upstream_in_.consume(head.head_bytes);
          response_parser_.start(exchange_.head_request);
          continue;
        }
        break;
      }
      if (status != http::ParseStatus::kNeedMore || upstream_in_.write_space() == 0) {
        co_await send_local_reply(502, "upstream sent a malformed or oversized response head",
                                  Flag::kUpstreamProtocolError);
        co_return Outcome::kFailed;
      }
    }
    // The pump may have given up on the body before this read was issued (bad chunk, over the
    // limit, all in the first bytes): then there is no read for its cancel to interrupt.
    boost::system::error_code ec;
    size_t n = 0;
    if (exchange_.abort_upstream_for_body) {
      ec = asio::error::operation_aborted;
    } else {
      std::tie(ec, n) = co_await upstream.async_read_some(
          asio::buffer(upstream_in_.write_pointer(), upstream_in_.write_space()), kUse);
    }
    if (ec) {
      response_deadline_ = Clock::time_point::max();
      if (aborted_) {
        co_await send_local_reply(503, "the proxy is shutting down", Flag::kLocalReset);
        co_return Outcome::kFailed;
      }
      if (client_gone_) {
        co_return Outcome::kFailed;  // nobody to answer; the upstream request is abandoned
      }
      if (exchange_.abort_upstream_for_body) {
        if (exchange_.flags & flag_bit(Flag::kBodyTooLarge)) {
          co_await send_local_reply(413, "request body over the configured limit",
                                    Flag::kBodyTooLarge);
        } else if (exchange_.flags & flag_bit(Flag::kDownstreamProtocolError)) {
          co_await send_local_reply(400, "malformed chunked request body",
                                    Flag::kDownstreamProtocolError);
        }
        exchange_.close_after = true;
        co_return Outcome::kFailed;
      }
      if (timed_out_ == Phase::kAwaitResponse) {
        co_return co_await response_timeout();
      }
      if (timed_out_ == Phase::kStreaming) {
        // Nothing moved for stream_idle: a client stalled mid-body (408) or a silent upstream.
        if (exchange_.body_complete) {
          exchange_.try_failed_host = true;
          co_await send_local_reply(504, "no response within the stream idle timeout",
                                    Flag::kStreamIdleTimeout);
        } else {
          co_await send_local_reply(408, "request body stalled past the stream idle timeout",
                                    Flag::kStreamIdleTimeout);
        }
        co_return Outcome::kFailed;
      }
      if (!got_bytes && reused && exchange_.replayable && exchange_.body_complete && !aborted_) {
        co_return Outcome::kRetryFresh;
      }
      exchange_.try_failed_host = true;
      std::string detail =
          fmt::format("upstream reset before response: {}",
                      ec == asio::error::eof ? std::string("connection closed") : ec.message());
      co_return co_await fail_try(
          502, detail, Flag::kUpstreamReset,
          config::kRetryOnReset | config::kRetryOn5xx | config::kRetryOnGatewayError);
    }
    got_bytes = true;
    upstream_in_.commit(n);
  }

  response_deadline_ = Clock::time_point::max();
  const auto& head = response_parser_.head();
  exchange_.upstream_us = micros_between(exchange_.upstream_sent, Clock::now());
  exchange_.try_failed_host = head.status >= 500;
  if (retry_for_status(head)) {
    co_return Outcome::kRetry;  // the answer is dropped with its connection
  }
  exchange_.status = head.status;
  upstream_in_.consume(head.head_bytes);

  if (head.status == 101) {
    if (!request_parser_.head().upgrade) {
      co_await send_local_reply(502, "upstream switched protocols without an upgrade request",
                                Flag::kUpstreamProtocolError);
      co_return Outcome::kFailed;
    }
    response_head_.clear();
    http::DownstreamResponseContext context;
    context.request_id = exchange_.request_id_view;
    http::build_downstream_response(head, context, response_head_);
    exchange_.response_started = true;
    if (co_await write_downstream(response_head_)) {
      co_await tunnel(upstream);
    }
    exchange_.close_after = true;
    co_return Outcome::kDone;
  }

  // Downstream framing: the body is forwarded in the framing it arrived in, except a
  // close-delimited body, which an HTTP/1.1 client gets chunked so its connection survives.
  bool until_close = head.body == http::BodyKind::kUntilClose;
  bool http10_chunked = exchange_.http10 && head.body == http::BodyKind::kChunked;
  bool close = !exchange_.client_keep_alive || worker_.draining() || !exchange_.body_complete ||
               (exchange_.http10 && (until_close || http10_chunked));
  http::DownstreamResponseContext context;
  context.request_id = exchange_.request_id_view;
  context.close = close;
  context.keep_alive_http10 = exchange_.http10 && !close;
  context.chunk_encode = until_close && !exchange_.http10;
  response_head_.clear();
  http::build_downstream_response(head, context, response_head_);
  if (http10_chunked) {
    // An HTTP/1.0 client cannot read chunked framing: the payload goes close-delimited.
    drop_transfer_encoding(response_head_);
  }
  exchange_.response_started = true;
  if (close) {
    exchange_.close_after = true;
  }
  bool ok = co_await relay_response_body(upstream, context.chunk_encode, http10_chunked);
  exchange_.upstream_reusable = ok && head.keep_alive && !until_close && upstream_in_.empty();
  co_return Outcome::kDone;
}

void Session::drop_transfer_encoding(std::string& head) {
  auto at = head.find("\r\ntransfer-encoding:");
  if (at == std::string::npos) {
    at = head.find("\r\nTransfer-Encoding:");
  }
  if (at != std::string::npos) {
    auto end = head.find("\r\n", at + 2);
    head.erase(at, end - at);
  }
}

// Writes the pending response head (once) followed by up to three body pieces, in one write.
awaitable<bool> Session::send_body(std::string_view a, std::string_view b, std::string_view c) {
  std::array<asio::const_buffer, 4> buffers;
  size_t count = 0;
  if (response_head_pending_) {
    buffers[count++] = asio::buffer(response_head_);
    response_head_pending_ = false;
  }
  for (auto piece : {a, b, c}) {
    if (!piece.empty()) {
      buffers[count++] = asio::buffer(piece.data(), piece.size());
    }
  }
  if (count == 0) {
    co_return true;
  }
  auto [ec, n] = co_await downstream_.async_write(
      std::span<const asio::const_buffer>(buffers.data(), count), kUse);
  if (ec) {
    exchange_.flags |= flag_bit(stream_failure_flag(Flag::kDownstreamDisconnect));
    exchange_.close_after = true;
    co_return false;
  }
  worker_.stats().downstream_bytes_sent.add(n);
  refresh_stream_deadline();
  co_return true;
}

// Reads more of the response body; false at EOF (`eof` set) or on error (flag set).
awaitable<bool> Session::read_upstream(Stream& upstream, bool& eof) {
  auto [ec, n] = co_await upstream.async_read_some(
      asio::buffer(upstream_in_.write_pointer(), upstream_in_.write_space()), kUse);
  if (ec == asio::error::eof) {
    eof = true;
    co_return false;
  }
  if (ec) {
    exchange_.flags |= flag_bit(stream_failure_flag(Flag::kUpstreamReset));
    exchange_.close_after = true;
    co_return false;
  }
  upstream_in_.commit(n);
  refresh_stream_deadline();
  co_return true;
}

// Reads more of a body whose length is known: the upstream closing early is a reset (UR).
awaitable<bool> Session::read_framed_body(Stream& upstream) {
  bool eof = false;
  if (co_await read_upstream(upstream, eof)) {
    co_return true;
  }
  if (eof) {
    exchange_.flags |= flag_bit(Flag::kUpstreamReset);
    exchange_.close_after = true;
  }
  co_return false;
}

awaitable<bool> Session::relay_response_body(Stream& upstream, bool chunk_encode, bool dechunk) {
  const auto& head = response_parser_.head();
  arm(Phase::kStreaming, config_->timeouts.stream_idle);
  response_head_pending_ = true;
  std::array<char, 20> size_line{};
  switch (head.body) {
    case http::BodyKind::kNone:
      co_return co_await send_body();
    case http::BodyKind::kContentLength: {
      uint64_t remaining = head.content_length;
      while (true) {
        size_t piece = static_cast<size_t>(std::min<uint64_t>(upstream_in_.size(), remaining));
        if (!co_await send_body(std::string_view(upstream_in_.data(), piece))) {
          co_return false;
        }
        upstream_in_.consume(piece);
        remaining -= piece;
        exchange_.bytes_sent += piece;
        if (remaining == 0) {
          co_return true;
        }
        if (!co_await read_framed_body(upstream)) {
          co_return false;
        }
      }
    }
    case http::BodyKind::kChunked: {
      while (true) {
        decoded_.clear();
        auto progress =
            response_parser_.parse_chunked(upstream_in_.view(), dechunk ? &decoded_ : nullptr);
        if (progress.status == http::ParseStatus::kBadMessage ||
            (progress.consumed == 0 && progress.status == http::ParseStatus::kNeedMore &&
             upstream_in_.write_space() == 0)) {
          if (response_head_pending_) {
            // Nothing reached the client yet: it can still get a proper 502.
            exchange_.response_started = false;
            response_head_pending_ = false;
            co_await send_local_reply(502, "upstream sent a malformed chunked body",
                                      Flag::kUpstreamProtocolError);
          }
          exchange_.flags |= flag_bit(Flag::kUpstreamProtocolError);
          exchange_.close_after = true;
          co_return false;
        }
        std::string_view piece = dechunk ? std::string_view(decoded_)
                                         : std::string_view(upstream_in_.data(), progress.consumed);
        if (!co_await send_body(piece)) {
          co_return false;
        }
        upstream_in_.consume(progress.consumed);
        exchange_.bytes_sent += progress.payload;
        if (progress.status == http::ParseStatus::kDone) {
          co_return true;
        }
        if (!co_await read_framed_body(upstream)) {
          co_return false;
        }
      }
    }
    case http::BodyKind::kUntilClose: {
      while (true) {
        if (!upstream_in_.empty()) {
          std::string_view data = upstream_in_.view();
          bool sent = chunk_encode ? co_await send_body(chunk_size_line(data.size(), size_line),
                                                        data, "\r\n")
                                   : co_await send_body(data);
          if (!sent) {
            co_return false;
          }
          exchange_.bytes_sent += data.size();
          upstream_in_.clear();
        }
        bool eof = false;
        if (!co_await read_upstream(upstream, eof)) {
          if (!eof) {
            co_return false;
          }
          co_return co_await send_body(chunk_encode ? std::string_view("0\r\n\r\n")
                                                    : std::string_view());
        }
      }
    }
  }
  co_return false;
}

awaitable<void> Session::tunnel(Stream& upstream) {
  using namespace asio::experimental::awaitable_operators;
  worker_.stats().upgrades_total.add();
  arm(Phase::kStreaming, config_->timeouts.stream_idle);
  if (!in_.empty()) {
    auto [ec, n] = co_await upstream.async_write(asio::buffer(in_.data(), in_.size()), kUse);
    exchange_.bytes_received += in_.size();
    in_.clear();
    if (ec) {
      co_return;
    }
  }
  if (!upstream_in_.empty()) {
    if (!co_await write_downstream(upstream_in_.view())) {
      co_return;
    }
    exchange_.bytes_sent += upstream_in_.size();
    upstream_in_.clear();
  }
  co_await (copy_bytes(downstream_, upstream, in_, exchange_.bytes_received) &&
            copy_bytes(upstream, downstream_, upstream_in_, exchange_.bytes_sent));
}

awaitable<void> Session::copy_bytes(Stream& from, Stream& to, core::Buffer& buffer,
                                    uint64_t& counter) {
  boost::system::error_code ignored;
  while (true) {
    buffer.clear();
    auto [read_error, n] = co_await from.async_read_some(
        asio::buffer(buffer.write_pointer(), buffer.write_space()), kUse);
    if (read_error == asio::error::eof) {
      to.socket().shutdown(tcp::socket::shutdown_send, ignored);  // pass the half-close on
      co_return;
    }
    if (read_error) {
      from.socket().cancel(ignored);
      to.socket().cancel(ignored);
      co_return;
    }
    auto [write_error, written] = co_await to.async_write(asio::buffer(buffer.data(), n), kUse);
    if (write_error) {
      from.socket().cancel(ignored);
      to.socket().cancel(ignored);
      co_return;
    }
    counter += n;
    refresh_stream_deadline();
  }
}

// Why an I/O error in the middle of an exchange happened: our own timeout or shutdown, or the
// peer (`peer_flag`).
Flag Session::stream_failure_flag(Flag peer_flag) const {
  if (aborted_) {
    return Flag::kLocalReset;
  }
  if (timed_out_ == Phase::kStreaming) {
    return Flag::kStreamIdleTimeout;
  }
  return peer_flag;
}

awaitable<bool> Session::write_downstream(std::string_view bytes) {
  auto [ec, n] = co_await downstream_.async_write(asio::buffer(bytes.data(), bytes.size()), kUse);
  if (ec) {
    exchange_.flags |= flag_bit(stream_failure_flag(Flag::kDownstreamDisconnect));
    exchange_.close_after = true;
    co_return false;
  }
  worker_.stats().downstream_bytes_sent.add(n);
  co_return true;
}

awaitable<void> Session::send_local_reply(int status, std::string_view detail, Flag flag,
                                          std::string_view extra_headers) {
  exchange_.flags |= flag_bit(flag);
  if (exchange_.response_started) {
    // Part of a response already went out: the only signal left is closing the connection.
    exchange_.close_after = true;
    co_return;
  }
  exchange_.status = status;
  exchange_.response_started = true;
  ensure_request_id();
  bool close = exchange_.close_after || !exchange_.client_keep_alive || worker_.draining() ||
               !exchange_.body_complete;
  if (close) {
    exchange_.close_after = true;
  }
  response_head_.clear();
  http::build_local_response(status, detail, exchange_.request_id_view, close, response_head_,
                             extra_headers);
  spdlog::debug("request {} {}: {} {}", exchange_.request_id_view, exchange_.path, status, detail);
  size_t head_end = response_head_.find("\r\n\r\n");
  exchange_.bytes_sent += response_head_.size() - (head_end + 4);
  co_await write_downstream(response_head_);
}

void Session::log_request() {
  if (exchange_.logged) {
    return;
  }
  exchange_.logged = true;
  auto& stats = worker_.stats();
  if (exchange_.method.empty() && exchange_.status == 0) {
    return;  // the connection closed between requests
  }
  if (!exchange_.method.empty()) {
    stats.downstream_rq_active.sub();
  } else {
    stats.downstream_rq_total.add();  // a request that failed to parse still counts
  }
  auto duration_us = micros_between(exchange_.start, Clock::now());
  // This worker's own slot for (listener, cluster): indices, no lookup.
  auto listener_index = static_cast<size_t>(listener_ - runtime_->listeners.data());
  if (auto* route = stats.route(listener_index,
                                exchange_.route ? runtime_->clusters[exchange_.cluster].stats_slot
                                                : observe::kNoCluster)) {
    route->record(exchange_.status, duration_us, exchange_.upstream_us);
  }
  for (int i = 0; i < static_cast<int>(Flag::kCount); ++i) {
    if (exchange_.flags & (observe::Flags{1} << i)) {
      stats.flags[static_cast<size_t>(i)].add();
    }
  }
  if (peer_slot_ <= observe::PeerIds::kOther) {
    stats.peer_requests[peer_slot_].add();
  }
  observe::AccessLogEntry entry;
  entry.start = exchange_.start_wall;
  entry.request_id = exchange_.request_id_view;
  entry.method = exchange_.method;
  entry.path = exchange_.path;
  entry.protocol = exchange_.http10 ? "HTTP/1.0" : "HTTP/1.1";
  entry.client = client_address_;
  entry.upstream_host =
      exchange_.host ? std::string_view(exchange_.host->label()) : std::string_view();
  entry.listener = listener_->config->name;
  entry.peer_id = peer_id_;
  entry.status = exchange_.status;
  entry.bytes_received = exchange_.bytes_received;
  entry.bytes_sent = exchange_.bytes_sent;
  entry.duration_us = duration_us;
  entry.upstream_us = exchange_.upstream_us;
  entry.attempts = exchange_.attempts;
  entry.flags = exchange_.flags;
  worker_.access_log().log(entry);
  if (exchange_.trace_hop.sampled() && worker_.tracing_enabled()) {
    record_span(entry);
  }
}

// One span per sampled request: server kind where the request came into this pod (inbound
// capture), client kind where the app called out through its sidecar.
void Session::record_span(const observe::AccessLogEntry& entry) {
  using observe::tracing::SpanText;
  bool inbound = listener_->config->mode == config::ListenerMode::kTransparentInbound;
  auto span = observe::tracing::start_span(
      exchange_.trace_hop,
      inbound ? observe::tracing::SpanKind::kServer : observe::tracing::SpanKind::kClient,
      exchange_.start_wall);
  span.set(SpanText::kName, exchange_.method);
  span.set(SpanText::kMethod, exchange_.method);
  span.set(SpanText::kPath, std::string_view(exchange_.path).substr(0, exchange_.path.find('?')));
  span.set(SpanText::kPeer, inbound ? entry.client : entry.upstream_host);
  span.set(SpanText::kServerAddress, entry.upstream_host);
  if (exchange_.route != nullptr) {
    span.set(SpanText::kCluster, (*runtime_).clusters[exchange_.cluster].config->name);
  }
  if (exchange_.flags != 0) {
    std::string flags;
    observe::append_flags(exchange_.flags, flags);
    span.set(SpanText::kResponseFlags, flags);
  }
  span.set(SpanText::kRequestId, exchange_.request_id_view);
  span.set(SpanText::kListener, listener_->config->name);
  observe::tracing::finish_span(span, std::chrono::microseconds(entry.duration_us),
                                exchange_.status);
  worker_.spans().add(std::move(span));
}

}  // namespace pillion::proxy
