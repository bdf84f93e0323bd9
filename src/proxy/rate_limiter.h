#pragma once
// A route's local rate limit, shared by every worker without a lock: the generic cell rate
// algorithm (GCRA), the token bucket written as one "theoretical arrival time" updated by
// compare-and-swap. A request is admitted when it arrives no earlier than burst-1 intervals
// before that time; otherwise it is told how long to wait.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace pillion::proxy {

class RateLimiter {
 public:
  RateLimiter(double requests_per_second, uint32_t burst);

  // True when the request may go; else false with `retry_after` set to when it would.
  bool try_acquire(std::chrono::steady_clock::time_point now,
                   std::chrono::nanoseconds& retry_after);

 private:
  int64_t interval_ns_;   // 1 / rate
  int64_t tolerance_ns_;  // (burst - 1) intervals
  std::atomic<int64_t> arrival_ns_{0};
};

}  // namespace pillion::proxy
