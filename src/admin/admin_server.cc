#include "admin/admin_server.h"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <memory>
#include <set>

namespace pillion::admin {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

class AdminServer::Impl {
 public:
  Impl(asio::io_context& context, AdminHandler handler)
      : context_(context), acceptor_(context), handler_(std::move(handler)) {}

  bool start(const core::HostPort& address, std::string& error) {
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(address.host, ec);
    if (ec) {
      error = fmt::format("admin: {} is not an IP address", address.host);
      return false;
    }
    tcp::endpoint endpoint(ip, address.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
      acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
      acceptor_.listen(64, ec);
    }
    if (ec) {
      error = fmt::format("admin: cannot listen on {}: {}", address.to_string(), ec.message());
      return false;
    }
    asio::co_spawn(context_, accept_loop(), asio::detached);
    return true;
  }

  uint16_t port() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

  void stop() {
    boost::system::error_code ignored;
    // Kept-alive clients (Prometheus keeps its scrape connection) must not hold the process.
    for (tcp::socket* open : open_) {
      open->close(ignored);
    }
    acceptor_.close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    while (acceptor_.is_open()) {
      auto [ec, socket] = co_await acceptor_.async_accept(use);
      if (ec) {
        if (!acceptor_.is_open()) {
          break;
        }
        // Out of file descriptors: pause instead of spinning the main thread.
        asio::steady_timer backoff(context_);
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(use);
        continue;
      }
      if (open_.size() >= kMaxConnections) {
        continue;  // the socket closes here: scrapes and probes do not need more
      }
      asio::co_spawn(context_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    boost::beast::flat_buffer buffer(16 * 1024);
    // A slow or silent admin client must not keep its socket forever.
    open_.insert(&socket);
    // The flag outlives this frame: a watchdog completion already queued when serve() ends
    // must not touch the socket.
    auto serving = std::make_shared<bool>(true);
    asio::steady_timer watchdog(context_);
    watchdog.expires_after(std::chrono::seconds(30));
    watchdog.async_wait([&socket, serving](const boost::system::error_code& ec) {
      if (!ec && *serving) {
        boost::system::error_code ignored;
        socket.close(ignored);
      }
    });
    while (true) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(64 * 1024);
      auto [ec, n] = co_await http::async_read(socket, buffer, parser, use);
      if (ec) {
        break;
      }
      auto& request = parser.get();
      std::string_view target(request.target().data(), request.target().size());
      auto query_at = target.find('?');
      auto path = target.substr(0, query_at);
      auto query =
          query_at == std::string_view::npos ? std::string_view{} : target.substr(query_at + 1);
      std::string_view method(request.method_string().data(), request.method_string().size());
      AdminResponse answer = call_handler(method, path, query);
      if (answer.deferred) {
        auto deferred = std::move(answer.deferred);
        answer = co_await deferred();
      }
      http::response<http::string_body> response{static_cast<http::status>(answer.status),
                                                 request.version()};
      response.set(http::field::content_type, answer.content_type);
      response.keep_alive(request.keep_alive());
      // 1xx, 204 and 304 have no body (an app probe may pass such a status through).
      if (answer.status >= 200 && answer.status != 204 && answer.status != 304) {
        response.body() = std::move(answer.body);
      }
      response.prepare_payload();
      auto [write_error, written] = co_await http::async_write(socket, response, use);
      if (write_error || !response.keep_alive()) {
        break;
      }
    }
    *serving = false;
    watchdog.cancel();
    open_.erase(&socket);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    socket.close(ignored);
  }

  // Outside the coroutine (GCC 12 mis-diagnoses try/catch around co_await): an endpoint that
  // throws (e.g. JSON of a non-UTF-8 name) answers 500 instead of dropping the connection.
  AdminResponse call_handler(std::string_view method, std::string_view path,
                             std::string_view query) {
    try {
      AdminResponse answer = handler_(method, path, query);
      if (answer.status < 100 || answer.status > 599) {
        return {500, "text/plain; charset=utf-8", "bad status from an admin endpoint\n"};
      }
      return answer;
    } catch (const std::exception& error) {
      return {500, "text/plain; charset=utf-8", fmt::format("{}\n", error.what())};
    }
  }

  static constexpr size_t kMaxConnections = 256;

  asio::io_context& context_;
  tcp::acceptor acceptor_;
  AdminHandler handler_;
  std::set<tcp::socket*> open_;  // connections being served, closed by stop()
};

AdminServer::AdminServer(asio::io_context& context, AdminHandler handler)
    : impl_(std::make_unique<Impl>(context, std::move(handler))) {}
AdminServer::~AdminServer() = default;
bool AdminServer::start(const core::HostPort& address, std::string& error) {
  return impl_->start(address, error);
}
uint16_t AdminServer::port() const {
  return impl_->port();
}
void AdminServer::stop() {
  impl_->stop();
}

}  // namespace pillion::admin
