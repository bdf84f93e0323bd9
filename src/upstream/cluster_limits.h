#pragma once
// A cluster's circuit breakers and retry budget, shared by all workers (like Envoy's resource
// manager: atomics, because a limit is only a limit if every worker counts against it).
// Hitting a limit is answered at once (503 UO); nothing waits in a queue.
#include <array>
#include <atomic>
#include <cstdint>

#include "config/schema.h"

namespace pillion::upstream {

class ClusterLimits {
 public:
  enum class Resource : uint8_t { kConnections, kPendingRequests, kRequests, kRetries, kCount };

  ClusterLimits(const config::CircuitBreakers& breakers, const config::RetryBudget& budget);

  // Takes one unit of `resource` unless it is at its limit (then counts an overflow).
  bool try_acquire(Resource resource);
  void release(Resource resource);
  // A retry may start: retries in flight stay under max_retries and within the budget
  // (max(min_concurrency, percent × active requests)). Takes one kRetries unit when true.
  bool try_acquire_retry();

  uint64_t in_use(Resource resource) const;
  uint64_t limit(Resource resource) const;
  uint64_t overflows(Resource resource) const;  // times a request was refused for it
  // Retries refused by the budget (not by max_retries).
  uint64_t budget_exhausted() const { return budget_exhausted_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kResources = static_cast<size_t>(Resource::kCount);
  std::array<uint64_t, kResources> limits_{};
  std::array<std::atomic<uint64_t>, kResources> in_use_{};
  std::array<std::atomic<uint64_t>, kResources> overflows_{};
  std::atomic<uint64_t> budget_exhausted_{0};
  double budget_fraction_;
  uint64_t budget_min_;
};

}  // namespace pillion::upstream
