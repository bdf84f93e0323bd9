#pragma once
// Drain with one knob (timeouts.drain, "drain time" D), on the main thread:
//   1. drain(): readiness fails at once; listeners stay open for D (load balancers and kube-proxy
//      may still send new connections until they notice), and every HTTP/1.1 response carries
//      Connection: close so clients move away;
//   2. after D: listeners and idle connections close; requests in flight get up to D more;
//   3. the workers stop and the process exits 0.
// quit() skips stage 1 (for Jobs: the app is done, nobody will call in). A second signal during
// a drain stops at once.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/duration.h"
#include "proxy/worker.h"

namespace pillion::proxy {

class Lifecycle {
 public:
  Lifecycle(boost::asio::io_context& context, std::vector<std::unique_ptr<Worker>>& workers,
            core::Duration drain_time, std::function<void()> on_stopped);

  void drain(std::string_view why);
  void quit(std::string_view why);
  void stop_now(std::string_view why);

  // Readiness: false while draining or after POST /healthcheck/fail.
  bool ready() const { return !draining_ && !health_failed_; }
  bool draining() const { return draining_; }
  void set_health_failed(bool failed) { health_failed_ = failed; }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  void close_listeners();
  void check_drained();
  void stop_workers();

  std::vector<std::unique_ptr<Worker>>& workers_;
  core::Duration drain_time_;
  std::function<void()> on_stopped_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point in_flight_deadline_;
  bool draining_ = false;
  bool listeners_closed_ = false;
  bool stopped_ = false;
  bool health_failed_ = false;
};

}  // namespace pillion::proxy
