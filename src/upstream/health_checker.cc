#include "upstream/health_checker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <set>

namespace pillion::upstream {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
// The status line must arrive within this many bytes; nothing after it is read.
constexpr size_t kMaxStatusLine = 8 * 1024;
constexpr size_t kReadChunk = 1024;
// How often the host set is looked at for hosts that came or went (at most; a shorter
// interval looks as often as it checks).
constexpr std::chrono::microseconds kMaxWatchPeriod = std::chrono::seconds(1);

std::string describe(const boost::system::error_code& error) {
  if (error == asio::error::connection_refused) {
    return "connect refused";
  }
  if (error == asio::error::eof) {
    return "closed without a response";
  }
  return error.message();
}

void log_unexpected(std::exception_ptr failure) {
  if (!failure) {
    return;
  }
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& error) {
    spdlog::error("bug: health check ended by exception: {}", error.what());
  } catch (...) {
    spdlog::error("bug: health check ended by an unknown exception");
  }
}

}  // namespace

std::optional<int> parse_status_line(std::string_view head) {
  // "HTTP/1.1 200 OK": the version, one space, three digits, then a space or the line end.
  constexpr std::string_view kVersion = "HTTP/1.";
  if (head.size() < kVersion.size() + 5 || head.substr(0, kVersion.size()) != kVersion) {
    return std::nullopt;
  }
  size_t at = kVersion.size();
  if (head[at] < '0' || head[at] > '9' || head[at + 1] != ' ') {
    return std::nullopt;
  }
  at += 2;
  if (head.size() < at + 3) {
    return std::nullopt;
  }
  int status = 0;
  for (size_t i = at; i < at + 3; ++i) {
    if (head[i] < '0' || head[i] > '9') {
      return std::nullopt;
    }
    status = status * 10 + (head[i] - '0');
  }
  if (status < 100) {
    return std::nullopt;
  }
  if (head.size() > at + 3 && head[at + 3] != ' ' && head[at + 3] != '\r') {
    return std::nullopt;
  }
  return status;
}

struct HealthChecker::Target {
  Target(asio::io_context& context, HostPtr checked)
      : host(std::move(checked)), socket(context), deadline(context), pause(context) {}

  HostPtr host;
  uint32_t successes = 0;  // in a row
  uint32_t failures = 0;   // in a row
  bool gone = false;       // left the host set, or the checker stopped
  bool timed_out = false;
  // Of the check in flight: a deadline that fires late must not cut the next check short.
  uint64_t generation = 0;
  std::string error;     // of the check in flight; empty once its status line arrived
  std::string response;  // up to the end of the status line
  tcp::socket socket;
  asio::steady_timer deadline;  // the check's timeout
  asio::steady_timer pause;     // between checks
};

struct HealthChecker::Watch {
  explicit Watch(asio::io_context& context) : timer(context) {}
  asio::steady_timer timer;
  uint64_t seen_version = 0;  // 0: never looked
};

// The coroutines. Their bodies stay small (GCC 12 misreports some coroutine locals as
// mismatched new/delete): the decisions are plain functions.
struct HealthCheckLoops {
  using Target = HealthChecker::Target;
  using TargetPtr = HealthChecker::TargetPtr;

  // Connects, sends the request and reads until the end of the status line (or the bound).
  // On failure `target.error` says why; a timeout shows as an aborted operation.
  static asio::awaitable<void> exchange(Target& target, const std::string& request) {
    auto [connect_error] = co_await target.socket.async_connect(target.host->address(), kUse);
    if (connect_error) {
      target.error = describe(connect_error);
      co_return;
    }
    auto [write_error, written] =
        co_await asio::async_write(target.socket, asio::buffer(request), kUse);
    if (write_error) {
      target.error = describe(write_error);
      co_return;
    }
    while (needs_more(target.response)) {
      size_t had = target.response.size();
      target.response.resize(std::min(had + kReadChunk, kMaxStatusLine));
      auto [read_error, n] = co_await target.socket.async_read_some(
          asio::buffer(target.response.data() + had, target.response.size() - had), kUse);
      target.response.resize(had + n);
      if (read_error) {
        target.error = describe(read_error);
        co_return;
      }
    }
    target.error.clear();
  }

  static bool needs_more(const std::string& response) {
    return response.find("\r\n") == std::string::npos && response.size() < kMaxStatusLine;
  }

  static asio::awaitable<void> check_loop(std::shared_ptr<HealthChecker> self, TargetPtr target) {
    while (!target->gone) {
      begin(*self, target);
      co_await exchange(*target, self->request_);
      if (target->gone) {
        break;
      }
      finish(*self, *target);
      target->pause.expires_after(self->next_delay());
      co_await target->pause.async_wait(kUse);
    }
  }

  static asio::awaitable<void> watch_loop(std::shared_ptr<HealthChecker> self) {
    while (!self->stopped_) {
      self->sync_targets();
      self->watch_->timer.expires_after(watch_period(*self));
      co_await self->watch_->timer.async_wait(kUse);
    }
  }

  static std::chrono::microseconds watch_period(const HealthChecker& self) {
    return std::min(self.state_->config().health_check->interval, kMaxWatchPeriod);
  }

