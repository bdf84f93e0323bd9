#include "proxy/rate_limiter.h"

#include <algorithm>

namespace pillion::proxy {

RateLimiter::RateLimiter(double requests_per_second, uint32_t burst)
    : interval_ns_(std::max<int64_t>(1, static_cast<int64_t>(1e9 / requests_per_second))),
      tolerance_ns_(interval_ns_ * static_cast<int64_t>(burst > 0 ? burst - 1 : 0)) {}

bool RateLimiter::try_acquire(std::chrono::steady_clock::time_point now,
                              std::chrono::nanoseconds& retry_after) {
  int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  int64_t arrival = arrival_ns_.load(std::memory_order_relaxed);
  while (true) {
    int64_t theoretical = std::max(arrival, now_ns);
    if (theoretical - now_ns > tolerance_ns_) {
      retry_after = std::chrono::nanoseconds(theoretical - tolerance_ns_ - now_ns);
      return false;
    }
    if (arrival_ns_.compare_exchange_weak(arrival, theoretical + interval_ns_,
                                          std::memory_order_relaxed)) {
      return true;
    }
  }
}

}  // namespace pillion::proxy
