#include "upstream/cluster_limits.h"

#include <algorithm>
#include <cmath>

namespace pillion::upstream {

namespace {
size_t index(ClusterLimits::Resource resource) {
  return static_cast<size_t>(resource);
}
}  // namespace

ClusterLimits::ClusterLimits(const config::CircuitBreakers& breakers,
                             const config::RetryBudget& budget)
    : budget_fraction_(std::max(budget.percent, 0.0) / 100), budget_min_(budget.min_concurrency) {
  limits_[index(Resource::kConnections)] = breakers.max_connections;
  limits_[index(Resource::kPendingRequests)] = breakers.max_pending_requests;
  limits_[index(Resource::kRequests)] = breakers.max_requests;
  limits_[index(Resource::kRetries)] = breakers.max_retries;
}

// A compare-and-swap loop rather than add-then-undo: the count never passes the limit, even
// for a moment, so a concurrent reader never sees a refusal caused by someone else's undo.
bool ClusterLimits::try_acquire(Resource resource) {
  size_t i = index(resource);
  uint64_t current = in_use_[i].load(std::memory_order_relaxed);
  do {
    if (current >= limits_[i]) {
      overflows_[i].fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!in_use_[i].compare_exchange_weak(current, current + 1, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
  return true;
}

void ClusterLimits::release(Resource resource) {
  in_use_[index(resource)].fetch_sub(1, std::memory_order_acq_rel);
}

bool ClusterLimits::try_acquire_retry() {
  size_t i = index(Resource::kRetries);
  auto requests = static_cast<double>(in_use(Resource::kRequests));
  uint64_t budget =
      std::max(budget_min_, static_cast<uint64_t>(std::floor(budget_fraction_ * requests)));
  uint64_t current = in_use_[i].load(std::memory_order_relaxed);
  do {
    if (current >= limits_[i]) {
      overflows_[i].fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (current >= budget) {
      budget_exhausted_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!in_use_[i].compare_exchange_weak(current, current + 1, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
  return true;
}

uint64_t ClusterLimits::in_use(Resource resource) const {
  return in_use_[index(resource)].load(std::memory_order_relaxed);
}

uint64_t ClusterLimits::limit(Resource resource) const {
  return limits_[index(resource)];
}

uint64_t ClusterLimits::overflows(Resource resource) const {
  return overflows_[index(resource)].load(std::memory_order_relaxed);
}

}  // namespace pillion::upstream
