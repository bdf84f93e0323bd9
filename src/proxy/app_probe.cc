#include "proxy/app_probe.h"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <string>

namespace pillion::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr const char* kText = "text/plain; charset=utf-8";

// Connects, sends the GET and reads up to the status line; the caller bounds it with a timer.
asio::awaitable<std::string> fetch_status_line(tcp::socket& socket, tcp::endpoint endpoint,
                                               const config::AppProbe& probe, std::string& error) {
  auto [connect_error] = co_await socket.async_connect(endpoint, kUse);
  if (connect_error) {
    error = connect_error.message();
    co_return std::string();
  }
  std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pillion-app-probe\r\nConnection: close\r\n\r\n",
      probe.path, probe.address.to_string());
  auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(request), kUse);
  if (write_error) {
    error = write_error.message();
    co_return std::string();
  }
  std::string response;
  char buffer[1024];
  while (response.find("\r\n") == std::string::npos && response.size() < 4096) {
    auto [read_error, n] = co_await socket.async_read_some(asio::buffer(buffer), kUse);
    if (read_error) {
      error = read_error == asio::error::eof ? "closed without a response" : read_error.message();
      co_return std::string();
    }
    response.append(buffer, n);
  }
  co_return response;
}

}  // namespace

asio::awaitable<admin::AdminResponse> probe_app(std::string_view name,
                                                const config::AppProbe& probe) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(probe.address.host, ec);
  if (ec) {
    co_return admin::AdminResponse{503, kText, fmt::format("app probe {}: bad address\n", name)};
  }
  tcp::socket socket(executor);
  asio::steady_timer timer(executor);
  timer.expires_after(probe.timeout);
  std::string error;
  auto outcome =
      co_await (fetch_status_line(socket, tcp::endpoint(ip, probe.address.port), probe, error) ||
                timer.async_wait(asio::use_awaitable));
  if (outcome.index() == 1) {
    co_return admin::AdminResponse{503, kText,
                                   fmt::format("app probe {}: no answer within {}\n", name,
                                               core::format_duration(probe.timeout))};
  }
  const std::string& line = std::get<0>(outcome);
  int status = 0;
  if (line.empty() || std::sscanf(line.c_str(), "HTTP/1.%*d %d", &status) != 1 || status < 100 ||
      status > 599) {
    co_return admin::AdminResponse{
        503, kText,
        fmt::format("app probe {}: {}\n", name, error.empty() ? "not an HTTP answer" : error)};
  }
  // The app's own code: kubelet judges it (200..399 is success).
  co_return admin::AdminResponse{status, kText, fmt::format("app probe {}: {}\n", name, status)};
}

}  // namespace pillion::proxy
