#include "logs/backoff.h"

#include <algorithm>
#include <random>
#include <thread>

namespace pillion::logs {

Millis backoff_delay(const RetryConfig& retry, uint64_t attempt) {
  const uint64_t shift = std::min<uint64_t>(attempt > 0 ? attempt - 1 : 0, 30);
  const auto base =
      std::min<int64_t>(retry.initial_backoff.count() << shift, retry.max_backoff.count());
  thread_local std::minstd_rand rng{std::random_device{}()};
  const int64_t half = base / 2;
  const int64_t jitter =
      half > 0 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(half + 1)) : 0;
  return Millis(base - half + jitter);
}

bool sleep_unless_stopped(Millis delay, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (!stop) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) {
      return true;
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(20)));
  }
  return false;
}

}  // namespace pillion::logs