  static void begin(HealthChecker& self, const TargetPtr& target) {
    target->timed_out = false;
    target->error = "no status line";
    target->response.clear();
    uint64_t generation = ++target->generation;
    target->deadline.expires_after(self.state_->config().health_check->timeout);
    target->deadline.async_wait([target, generation](const boost::system::error_code& error) {
      if (!error && generation == target->generation) {
        target->timed_out = true;
        boost::system::error_code ignored;
        target->socket.close(ignored);
      }
    });
  }

  static void finish(HealthChecker& self, Target& target) {
    ++target.generation;
    target.deadline.cancel();
    boost::system::error_code ignored;
    target.socket.close(ignored);
    std::string why;
    bool passed = judge(target, why);
    self.record(target, passed, why);
  }

  static bool judge(const Target& target, std::string& why) {
    if (target.timed_out) {
      why = "timeout";
      return false;
    }
    if (!target.error.empty()) {
      why = target.error;
      return false;
    }
    if (target.response.find("\r\n") == std::string::npos) {
      why = "status line too long";
      return false;
    }
    auto status = parse_status_line(target.response);
    if (!status) {
      why = "not an HTTP response";
      return false;
    }
    if (*status < 200 || *status > 299) {
      why = fmt::format("status {}", *status);
      return false;
    }
    return true;
  }

  static void retire(Target& target) {
    target.gone = true;
    ++target.generation;
    target.deadline.cancel();
    target.pause.cancel();
    boost::system::error_code ignored;
    target.socket.close(ignored);
  }
};

HealthChecker::HealthChecker(asio::io_context& context, ClusterStatePtr state)
    : context_(context),
      state_(std::move(state)),
      watch_(std::make_unique<Watch>(context)),
      random_(std::random_device{}()) {
  const config::Cluster& cluster = state_->config();
  const config::HealthCheck& check = *cluster.health_check;
  request_ = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pillion-health-check\r\nConnection: "
      "close\r\n\r\n",
      check.path, check.host.empty() ? cluster.name : check.host);
}

HealthChecker::~HealthChecker() = default;

void HealthChecker::start() {
  asio::post(context_, [self = shared_from_this()] {
    if (self->started_ || self->stopped_) {
      return;
    }
    self->started_ = true;
    asio::co_spawn(self->context_, HealthCheckLoops::watch_loop(self), log_unexpected);
  });
}

void HealthChecker::stop() {
  asio::post(context_, [self = shared_from_this()] { self->stop_now(); });
}

void HealthChecker::stop_now() {
  stopped_ = true;
  watch_->timer.cancel();
  for (auto& [id, target] : targets_) {
    HealthCheckLoops::retire(*target);
  }
  targets_.clear();
}

void HealthChecker::sync_targets() {
  HostSetPtr set = state_->hosts();
  if (set->version == watch_->seen_version) {
    return;
  }
  watch_->seen_version = set->version;
  std::set<uint64_t> present;
  for (const HostPtr& host : set->hosts) {
    present.insert(host->id());
    if (targets_.contains(host->id())) {
      continue;
    }
    auto target = std::make_shared<Target>(context_, host);
    targets_.emplace(host->id(), target);
    asio::co_spawn(context_, HealthCheckLoops::check_loop(shared_from_this(), std::move(target)),
                   log_unexpected);
  }
  for (auto it = targets_.begin(); it != targets_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    HealthCheckLoops::retire(*it->second);
    it = targets_.erase(it);
  }
}

std::chrono::microseconds HealthChecker::next_delay() {
  // ±10 %: hosts that started together drift apart instead of being probed in lockstep.
  auto interval = state_->config().health_check->interval;
  std::uniform_real_distribution<double> spread(0.9, 1.1);
  return std::chrono::microseconds(
      static_cast<int64_t>(static_cast<double>(interval.count()) * spread(random_)));
}

void HealthChecker::record(Target& target, bool passed, const std::string& why) {
  const config::Cluster& cluster = state_->config();
  const config::HealthCheck& check = *cluster.health_check;
  Host& host = *target.host;
  if (passed) {
    state_->health_checks_passed.fetch_add(1, std::memory_order_relaxed);
    target.failures = 0;
    ++target.successes;
    if (target.successes >= check.healthy_threshold &&
        host.failed_active_check.load(std::memory_order_relaxed)) {
      host.failed_active_check.store(false, std::memory_order_relaxed);
      spdlog::info("cluster {}: host {} is healthy again ({} health checks passed in a row)",
                   cluster.name, host.label(), target.successes);
    }
    return;
  }
  state_->health_checks_failed.fetch_add(1, std::memory_order_relaxed);
  target.successes = 0;
  ++target.failures;
  if (target.failures >= check.unhealthy_threshold &&
      !host.failed_active_check.load(std::memory_order_relaxed)) {
    host.failed_active_check.store(true, std::memory_order_relaxed);
    spdlog::warn("cluster {}: host {} is unhealthy ({} health checks failed in a row): {}",
                 cluster.name, host.label(), target.failures, why);
  }
}

}  // namespace pillion::upstream
