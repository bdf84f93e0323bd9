#include "proxy/session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
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
      socket_(std::move(socket)),
      listener_(listener),
      config_(*worker.runtime().config),
      in_(buffer_size_for(config_.limits.max_request_header_bytes)),
      upstream_in_(buffer_size_for(config_.limits.max_response_header_bytes)),
      request_parser_(parser_limit(config_.limits.max_request_header_bytes)),
      response_parser_(parser_limit(config_.limits.max_response_header_bytes)),
      self_(std::make_shared<Session*>(this)) {
  worker_.link(*this);
  worker_.stats().downstream_cx_total.add();
  worker_.stats().downstream_cx_active.add();
  boost::system::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) {
    client_ip_ = remote.address().to_string();
    client_address_ = remote.address().is_v6() ? fmt::format("[{}]:{}", client_ip_, remote.port())
                                               : fmt::format("{}:{}", client_ip_, remote.port());
  }
  socket_.set_option(tcp::no_delay(true), ec);
  out_.reserve(4096);
  response_head_.reserve(2048);
  exchange_.method.reserve(16);
  exchange_.path.reserve(256);
}

void Session::captured(Endpoint destination, std::string_view first_bytes) {
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
  socket_.async_wait(tcp::socket::wait_read, [self = self_](const boost::system::error_code& ec) {
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
  ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
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
  auto timeout = config_.timeouts.stream_idle;
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
      socket_.cancel(ignored);
      break;
    case Phase::kConnect:
    case Phase::kAwaitResponse:
      if (upstream_ != nullptr) {
        upstream_->cancel(ignored);
      }
      break;
    case Phase::kStreaming:
      socket_.cancel(ignored);
      if (upstream_ != nullptr) {
        upstream_->cancel(ignored);
      }
      break;
  }
}

void Session::on_drain() {
  if (phase_ == Phase::kIdle) {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }
}

void Session::abort() {
  aborted_ = true;
  boost::system::error_code ignored;
  socket_.cancel(ignored);
  if (upstream_ != nullptr) {
    upstream_->cancel(ignored);
  }
}

void Session::close_now() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (upstream_ != nullptr) {
    upstream_->close(ignored);  // the gauge of open upstream connections no longer matters
  }
}

awaitable<void> Session::run() {
  while (!aborted_) {
    if (!co_await read_request_head()) {
      break;
    }
    bool keep_going = co_await handle_request();
    log_request();
    if (!keep_going || exchange_.close_after || worker_.draining()) {
      break;
    }
  }
  boost::system::error_code ignored;
  if (linger_ && !aborted_) {
    co_await linger();
  }
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
  if (captured_idle_) {
    worker_.pool().discard(*captured_idle_);
    captured_idle_.reset();
  }
}

