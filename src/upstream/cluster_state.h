#pragma once
// What one cluster shares across workers and across config reloads: its current endpoints,
// its circuit breakers and retry budget, its outlier detector, and counters of events off the
// request path (health-check results, DNS refreshes). A reload that leaves a cluster's config
// unchanged keeps its state, so health, ejections and pooled connections survive.
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include "config/schema.h"
#include "upstream/cluster_limits.h"
#include "upstream/host.h"
#include "upstream/outlier_detector.h"

namespace pillion::upstream {

class ClusterState {
 public:
  ClusterState(config::Cluster config, std::vector<HostPtr> hosts, size_t workers);

  const config::Cluster& config() const { return config_; }
  size_t workers() const { return workers_; }

  // Workers keep the set they last took and take it again only when the version moved.
  uint64_t hosts_version() const { return version_.load(std::memory_order_acquire); }
  HostSetPtr hosts() const;
  // A new endpoint set (DNS refresh); in-flight requests keep the hosts they hold.
  void publish(std::vector<HostPtr> hosts);

  ClusterLimits& limits() { return limits_; }
  OutlierDetector* outlier() { return outlier_ ? &*outlier_ : nullptr; }

  // Events off the request path.
  std::atomic<uint64_t> health_checks_passed{0};
  std::atomic<uint64_t> health_checks_failed{0};
  std::atomic<uint64_t> dns_refreshes{0};
  std::atomic<uint64_t> dns_failures{0};

 private:
  config::Cluster config_;
  size_t workers_;
  mutable std::mutex mutex_;
  HostSetPtr hosts_;
  std::atomic<uint64_t> version_{0};
  ClusterLimits limits_;
  std::optional<OutlierDetector> outlier_;
};

using ClusterStatePtr = std::shared_ptr<ClusterState>;

}  // namespace pillion::upstream
