#include "proxy/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace pillion::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(RateLimiter, BurstThenOneEveryInterval) {
  RateLimiter limiter(10, 3);  // 10/s: one token every 100 ms, 3 at once
  auto t0 = Clock::time_point(1h);
  std::chrono::nanoseconds wait{};
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.try_acquire(t0, wait)) << i;
  }
  ASSERT_FALSE(limiter.try_acquire(t0, wait));
  EXPECT_EQ(wait, 100ms);
  EXPECT_FALSE(limiter.try_acquire(t0 + 99ms, wait));
  EXPECT_EQ(wait, 1ms);
  EXPECT_TRUE(limiter.try_acquire(t0 + 100ms, wait));
  EXPECT_FALSE(limiter.try_acquire(t0 + 100ms, wait));
  // Idle time refills the bucket, but never beyond the burst.
  auto later = t0 + 10s;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.try_acquire(later, wait)) << i;
  }
  EXPECT_FALSE(limiter.try_acquire(later, wait));
}

TEST(RateLimiter, ThreadsShareOneBucket) {
  RateLimiter limiter(1, 100);  // 100 at once, then one per second
  auto now = Clock::time_point(1h);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::chrono::nanoseconds wait{};
      for (int i = 0; i < 1000; ++i) {
        admitted += limiter.try_acquire(now, wait) ? 1 : 0;
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(admitted.load(), 100);
}

}  // namespace
}  // namespace pillion::proxy