// After an error reply the client may still be sending a body; closing at once would make the
// kernel answer with RST and the client could lose our reply. Read and discard for a while.
awaitable<void> Session::linger() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  arm(Phase::kStreaming, std::chrono::seconds(2));
  size_t discarded = 0;
  while (discarded < (1 << 20)) {
    in_.clear();
    auto [ec, n] = co_await socket_.async_read_some(
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
  e.endpoint = nullptr;
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
    arm(Phase::kRequestHead, config_.timeouts.request_headers);
  } else {
    arm(Phase::kIdle, config_.timeouts.idle);
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
    auto [ec, n] = co_await socket_.async_read_some(
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
      arm(Phase::kRequestHead, config_.timeouts.request_headers);
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
  auto incoming_trace = http::extract_trace(head, config_.tracing.accept);
  bool sampled = observe::tracing::Sampler(config_.tracing.sampling).sample(incoming_trace, ids);
  exchange_.trace_hop = http::next_hop(incoming_trace, sampled, ids);
  exchange_.trace_headers.format(exchange_.trace_hop, config_.tracing.emit);

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
  std::string_view route_host = absolute ? absolute_authority : host.value_or("");
  exchange_.route =
      match_route(listener_, route_host, absolute ? origin_target : head.target, head);
  if (exchange_.route == nullptr && listener_.fallback) {
    exchange_.route = &*listener_.fallback;
  }
  if (exchange_.route == nullptr) {
    std::string detail = fmt::format("no route for host '{}'", route_host);
    co_await fail_before_upstream(404, detail, Flag::kNoRoute);
    co_return !exchange_.close_after;
  }
  if (!co_await enforce_route_policy(head)) {
    co_return !exchange_.close_after;
  }
  auto body_limit = config_.limits.max_request_body_bytes;
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

  const auto& runtime = worker_.runtime();
  exchange_.cluster = pick_cluster(*exchange_.route);
  const auto& cluster = runtime.clusters[exchange_.cluster];
  const Endpoint* chosen = nullptr;
  if (cluster.destination == Destination::kEndpoints) {
    size_t pick = worker_.next_round_robin(cluster.index) % cluster.endpoints.size();
    chosen = &runtime.endpoints[cluster.endpoints[pick]];
  } else if (captured_destination_) {
    chosen = &*captured_destination_;
  } else {
    std::string detail = fmt::format("cluster {} needs a captured connection (transparent mode)",
                                     cluster.config->name);
    co_await fail_before_upstream(502, detail, Flag::kNoRoute);
    co_return !exchange_.close_after;
  }
  const Endpoint& endpoint = *chosen;

  http::UpstreamRequestContext context;
  context.request_id = exchange_.request_id_view;
  context.request_had_id = !exchange_.incoming_request_id.empty();
  context.trace_headers = exchange_.trace_headers.lines();
  // A transparent outbound hop is the app's own call, not a new client: like Istio's outbound,
  // it leaves X-Forwarded-For to the receiving side (else the caller appears twice).
  if (listener_.config->mode != config::ListenerMode::kTransparentOutbound) {
    context.client_ip = client_ip_;
  }
  context.authority = endpoint.authority;
  if (absolute) {
    context.target_override = origin_target;
    context.host_override = absolute_authority;
  }
  out_.clear();
  http::build_upstream_request(head, context, out_);

  if (exchange_.expect_continue) {
    // Like Envoy by default: answer 100 here and strip Expect, so a client never waits on an
    // upstream that ignores Expect.
    if (!co_await write_downstream(kContinue)) {
      co_return false;
    }
  }

  Outcome outcome = co_await forward_once(endpoint, true);
  if (outcome == Outcome::kRetryFresh) {
    stats.upstream_rq_stale_retry.add();
    outcome = co_await forward_once(endpoint, false);
    if (outcome == Outcome::kRetryFresh) {
      co_await send_local_reply(502, "upstream closed the connection before responding",
                                Flag::kUpstreamReset);
    }
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

awaitable<bool> Session::connect(const Endpoint& endpoint, tcp::socket& upstream) {
  auto& stats = worker_.stats();
  const auto& cluster = worker_.runtime().clusters[exchange_.cluster];
  boost::system::error_code ec;
  upstream.open(endpoint.address.protocol(), ec);
  if (!ec && endpoint.source) {
    upstream.bind(tcp::endpoint(*endpoint.source, 0), ec);
  }
  if (!ec) {
    arm(Phase::kConnect, cluster.config->connect_timeout);
    std::tie(ec) = co_await upstream.async_connect(endpoint.address, kUse);
  }
  if (ec) {
    stats.upstream_cx_connect_fail.add();
    std::string reason =
        timed_out_ == Phase::kConnect ? std::string("connect timeout") : ec.message();
    boost::system::error_code ignored;
    upstream.close(ignored);
    exchange_.upstream_reusable = false;
    std::string detail = fmt::format("upstream connect error: {}", reason);
    co_await send_local_reply(502, detail, Flag::kUpstreamConnectFailure);
    co_return false;
  }
  upstream.set_option(tcp::no_delay(true), ec);
  stats.upstream_cx_total.add();
  stats.upstream_cx_active.add();
  co_return true;
}

awaitable<Session::Outcome> Session::forward_once(const Endpoint& endpoint, bool allow_pooled) {
  using namespace asio::experimental::awaitable_operators;
  auto& stats = worker_.stats();
  auto& pool = worker_.pool();
  ++exchange_.attempts;
  exchange_.endpoint = &endpoint;
  exchange_.upstream_reusable = false;
  tcp::socket upstream(worker_.context());
  upstream_ = &upstream;
  bool reused = false;
  if (allow_pooled) {
    // A request that could not be retried on a fresh connection is worth one peek more.
    bool retryable = exchange_.body == http::BodyKind::kNone && request_is_idempotent();
    if (endpoint.id == Endpoint::kNotPooled) {
      if (captured_idle_ && connection_looks_open(*captured_idle_)) {
        upstream = std::move(*captured_idle_);
        reused = true;
        stats.upstream_rq_pool_reused.add();
      } else if (captured_idle_) {
        pool.discard(*captured_idle_);
      }
      captured_idle_.reset();
    } else if (auto pooled = pool.acquire(endpoint.id, worker_.now(), !retryable)) {
      upstream = std::move(*pooled);
      reused = true;
      stats.upstream_rq_pool_reused.add();
    }
  }
  if (!reused && !co_await connect(endpoint, upstream)) {
    upstream_ = nullptr;
    co_return Outcome::kFailed;
  }
  stats.upstream_rq_total.add();
  exchange_.upstream_sent = Clock::now();
  arm(Phase::kStreaming, config_.timeouts.stream_idle);
  auto route_timeout = exchange_.route->config->timeout;
  response_deadline_ =
      route_timeout.count() == 0 ? Clock::time_point::max() : Clock::now() + route_timeout;
  auto [ec, written] = co_await asio::async_write(upstream, asio::buffer(out_), kUse);
  Outcome outcome = Outcome::kFailed;
  if (ec) {
    if (reused && exchange_.body == http::BodyKind::kNone && request_is_idempotent() &&
        !timed_out_) {
      outcome = Outcome::kRetryFresh;
    } else if (timed_out_ == Phase::kAwaitResponse) {
      co_await send_local_reply(504, "upstream request timeout", Flag::kUpstreamTimeout);
    } else {
      std::string detail = fmt::format("upstream write failed: {}", ec.message());
      co_await send_local_reply(502, detail, Flag::kUpstreamReset);
    }
  } else if (exchange_.body == http::BodyKind::kNone) {
    // The ticker arms the client watch once this has waited a tick: fast requests never pay.
    awaiting_upstream_ = true;
    outcome = co_await relay_response(upstream, reused);
    awaiting_upstream_ = false;
    watching_client_ = false;
  } else {
    outcome = co_await (pump_request_body(upstream) && relay_and_stop_pump(upstream, reused));
  }
  upstream_ = nullptr;
  if (exchange_.upstream_reusable && exchange_.body_complete && !timed_out_ && !aborted_ &&
      endpoint.id == Endpoint::kNotPooled) {
    captured_idle_.emplace(std::move(upstream));
  } else if (exchange_.upstream_reusable && exchange_.body_complete && !timed_out_ && !aborted_) {
    pool.release(endpoint.id, std::move(upstream), worker_.now(),
                 static_cast<size_t>(
                     worker_.runtime().clusters[exchange_.cluster].config->max_idle_connections));
  } else {
    pool.discard(upstream);
  }
  co_return outcome;
}

awaitable<void> Session::pump_request_body(tcp::socket& upstream) {
  auto limit = config_.limits.max_request_body_bytes;
  uint64_t remaining = exchange_.body_length;
  bool chunked = exchange_.body == http::BodyKind::kChunked;
  bool upstream_open = true;
  auto stop_with = [&](Flag flag) {
    exchange_.flags |= flag_bit(flag);
    exchange_.abort_upstream_for_body = true;
    boost::system::error_code ignored;
    upstream.cancel(ignored);
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
        auto [ec, n] = co_await asio::async_write(upstream, asio::buffer(in_.data(), raw), kUse);
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
    auto [ec, n] = co_await socket_.async_read_some(
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
awaitable<Session::Outcome> Session::relay_and_stop_pump(tcp::socket& upstream, bool reused) {
  Outcome outcome = co_await relay_response(upstream, reused);
  if (!exchange_.body_complete) {
    exchange_.close_after = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    upstream.cancel(ignored);
  }
  co_return outcome;
}

awaitable<Session::Outcome> Session::relay_response(tcp::socket& upstream, bool reused) {
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
        co_await send_local_reply(504, "upstream request timeout", Flag::kUpstreamTimeout);
        co_return Outcome::kFailed;
      }
      if (timed_out_ == Phase::kStreaming) {
        // Nothing moved for stream_idle: a client stalled mid-body (408) or a silent upstream.
        if (exchange_.body_complete) {
          co_await send_local_reply(504, "no response within the stream idle timeout",
                                    Flag::kStreamIdleTimeout);
        } else {
          co_await send_local_reply(408, "request body stalled past the stream idle timeout",
                                    Flag::kStreamIdleTimeout);
        }
        co_return Outcome::kFailed;
      }
      if (!got_bytes && reused && exchange_.body == http::BodyKind::kNone &&
          request_is_idempotent() && !aborted_) {
        co_return Outcome::kRetryFresh;
      }
      std::string detail =
          fmt::format("upstream reset before response: {}",
                      ec == asio::error::eof ? std::string("connection closed") : ec.message());
      co_await send_local_reply(502, detail, Flag::kUpstreamReset);
      co_return Outcome::kFailed;
    }
    got_bytes = true;
    upstream_in_.commit(n);
  }

  response_deadline_ = Clock::time_point::max();
  const auto& head = response_parser_.head();
  exchange_.upstream_us = micros_between(exchange_.upstream_sent, Clock::now());
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
  auto [ec, n] = co_await asio::async_write(
      socket_, std::span<const asio::const_buffer>(buffers.data(), count), kUse);
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
awaitable<bool> Session::read_upstream(tcp::socket& upstream, bool& eof) {
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
awaitable<bool> Session::read_framed_body(tcp::socket& upstream) {
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

awaitable<bool> Session::relay_response_body(tcp::socket& upstream, bool chunk_encode,
                                             bool dechunk) {
  const auto& head = response_parser_.head();
  arm(Phase::kStreaming, config_.timeouts.stream_idle);
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

awaitable<void> Session::tunnel(tcp::socket& upstream) {
  using namespace asio::experimental::awaitable_operators;
  worker_.stats().upgrades_total.add();
  arm(Phase::kStreaming, config_.timeouts.stream_idle);
  if (!in_.empty()) {
    auto [ec, n] = co_await asio::async_write(upstream, asio::buffer(in_.data(), in_.size()), kUse);
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
  co_await (copy_bytes(socket_, upstream, in_, exchange_.bytes_received) &&
            copy_bytes(upstream, socket_, upstream_in_, exchange_.bytes_sent));
}

awaitable<void> Session::copy_bytes(tcp::socket& from, tcp::socket& to, core::Buffer& buffer,
                                    uint64_t& counter) {
  boost::system::error_code ignored;
  while (true) {
    buffer.clear();
    auto [read_error, n] = co_await from.async_read_some(
        asio::buffer(buffer.write_pointer(), buffer.write_space()), kUse);
    if (read_error == asio::error::eof) {
      to.shutdown(tcp::socket::shutdown_send, ignored);  // pass the half-close on
      co_return;
    }
    if (read_error) {
      from.cancel(ignored);
      to.cancel(ignored);
      co_return;
    }
    auto [write_error, written] =
        co_await asio::async_write(to, asio::buffer(buffer.data(), n), kUse);
    if (write_error) {
      from.cancel(ignored);
      to.cancel(ignored);
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
  auto [ec, n] =
      co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), kUse);
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
  auto listener_index = static_cast<size_t>(&listener_ - worker_.runtime().listeners.data());
  if (auto* route =
          stats.route(listener_index, exchange_.route ? exchange_.cluster : observe::kNoCluster)) {
    route->record(exchange_.status, duration_us, exchange_.upstream_us);
  }
  for (int i = 0; i < static_cast<int>(Flag::kCount); ++i) {
    if (exchange_.flags & (observe::Flags{1} << i)) {
      stats.flags[static_cast<size_t>(i)].add();
    }
  }
  observe::AccessLogEntry entry;
  entry.start = exchange_.start_wall;
  entry.request_id = exchange_.request_id_view;
  entry.method = exchange_.method;
  entry.path = exchange_.path;
  entry.protocol = exchange_.http10 ? "HTTP/1.0" : "HTTP/1.1";
  entry.client = client_address_;
  entry.upstream_host =
      exchange_.endpoint ? std::string_view(exchange_.endpoint->label) : std::string_view();
  entry.listener = listener_.config->name;
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
  bool inbound = listener_.config->mode == config::ListenerMode::kTransparentInbound;
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
    span.set(SpanText::kCluster, worker_.runtime().clusters[exchange_.cluster].config->name);
  }
  if (exchange_.flags != 0) {
    std::string flags;
    observe::append_flags(exchange_.flags, flags);
    span.set(SpanText::kResponseFlags, flags);
  }
  span.set(SpanText::kRequestId, exchange_.request_id_view);
  span.set(SpanText::kListener, listener_.config->name);
  observe::tracing::finish_span(span, std::chrono::microseconds(entry.duration_us),
                                exchange_.status);
  worker_.spans().add(std::move(span));
}

}  // namespace pillion::proxy
