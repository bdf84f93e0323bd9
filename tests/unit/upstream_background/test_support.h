#pragma once
// Shared by the background tests: a tiny HTTP server on 127.0.0.1 whose answer can be
// switched while it runs, a background io_context, and polling helpers.
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/schema.h"

namespace pillion::upstream::testing {

using namespace std::chrono_literals;

// Answers every connection with `response` (then closes), or, when silent, accepts and
// never answers.
class TestHttpServer {
 public:
  TestHttpServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listener_, 64);
    socklen_t length = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    set_status(200);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestHttpServer() {
    running_ = false;
    thread_.join();
    ::close(listener_);
    for (int fd : held_) {
      ::close(fd);
    }
  }

  uint16_t port() const { return port_; }
  void set_status(int status) {
    set_response("HTTP/1.1 " + std::to_string(status) +
                 " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  }
  void set_response(std::string response) {
    std::lock_guard lock(mutex_);
    response_ = std::move(response);
  }
  void set_silent(bool silent) { silent_ = silent; }
  int requests() const { return requests_; }
  std::string last_request() const {
    std::lock_guard lock(mutex_);
    return last_request_;
  }

 private:
  void serve() {
    while (running_) {
      pollfd poll_fd{listener_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 20) <= 0) {
        continue;
      }
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      ++requests_;
      if (silent_) {
        held_.push_back(fd);
        continue;
      }
      answer(fd);
      ::close(fd);
    }
  }

  void answer(int fd) {
    std::string request;
    char buffer[1024];
    while (request.find("\r\n\r\n") == std::string::npos) {
      pollfd poll_fd{fd, POLLIN, 0};
      if (::poll(&poll_fd, 1, 1000) <= 0) {
        return;
      }
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) {
        return;
      }
      request.append(buffer, static_cast<size_t>(n));
    }
    std::string response;
    {
      std::lock_guard lock(mutex_);
      last_request_ = request;
      response = response_;
    }
    ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> running_{true};
  std::atomic<bool> silent_{false};
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::string response_;
  std::string last_request_;
  std::vector<int> held_;  // silent connections, closed at the end
  std::thread thread_;
};

// A loopback port nothing listens on (bound, then closed).
inline uint16_t refused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// An io_context run by one thread until stop_and_join().
class Background {
 public:
  Background() : work_(context.get_executor()), thread_([this] { context.run(); }) {}
  ~Background() { stop_and_join(); }
  // Lets the loop end once its work is done; true when it did within `limit`.
  bool stop_and_join(std::chrono::milliseconds limit = 3000ms) {
    if (!thread_.joinable()) {
      return true;
    }
    work_.reset();
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!context.stopped() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    bool ended = context.stopped();
    context.stop();
    thread_.join();
    return ended;
  }

  boost::asio::io_context context;

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 3000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

inline config::ClusterEndpoint endpoint(std::string host, uint16_t port, uint32_t weight = 1) {
  return config::ClusterEndpoint{core::HostPort{std::move(host), port}, weight};
}

inline config::Cluster cluster(std::string name, std::vector<config::ClusterEndpoint> endpoints) {
  config::Cluster result;
  result.name = std::move(name);
  result.endpoints = std::move(endpoints);
  return result;
}

inline config::HealthCheck fast_health_check(uint32_t unhealthy = 2, uint32_t healthy = 2) {
  config::HealthCheck check;
  check.interval = 50ms;
  check.timeout = 150ms;
  check.unhealthy_threshold = unhealthy;
  check.healthy_threshold = healthy;
  return check;
}

}  // namespace pillion::upstream::testing
