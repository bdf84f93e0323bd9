#pragma once
// Passive health checking (outlier detection): an endpoint that fails `consecutive_failures`
// tries in a row is ejected for base_ejection_time × times ejected (capped at
// max_ejection_time), unless that would eject more than max_ejection_percent of the cluster
// (one endpoint may always be ejected). An ejected endpoint returns by itself when its time is
// up. Called from any worker: state lives in the Host's atomics.
#include <atomic>
#include <cstdint>

#include "config/schema.h"
#include "upstream/host.h"

namespace pillion::upstream {

class OutlierDetector {
 public:
  explicit OutlierDetector(const config::OutlierDetection& config);

  // A try on `host` failed (5xx answer, connect failure, reset, timeout). Returns true when
  // this failure ejected the host.
  bool report_failure(Host& host, const HostSet& set, Clock::time_point now);
  // A try on `host` succeeded: its run of failures ends (no write when it was already 0).
  void report_success(Host& host);

  uint64_t ejections_total() const { return ejections_.load(std::memory_order_relaxed); }
  // Ejections skipped because max_ejection_percent of the cluster was already ejected.
  uint64_t ejections_overflow() const { return overflow_.load(std::memory_order_relaxed); }

 private:
  config::OutlierDetection config_;
  std::atomic<uint64_t> ejections_{0};
  std::atomic<uint64_t> overflow_{0};
};

}  // namespace pillion::upstream
