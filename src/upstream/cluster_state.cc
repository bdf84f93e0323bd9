#include "upstream/cluster_state.h"

namespace pillion::upstream {

ClusterState::ClusterState(config::Cluster config, std::vector<HostPtr> hosts, size_t workers)
    : config_(std::move(config)),
      workers_(workers),
      limits_(config_.circuit_breakers, config_.retry_budget) {
  if (config_.outlier_detection) {
    outlier_.emplace(*config_.outlier_detection);
  }
  publish(std::move(hosts));
}

HostSetPtr ClusterState::hosts() const {
  std::lock_guard lock(mutex_);
  return hosts_;
}

void ClusterState::publish(std::vector<HostPtr> hosts) {
  auto set = std::make_shared<HostSet>();
  set->hosts = std::move(hosts);
  std::lock_guard lock(mutex_);
  set->version = version_.load(std::memory_order_relaxed) + 1;
  hosts_ = std::move(set);
  version_.store(hosts_->version, std::memory_order_release);
}

}  // namespace pillion::upstream
