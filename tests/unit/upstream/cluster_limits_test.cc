#include "upstream/cluster_limits.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace pillion::upstream {
namespace {

using Resource = ClusterLimits::Resource;

config::CircuitBreakers breakers(uint32_t connections, uint32_t pending, uint32_t requests,
                                 uint32_t retries) {
  config::CircuitBreakers result;
  result.max_connections = connections;
  result.max_pending_requests = pending;
  result.max_requests = requests;
  result.max_retries = retries;
  return result;
}

config::RetryBudget budget(double percent, uint32_t min_concurrency) {
  config::RetryBudget result;
  result.percent = percent;
  result.min_concurrency = min_concurrency;
  return result;
}

TEST(ClusterLimits, EnforcesEachLimitExactly) {
  ClusterLimits limits(breakers(2, 3, 4, 5), budget(20, 3));
  EXPECT_EQ(limits.limit(Resource::kConnections), 2u);
  EXPECT_EQ(limits.limit(Resource::kPendingRequests), 3u);
  EXPECT_EQ(limits.limit(Resource::kRequests), 4u);
  EXPECT_EQ(limits.limit(Resource::kRetries), 5u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(limits.try_acquire(Resource::kConnections)) << i;
  }
  EXPECT_FALSE(limits.try_acquire(Resource::kConnections));
  EXPECT_FALSE(limits.try_acquire(Resource::kConnections));
  EXPECT_EQ(limits.in_use(Resource::kConnections), 2u);
  EXPECT_EQ(limits.overflows(Resource::kConnections), 2u);
  // Other resources are counted apart.
  EXPECT_EQ(limits.overflows(Resource::kRequests), 0u);
  EXPECT_TRUE(limits.try_acquire(Resource::kRequests));
  EXPECT_EQ(limits.in_use(Resource::kRequests), 1u);

  limits.release(Resource::kConnections);
  EXPECT_EQ(limits.in_use(Resource::kConnections), 1u);
  EXPECT_TRUE(limits.try_acquire(Resource::kConnections));
  EXPECT_FALSE(limits.try_acquire(Resource::kConnections));
  EXPECT_EQ(limits.overflows(Resource::kConnections), 3u);
}

TEST(ClusterLimits, ZeroLimitRefusesEverything) {
  ClusterLimits limits(breakers(0, 1, 1, 1), budget(20, 3));
  EXPECT_FALSE(limits.try_acquire(Resource::kConnections));
  EXPECT_EQ(limits.in_use(Resource::kConnections), 0u);
}

TEST(ClusterLimits, ConcurrentAcquireNeverPassesTheLimit) {
  constexpr uint32_t kLimit = 3;
  ClusterLimits limits(breakers(1, 1, kLimit, 1), budget(20, 3));
  std::atomic<uint64_t> max_seen{0};
  std::atomic<uint64_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!limits.try_acquire(Resource::kRequests)) {
          continue;
        }
        granted.fetch_add(1);
        uint64_t now = limits.in_use(Resource::kRequests);
        uint64_t seen = max_seen.load();
        while (now > seen && !max_seen.compare_exchange_weak(seen, now)) {
        }
        limits.release(Resource::kRequests);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_LE(max_seen.load(), kLimit);
  EXPECT_GT(granted.load(), 0u);
  EXPECT_EQ(limits.in_use(Resource::kRequests), 0u);
  EXPECT_EQ(granted.load() + limits.overflows(Resource::kRequests), 4u * 20000);
}

TEST(ClusterLimits, RetryBudgetIsAShareOfActiveRequests) {
  ClusterLimits limits(breakers(1000, 1000, 1000, 1000), budget(20, 3));
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(limits.try_acquire(Resource::kRequests));
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(limits.try_acquire_retry()) << i;
  }
  EXPECT_FALSE(limits.try_acquire_retry());
  EXPECT_EQ(limits.in_use(Resource::kRetries), 20u);
  EXPECT_EQ(limits.budget_exhausted(), 1u);
  EXPECT_EQ(limits.overflows(Resource::kRetries), 0u);
  // Finished retries free room in the budget.
  limits.release(Resource::kRetries);
  EXPECT_TRUE(limits.try_acquire_retry());
}

TEST(ClusterLimits, RetryBudgetRoundsDown) {
  ClusterLimits limits(breakers(1000, 1000, 1000, 1000), budget(20, 0));
  for (int i = 0; i < 19; ++i) {
    ASSERT_TRUE(limits.try_acquire(Resource::kRequests));
  }
  // 20% of 19 is 3.8: three retries.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limits.try_acquire_retry()) << i;
  }
  EXPECT_FALSE(limits.try_acquire_retry());
}

TEST(ClusterLimits, MinConcurrencyRetriesMayAlwaysRun) {
  ClusterLimits limits(breakers(1000, 1000, 1000, 1000), budget(20, 3));
  ASSERT_TRUE(limits.try_acquire(Resource::kRequests));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limits.try_acquire_retry()) << i;
  }
  EXPECT_FALSE(limits.try_acquire_retry());
  EXPECT_EQ(limits.budget_exhausted(), 1u);
}

TEST(ClusterLimits, MaxRetriesCapsTheBudget) {
  ClusterLimits limits(breakers(1000, 1000, 1000, 2), budget(50, 3));
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(limits.try_acquire(Resource::kRequests));
  }
  EXPECT_TRUE(limits.try_acquire_retry());
  EXPECT_TRUE(limits.try_acquire_retry());
  EXPECT_FALSE(limits.try_acquire_retry());
  EXPECT_EQ(limits.overflows(Resource::kRetries), 1u);
  EXPECT_EQ(limits.budget_exhausted(), 0u);
}

}  // namespace
}  // namespace pillion::upstream
