#include "bench/load.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace pillion::bench {
namespace {

using std::chrono::milliseconds;

TEST(Target, ParsesUrlsWithAndWithoutPath) {
  auto t = parse_target("http://127.0.0.1:8080");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->address.host, "127.0.0.1");
  EXPECT_EQ(t->address.port, 8080);
  EXPECT_EQ(t->path, "/");
  t = parse_target("http://localhost/a/b?c=d");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->address.port, 80);
  EXPECT_EQ(t->path, "/a/b?c=d");
  EXPECT_FALSE(parse_target("https://127.0.0.1/"));
  EXPECT_FALSE(parse_target("127.0.0.1:80"));
  EXPECT_FALSE(parse_target("http:///x"));
}

TEST(Target, RequestBytes) {
  LoadOptions options;
  options.headers = {"X-Test: 1"};
  auto request = build_request(*parse_target("http://127.0.0.1:8080/x"), options);
  EXPECT_EQ(request,
            "GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Test: 1\r\n"
            "User-Agent: pillion-bench\r\n\r\n");
  options.method = "HEAD";
  options.headers = {"host: example"};
  request = build_request(*parse_target("http://127.0.0.1/"), options);
  EXPECT_EQ(request, "HEAD / HTTP/1.1\r\nhost: example\r\nUser-Agent: pillion-bench\r\n\r\n");
}

// A one-connection server on a loopback port: answers each request, the first after `stall`.
class StallingServer {
 public:
  explicit StallingServer(milliseconds stall) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(listener_, 8), 0);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, stall] { serve(stall); });
  }
  ~StallingServer() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }

 private:
  void serve(milliseconds stall) {
    int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) {
      return;
    }
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    std::string pending;
    char buf[4096];
    bool first = true;
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      pending.append(buf, static_cast<size_t>(n));
      size_t end;
      while ((end = pending.find("\r\n\r\n")) != std::string::npos) {
        pending.erase(0, end + 4);
        if (first) {
          std::this_thread::sleep_for(stall);
          first = false;
        }
        if (::write(fd, response.data(), response.size()) < 0) {
          break;
        }
      }
    }
    ::close(fd);
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST(RunLoad, WaitingForABusyConnectionCounts) {
  StallingServer server(milliseconds(100));
  LoadOptions options;
  options.rate = 200;
  options.connections = 1;
  options.duration = milliseconds(500);
  auto result =
      run_load(*parse_target("http://127.0.0.1:" + std::to_string(server.port())), options);
  EXPECT_EQ(result.scheduled, 100u);
  EXPECT_EQ(result.completed, 100u);
  EXPECT_EQ(result.errors.total(), 0u);
  // Requests due during the 100 ms stall queue behind it; each one's wait is latency, so about
  // 18 of 100 exceed 10 ms and 10 exceed 50 ms. A closed-loop tool would report a single slow
  // request.
  EXPECT_GE(result.latency.max(), 90'000'000u);
  EXPECT_GE(result.latency.percentile(85), 10'000'000u);
  EXPECT_GE(result.latency.percentile(90), 40'000'000u);
  EXPECT_LT(result.latency.percentile(50), 10'000'000u);
}

TEST(RunLoad, RefusedPortCountsConnectErrors) {
  // Bind a port and close it again so nothing listens there.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  LoadOptions options;
  options.rate = 100;
  options.connections = 2;
  options.duration = milliseconds(200);
  auto result =
      run_load(*parse_target("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))), options);
  EXPECT_EQ(result.scheduled, 20u);
  EXPECT_EQ(result.errors.connect, 20u);
  EXPECT_EQ(result.completed, 0u);
  EXPECT_EQ(result.sent, 0u);
}

TEST(RunLoad, SilentServerCountsTimeoutsAndEnds) {
  // Listening but never accepting: the kernel completes handshakes, nobody ever answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len);
  ::listen(fd, 64);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  LoadOptions options;
  options.rate = 50;
  options.connections = 5;
  options.duration = milliseconds(400);
  options.timeout = milliseconds(100);
  auto started = std::chrono::steady_clock::now();
  auto result =
      run_load(*parse_target("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))), options);
  ::close(fd);
  EXPECT_EQ(result.scheduled, 20u);
  EXPECT_EQ(result.errors.timeout, 20u);
  EXPECT_EQ(result.completed, 0u);
  // Bounded by duration + timeout, not by the number of queued requests.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

}  // namespace
}  // namespace pillion::bench
