#include "proxy/tcp_relay.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <memory>

namespace pillion::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using observe::Flag;
using observe::flag_bit;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr size_t kRelayBuffer = 16 * 1024;

}  // namespace

TcpRelay::TcpRelay(Worker& worker, tcp::socket downstream, const ListenerRuntime& listener,
                   TcpDestination destination, std::string first_bytes, Clock::time_point accepted)
    : worker_(worker),
      downstream_(std::move(downstream)),
      upstream_(worker.context()),
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
  auto remote = downstream_.remote_endpoint(ec);
  if (!ec) {
    client_address_ = endpoint_label(remote);
  }
}

TcpRelay::~TcpRelay() {
  worker_.stats().downstream_cx_active.sub();
}

void TcpRelay::on_tick(Clock::time_point now) {
  if (now < deadline_) {
    return;
  }
  deadline_ = Clock::time_point::max();
  flags_ |= flag_bit(connecting_ ? Flag::kUpstreamConnectFailure : Flag::kStreamIdleTimeout);
  close_both();
}

void TcpRelay::abort() {
  flags_ |= flag_bit(Flag::kLocalReset);
  close_both();
}

void TcpRelay::close_both() {
  boost::system::error_code ignored;
  downstream_.close(ignored);
  upstream_.close(ignored);
}

awaitable<bool> TcpRelay::connect() {
  auto& stats = worker_.stats();
  boost::system::error_code ec;
  upstream_.open(destination_.address.protocol(), ec);
  if (!ec && destination_.source) {
    upstream_.bind(tcp::endpoint(*destination_.source, 0), ec);
  }
  if (!ec) {
    connecting_ = true;
    auto timeout = worker_.runtime().config->transparent.connect_timeout;
    deadline_ = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
    std::tie(ec) = co_await upstream_.async_connect(destination_.address, kUse);
    connecting_ = false;
  }
  if (ec) {
    stats.upstream_cx_connect_fail.add();
    flags_ |= flag_bit(Flag::kUpstreamConnectFailure);
    spdlog::debug("tcp passthrough to {}: {}", upstream_label_, ec.message());
    co_return false;
  }
  upstream_.set_option(tcp::no_delay(true), ec);
  stats.upstream_cx_total.add();
  co_return true;
}

awaitable<void> TcpRelay::copy(tcp::socket& from, tcp::socket& to, uint64_t& counter) {
  auto buffer = std::make_unique<char[]>(kRelayBuffer);
  auto idle = worker_.runtime().config->transparent.tcp_idle_timeout;
  while (true) {
    auto [read_error, n] =
        co_await from.async_read_some(asio::buffer(buffer.get(), kRelayBuffer), kUse);
    if (read_error) {
      // EOF: pass the half-close on so the other side can still answer; an error ends both.
      boost::system::error_code ignored;
      if (read_error == asio::error::eof) {
        to.shutdown(tcp::socket::shutdown_send, ignored);
      } else {
        close_both();
      }
      co_return;
    }
    if (idle.count() > 0) {
      deadline_ = Clock::now() + idle;
    }
    auto [write_error, written] =
        co_await asio::async_write(to, asio::buffer(buffer.get(), n), kUse);
    counter += written;
    if (write_error) {
      close_both();
      co_return;
    }
  }
}

awaitable<void> TcpRelay::run() {
  using namespace asio::experimental::awaitable_operators;
  if (co_await connect()) {
    auto idle = worker_.runtime().config->transparent.tcp_idle_timeout;
    deadline_ = idle.count() > 0 ? Clock::now() + idle : Clock::time_point::max();
    bool sent = true;
    if (!first_bytes_.empty()) {
      auto [ec, n] = co_await asio::async_write(upstream_, asio::buffer(first_bytes_), kUse);
      bytes_from_client_ += n;
      sent = !ec;
    }
    if (sent) {
      co_await (copy(downstream_, upstream_, bytes_from_client_) &&
                copy(upstream_, downstream_, bytes_to_client_));
    }
  }
  close_both();
  log_connection();
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
  entry.bytes_received = bytes_from_client_;
  entry.bytes_sent = bytes_to_client_;
  entry.duration_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
  entry.flags = flags_;
  worker_.access_log().log(entry);
}

}  // namespace pillion::proxy
