#include "upstream/outlier_detector.h"

#include <algorithm>

namespace pillion::upstream {

OutlierDetector::OutlierDetector(const config::OutlierDetection& config) : config_(config) {}

bool OutlierDetector::report_failure(Host& host, const HostSet& set, Clock::time_point now) {
  uint32_t failures = host.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  // At or past the threshold: a run that went on while ejected, or that was refused by
  // max_ejection_percent, ejects at its next failure once that is possible.
  if (failures < std::max(config_.consecutive_failures, 1u)) {
    return false;
  }
  int64_t until = host.ejected_until.load(std::memory_order_relaxed);
  if (until > now.time_since_epoch().count()) {
    return false;
  }
  uint64_t ejected = 0;
  for (const auto& other : set.hosts) {
    ejected += other->ejected(now) ? 1 : 0;
  }
  uint64_t hosts = set.hosts.size();
  if (ejected != 0 && (ejected + 1) * 100 > uint64_t{config_.max_ejection_percent} * hosts) {
    overflow_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  uint32_t times = host.times_ejected.load(std::memory_order_relaxed) + 1;
  auto base = config_.base_ejection_time;
  auto cap = config_.max_ejection_time;
  // base × times, capped, without overflowing the multiplication for a long-lived host.
  auto duration = base.count() > 0 && times > cap.count() / base.count() ? cap : base * times;
  duration = std::min(duration, cap);
  int64_t new_until =
      now.time_since_epoch().count() +
      std::chrono::duration_cast<Clock::duration>(std::max(duration, decltype(duration){0}))
          .count();
  // Two workers may cross the threshold together: only the one that moves ejected_until ejects.
  if (!host.ejected_until.compare_exchange_strong(until, new_until, std::memory_order_relaxed)) {
    return false;
  }
  host.times_ejected.fetch_add(1, std::memory_order_relaxed);
  host.consecutive_failures.store(0, std::memory_order_relaxed);
  ejections_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void OutlierDetector::report_success(Host& host) {
  if (host.consecutive_failures.load(std::memory_order_relaxed) != 0) {
    host.consecutive_failures.store(0, std::memory_order_relaxed);
  }
}

}  // namespace pillion::upstream
