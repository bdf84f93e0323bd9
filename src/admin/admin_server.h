#pragma once
// A small HTTP/1.1 server for the admin API, on the main thread: never on the data path, so a
// busy or broken route cannot make it slow. It dispatches (method, path) to a handler.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/address.h"

namespace pillion::admin {

struct AdminResponse {
  AdminResponse() = default;
  AdminResponse(int status_code, std::string type, std::string text)
      : status(status_code), content_type(std::move(type)), body(std::move(text)) {}

  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // For answers that need I/O of their own (an app probe): the server awaits this instead of
  // using the fields above, so the main thread never blocks on it.
  std::function<boost::asio::awaitable<AdminResponse>()> deferred;
};

using AdminHandler = std::function<AdminResponse(std::string_view method, std::string_view path,
                                                 std::string_view query)>;

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& context, AdminHandler handler);
  ~AdminServer();
  // Binds and starts accepting; false with `error` set.
  bool start(const core::HostPort& address, std::string& error);
  uint16_t port() const;
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pillion::admin
