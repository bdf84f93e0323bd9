#pragma once
// Active health checking of one cluster: every `interval` each endpoint of the cluster's
// current host set gets `GET <path>` over a fresh TCP connection; a 2xx status line within
// `timeout` is a success. `unhealthy_threshold` failures in a row set the host's
// failed_active_check; `healthy_threshold` successes in a row clear it. Runs on the cluster
// manager's background io_context, never on a worker.
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "upstream/cluster_state.h"

namespace pillion::upstream {

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  // `state->config().health_check` must be set. The object must be owned by a shared_ptr
  // (start() and stop() take shared_from_this). `context` must be run by a single thread: all
  // of the checker's own state is touched only there.
  HealthChecker(boost::asio::io_context& context, ClusterStatePtr state);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Both may be called from any thread; they post into the context. start() checks every host
  // at once, then each on its own jittered schedule. stop() ends every check in flight (its
  // connection is closed) and leaves no pending handler that outlives the object.
  void start();
  void stop();

  const ClusterStatePtr& state() const { return state_; }

 private:
  friend struct HealthCheckLoops;  // the coroutines, in the .cc
  struct Target;                   // one host being checked
  using TargetPtr = std::shared_ptr<Target>;

  void sync_targets();
  void record(Target& target, bool passed, const std::string& why);
  std::chrono::microseconds next_delay();
  void stop_now();

  boost::asio::io_context& context_;
  ClusterStatePtr state_;
  std::string request_;  // the whole GET, built once
  bool started_ = false;
  bool stopped_ = false;
  std::map<uint64_t, TargetPtr> targets_;  // by Host::id
  struct Watch;  // the timer that notices hosts that came or went with DNS
  std::unique_ptr<Watch> watch_;
  std::mt19937_64 random_;
};

// The status code of an HTTP/1.x status line at the start of `head` ("HTTP/1.1 200 OK\r\n"),
// or nullopt when it is not one.
std::optional<int> parse_status_line(std::string_view head);

}  // namespace pillion::upstream
