// `pillion wait`: blocks until the local proxy reports ready, so an app started after it (a
// postStart hook, or `pillion wait && exec app`) never sends traffic the proxy cannot carry yet.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "core/address.h"
#include "core/duration.h"

namespace pillion::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct WaitFlags {
  std::string url = "http://127.0.0.1:15021/healthz/ready";
  std::string timeout = "60s";
  std::string interval = "100ms";
};

struct Target {
  core::HostPort address;
  std::string path;
};

// "http://host:port/path": the address and the path (default "/").
bool parse_target(const std::string& url, Target& target) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    return false;
  }
  auto slash = url.find('/', kScheme.size());
  auto origin = url.substr(0, slash);
  auto address = core::parse_http_url(origin);
  if (!address) {
    return false;
  }
  target.address = *address;
  target.path = slash == std::string::npos ? "/" : url.substr(slash);
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool wait_for(int fd, short events, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  pollfd entry{fd, events, 0};
  return left.count() > 0 && ::poll(&entry, 1, static_cast<int>(left.count())) == 1;
}

// One GET with a deadline; returns the status code, or 0 with `why` set.
int probe(const Target& target, Clock::time_point deadline, std::string& why) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto port = std::to_string(target.address.port);
  if (int rc = ::getaddrinfo(target.address.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    why = ::gai_strerror(rc);
    return 0;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, ::freeaddrinfo);
  Fd fd(::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    why = std::strerror(errno);
    return 0;
  }
  if (::connect(fd.get(), found->ai_addr, found->ai_addrlen) != 0 && errno != EINPROGRESS) {
    why = std::strerror(errno);
    return 0;
  }
  int error = 0;
  socklen_t length = sizeof(error);
  if (!wait_for(fd.get(), POLLOUT, deadline) ||
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
    why = error != 0 ? std::strerror(error) : "connect timed out";
    return 0;
  }
  std::string request = "GET " + target.path + " HTTP/1.1\r\nHost: " + target.address.to_string() +
                        "\r\nConnection: close\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    why = "could not send the request";
    return 0;
  }
  std::string response;
  char buffer[512];
  while (response.find("\r\n") == std::string::npos && response.size() < 4096) {
    if (!wait_for(fd.get(), POLLIN, deadline)) {
      why = "no response in time";
      return 0;
    }
    ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n <= 0) {
      why = "connection closed without a response";
      return 0;
    }
    response.append(buffer, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  int status = 0;
  if (std::sscanf(response.c_str(), "HTTP/1.%*d %d", &status) != 1) {
    why = "not an HTTP response";
    return 0;
  }
  why = "status " + std::to_string(status);
  return status;
}

int run_wait(const WaitFlags& flags) {
  Target target;
  if (!parse_target(flags.url, target)) {
    std::fprintf(stderr, "pillion wait: --url: bad URL '%s' (want http://host:port/path)\n",
                 flags.url.c_str());
    return 2;
  }
  auto timeout = core::parse_duration(flags.timeout);
  auto interval = core::parse_duration(flags.interval);
  if (!timeout || !interval) {
    std::fprintf(stderr, "pillion wait: bad duration (want e.g. 60s, 100ms)\n");
    return 2;
  }
  auto started = Clock::now();
  auto deadline = started + *timeout;
  std::string why;
  while (true) {
    auto attempt_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(1));
    if (probe(target, attempt_deadline, why) == 200) {
      auto waited = std::chrono::duration<double>(Clock::now() - started).count();
      std::printf("pillion wait: %s is ready after %.1fs\n", flags.url.c_str(), waited);
      return 0;
    }
    if (Clock::now() + *interval >= deadline) {
      std::fprintf(stderr, "pillion wait: %s not ready after %s (last attempt: %s)\n",
                   flags.url.c_str(), flags.timeout.c_str(), why.c_str());
      return 1;
    }
    std::this_thread::sleep_for(*interval);
  }
}

}  // namespace

Command add_wait_command(CLI::App& app) {
  auto flags = std::make_shared<WaitFlags>();
  auto* sub = app.add_subcommand(
      "wait",
      "Block until the local proxy is ready (exit 0), or fail after --timeout (exit 1). Use it "
      "before the app starts: `pillion wait && exec app`, or as a postStart hook");
  sub->add_option("--url", flags->url, "Readiness URL to poll")->capture_default_str();
  sub->add_option("--timeout", flags->timeout, "Give up after this long")->capture_default_str();
  sub->add_option("--interval", flags->interval, "Pause between attempts")->capture_default_str();
  return {"wait", [flags] { return run_wait(*flags); }};
}

}  // namespace pillion::cli
