#include "logs/metrics_server.h"

#include <boost/asio.hpp>
#include <stdexcept>
#include <thread>

#include "core/address.h"

namespace pillion::logs {

namespace asio = boost::asio;
using asio::ip::tcp;

struct MetricsServer::Impl {
  explicit Impl(const Metrics& m) : metrics(m), acceptor(io) {}

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) {
          accept();
        }
        return;
      }
      serve(std::make_shared<tcp::socket>(std::move(socket)));
      accept();
    });
  }

  void serve(std::shared_ptr<tcp::socket> socket) {
    auto request = std::make_shared<std::string>();
    asio::async_read_until(*socket, asio::dynamic_buffer(*request, 16 * 1024), "\r\n\r\n",
                           [this, socket, request](boost::system::error_code ec, size_t) {
                             if (ec) {
                               return;
                             }
                             const std::string body = metrics.render();
                             auto response = std::make_shared<std::string>(
                                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                 "Connection: close\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body);
                             asio::async_write(
                                 *socket, asio::buffer(*response),
                                 [socket, response](boost::system::error_code, size_t) {
                                   boost::system::error_code ignored;
                                   socket->shutdown(tcp::socket::shutdown_both, ignored);
                                 });
                           });
  }

  const Metrics& metrics;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;
};

MetricsServer::MetricsServer(const std::string& address, const Metrics& metrics)
    : impl_(std::make_unique<Impl>(metrics)) {
  const auto hp = core::parse_host_port(address);
  if (!hp) {
    throw std::runtime_error("metrics address '" + address + "' is not host:port");
  }
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(hp->host, ec);
  if (ec) {
    throw std::runtime_error("metrics address '" + address + "': " + ec.message());
  }
  const tcp::endpoint endpoint(ip, hp->port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint, ec);
  if (ec) {
    throw std::runtime_error("metrics address " + address + ": " + ec.message());
  }
  acceptor.listen();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

MetricsServer::~MetricsServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
}

unsigned short MetricsServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace pillion::logs
