#include "proxy/lifecycle.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <string>

namespace pillion::proxy {

using Clock = std::chrono::steady_clock;

Lifecycle::Lifecycle(boost::asio::io_context& context,
                     std::vector<std::unique_ptr<Worker>>& workers, core::Duration drain_time,
                     std::function<void()> on_stopped)
    : workers_(workers),
      drain_time_(drain_time),
      on_stopped_(std::move(on_stopped)),
      timer_(context) {}

void Lifecycle::drain(std::string_view why) {
  if (draining_) {
    stop_now(fmt::format("{} again while draining", why));
    return;
  }
  draining_ = true;
  spdlog::info("{}: draining: serving with Connection: close for {}, then closing listeners", why,
               core::format_duration(drain_time_));
  for (auto& worker : workers_) {
    worker->begin_drain();
  }
  timer_.expires_after(drain_time_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      close_listeners();
    }
  });
}

void Lifecycle::quit(std::string_view why) {
  // Posted: the caller (an admin request) still has its answer to send.
  boost::asio::post(timer_.get_executor(), [this, reason = std::string(why)] {
    if (listeners_closed_ || stopped_) {
      return;
    }
    spdlog::info("{}: closing listeners, finishing requests in flight", reason);
    draining_ = true;
    for (auto& worker : workers_) {
      worker->begin_drain();
    }
    timer_.cancel();
    close_listeners();
  });
}

void Lifecycle::stop_now(std::string_view why) {
  spdlog::warn("{}: stopping now", why);
  stop_workers();
}

void Lifecycle::close_listeners() {
  if (stopped_ || listeners_closed_) {
    return;
  }
  listeners_closed_ = true;
  for (auto& worker : workers_) {
    worker->stop_accepting();
  }
  in_flight_deadline_ = Clock::now() + drain_time_;
  check_drained();
}

void Lifecycle::check_drained() {
  if (stopped_) {
    return;
  }
  uint64_t active = 0;
  for (auto& worker : workers_) {
    active += worker->active_sessions();
  }
  if (active == 0 || Clock::now() >= in_flight_deadline_) {
    if (active > 0) {
      spdlog::warn("drain time over: closing {} connections", active);
    }
    stop_workers();
    return;
  }
  timer_.expires_after(std::chrono::milliseconds(20));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      check_drained();
    }
  });
}

void Lifecycle::stop_workers() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  timer_.cancel();
  for (auto& worker : workers_) {
    worker->stop();
  }
  on_stopped_();
}

}  // namespace pillion::proxy
