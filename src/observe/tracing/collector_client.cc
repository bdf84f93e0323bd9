#include "observe/tracing/collector_client.h"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>

namespace pillion::observe::tracing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

class CollectorClient::Impl {
 public:
  Impl(CollectorUrl url, std::chrono::milliseconds timeout)
      : url_(std::move(url)), timeout_(timeout), host_header_(url_.address.to_string()) {}

  bool post(std::string_view content_type, std::string body, std::string& error) {
    http::request<http::string_body> request{http::verb::post, url_.path, 11};
    request.set(http::field::host, host_header_);
    request.set(http::field::content_type, content_type);
    request.set(http::field::user_agent, "pillion/" PILLION_VERSION);
    request.body() = std::move(body);
    request.prepare_payload();

    bool reused = stream_.has_value();
    bool ok = run(exchange(request, error));
    if (!ok && reused && !answered_ && !timed_out_) {
      // The collector may have closed the idle connection: one more try on a fresh one. Not
      // after a timeout: a collector that hangs would cost a second full timeout.
      close();
      ok = run(exchange(request, error));
    }
    return ok;
  }

 private:
  // Runs one exchange to completion on this thread's private io_context.
  bool run(asio::awaitable<bool> work) {
    bool ok = false;
    asio::co_spawn(context_, std::move(work),
                   [&](std::exception_ptr failure, bool result) { ok = !failure && result; });
    context_.restart();
    context_.run();
    return ok;
  }

  asio::awaitable<bool> exchange(const http::request<http::string_body>& request,
                                 std::string& error) {
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    answered_ = false;
    timed_out_ = false;
    if (!stream_) {
      if (!co_await connect(error)) {
        co_return false;
      }
    }
    stream_->expires_after(timeout_);
    auto [write_error, written] = co_await http::async_write(*stream_, request, use);
    if (write_error) {
      error = fmt::format("cannot send to the collector: {}", describe(write_error));
      close();
      co_return false;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);  // we only look at the status
    stream_->expires_after(timeout_);
    auto [read_error, read] = co_await http::async_read(*stream_, buffer_, parser, use);
    if (read_error) {
      error = fmt::format("no answer from the collector: {}", describe(read_error));
      close();
      co_return false;
    }
    answered_ = true;
    const auto& response = parser.get();
    if (!response.keep_alive()) {
      close();
    }
    unsigned status = response.result_int();
    if (status < 200 || status >= 300) {
      error = fmt::format("collector answered status {}", status);
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> connect(std::string& error) {
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    // Resolved for every new connection, so a collector that moves is found again.
    tcp::resolver resolver(context_);
    auto [resolve_error, endpoints] =
        co_await resolver.async_resolve(url_.address.host, std::to_string(url_.address.port), use);
    if (resolve_error) {
      error = fmt::format("cannot resolve {}: {}", url_.address.host, resolve_error.message());
      co_return false;
    }
    stream_.emplace(context_);
    stream_->expires_after(timeout_);
    auto [connect_error, endpoint] = co_await stream_->async_connect(endpoints, use);
    if (connect_error) {
      error = fmt::format("cannot connect to {}: {}", host_header_, describe(connect_error));
      close();
      co_return false;
    }
    stream_->socket().set_option(tcp::no_delay(true));
    co_return true;
  }

  void close() {
    if (stream_) {
      beast::error_code ignored;
      stream_->socket().close(ignored);
      stream_.reset();
    }
    buffer_.clear();
  }

  std::string describe(const beast::error_code& code) {
    timed_out_ = code == beast::error::timeout;
    return timed_out_ ? fmt::format("timed out after {} ms", timeout_.count()) : code.message();
  }

  CollectorUrl url_;
  std::chrono::milliseconds timeout_;
  std::string host_header_;
  asio::io_context context_{1};
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  bool answered_ = false;   // the last exchange got a response head
  bool timed_out_ = false;  // the last exchange failed on a timeout
};

CollectorClient::CollectorClient(CollectorUrl url, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(url), timeout)) {}

CollectorClient::~CollectorClient() = default;

bool CollectorClient::post(std::string_view content_type, std::string body, std::string& error) {
  return impl_->post(content_type, std::move(body), error);
}

}  // namespace pillion::observe::tracing
