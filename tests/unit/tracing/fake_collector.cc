#include "fake_collector.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace pillion::observe::tracing::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using nlohmann::json;

namespace {

std::vector<std::string> trace_ids_of(const json& body) {
  std::vector<std::string> ids;
  if (body.is_array()) {  // Zipkin
    for (const auto& span : body) {
      ids.push_back(span.at("traceId").get<std::string>());
    }
    return ids;
  }
  for (const auto& resource : body.at("resourceSpans")) {
    for (const auto& scope : resource.at("scopeSpans")) {
      for (const auto& span : scope.at("spans")) {
        ids.push_back(span.at("traceId").get<std::string>());
      }
    }
  }
  return ids;
}

}  // namespace

class FakeCollector::Server {
 public:
  Server(FakeCollector& owner, Mode mode) : owner_(owner), mode_(mode), acceptor_(context_) {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(context_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { context_.run(); });
  }

  ~Server() {
    context_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }

 private:
  asio::awaitable<void> accept_loop() {
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    while (true) {
      auto [ec, socket] = co_await acceptor_.async_accept(use);
      if (ec) {
        co_return;
      }
      owner_.count_connection();
      asio::co_spawn(context_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    boost::beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> request;
      auto [read_error, n] = co_await http::async_read(socket, buffer, request, use);
      if (read_error) {
        co_return;
      }
      owner_.count_request();
      if (mode_ == Mode::kHang) {
        asio::steady_timer forever(context_, std::chrono::hours(1));
        co_await forever.async_wait(use);
        co_return;
      }
      Post post;
      post.path = std::string(request.target());
      post.content_type = std::string(request[http::field::content_type]);
      post.body = json::parse(request.body());
      post.trace_ids = trace_ids_of(post.body);
      owner_.record(std::move(post));
      http::response<http::string_body> response{
          mode_ == Mode::kFail ? http::status::service_unavailable : http::status::ok, 11};
      response.body() = "{}";
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      auto [write_error, written] = co_await http::async_write(socket, response, use);
      if (write_error) {
        co_return;
      }
    }
  }

  FakeCollector& owner_;
  Mode mode_;
  asio::io_context context_{1};
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

FakeCollector::FakeCollector(Mode mode) : server_(std::make_unique<Server>(*this, mode)) {}

FakeCollector::~FakeCollector() = default;

std::string FakeCollector::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
}

void FakeCollector::record(Post post) {
  std::lock_guard lock(mutex_);
  spans_ += post.trace_ids.size();
  posts_.push_back(std::move(post));
  changed_.notify_all();
}

void FakeCollector::count_request() {
  std::lock_guard lock(mutex_);
  ++requests_;
  changed_.notify_all();
}

void FakeCollector::count_connection() {
  std::lock_guard lock(mutex_);
  ++connections_;
}

bool FakeCollector::wait_for_spans(size_t spans, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return spans_ >= spans; });
}

bool FakeCollector::wait_for_requests(size_t requests, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_ >= requests; });
}

std::vector<FakeCollector::Post> FakeCollector::posts() const {
  std::lock_guard lock(mutex_);
  return posts_;
}

std::multiset<std::string> FakeCollector::trace_ids() const {
  std::lock_guard lock(mutex_);
  std::multiset<std::string> ids;
  for (const auto& post : posts_) {
    ids.insert(post.trace_ids.begin(), post.trace_ids.end());
  }
  return ids;
}

size_t FakeCollector::connections() const {
  std::lock_guard lock(mutex_);
  return connections_;
}

}  // namespace pillion::observe::tracing::test
