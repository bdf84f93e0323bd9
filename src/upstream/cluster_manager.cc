#include "upstream/cluster_manager.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "upstream/dns_refresher.h"
#include "upstream/health_checker.h"

namespace pillion::upstream {

namespace asio = boost::asio;

namespace {

void clear_verdicts(const std::vector<HostPtr>& hosts) {
  for (const HostPtr& host : hosts) {
    host->failed_active_check.store(false, std::memory_order_relaxed);
  }
}

}  // namespace

struct ClusterManager::Running {
  ClusterStatePtr state;
  std::shared_ptr<HealthChecker> checker;   // null: no health_check
  std::shared_ptr<DnsRefresher> refresher;  // null: only IP literals

  void start() const {
    if (checker) {
      checker->start();
    }
    if (refresher) {
      refresher->start();
    }
  }
  void stop() const {
    if (checker) {
      checker->stop();
    }
    if (refresher) {
      refresher->stop();
    }
  }
};

ClusterManager::ClusterManager(size_t workers) : workers_(workers == 0 ? 1 : workers) {}

ClusterManager::~ClusterManager() {
  stop();
}

std::vector<ClusterStatePtr> ClusterManager::update(const config::Snapshot& snapshot,
                                                    std::string& error) {
  // Everything is built before anything changes: a name that does not resolve leaves the
  // running clusters as they were.
  std::map<std::string, std::shared_ptr<Running>> next;
  std::vector<std::shared_ptr<Running>> built;
  std::vector<HostPtr> unchecked;  // hosts of built clusters without health checks
  std::vector<ClusterStatePtr> states;
  states.reserve(snapshot.clusters.size());
  for (const config::Cluster& cluster : snapshot.clusters) {
    auto old = running_.find(cluster.name);
    if (old != running_.end() && old->second->state->config() == cluster) {
      next[cluster.name] = old->second;
      states.push_back(old->second->state);
      continue;
    }
    std::vector<HostPtr> previous;
    if (old != running_.end()) {
      previous = old->second->state->hosts()->hosts;
    }
    auto hosts = resolve_hosts(cluster, workers_, previous, error);
    if (!hosts) {
      return {};
    }
    auto running = std::make_shared<Running>();
    running->state = std::make_shared<ClusterState>(cluster, std::move(*hosts), workers_);
    if (cluster.health_check) {
      running->checker = std::make_shared<HealthChecker>(context_, running->state);
    } else {
      // Reused hosts may carry a verdict of the previous config's checker that nothing
      // would ever clear.
      const auto& built_hosts = running->state->hosts()->hosts;
      unchecked.insert(unchecked.end(), built_hosts.begin(), built_hosts.end());
    }
    if (has_dns_names(cluster)) {
      running->refresher = std::make_shared<DnsRefresher>(context_, running->state);
    }
    next[cluster.name] = running;
    built.push_back(running);
    states.push_back(running->state);
  }
  // Stops are posted before starts: a replaced checker lets go of shared hosts first.
  for (const auto& [name, running] : running_) {
    auto kept = next.find(name);
    if (kept == next.end() || kept->second != running) {
      running->stop();
    }
  }
  // Cleared now, and again once the stops above ran: a check of a replaced checker still in
  // flight could otherwise mark a host that nothing checks any more.
  clear_verdicts(unchecked);
  asio::post(context_, [unchecked = std::move(unchecked)] { clear_verdicts(unchecked); });
  for (const auto& running : built) {
    // (A name given twice, which validation rejects, keeps its last definition.)
    if (next[running->state->config().name] == running) {
      running->start();
    }
  }
  running_ = std::move(next);
  return states;
}

void ClusterManager::start() {
  if (started_) {
    return;
  }
  started_ = true;
  context_.restart();
  work_.emplace(context_.get_executor());
  thread_ = std::thread([this] {
    try {
      context_.run();
    } catch (const std::exception& failure) {
      spdlog::critical("cluster manager: event loop failed: {}", failure.what());
      std::abort();
    }
  });
}

void ClusterManager::stop() {
  if (!started_) {
    return;
  }
  started_ = false;
  for (const auto& [name, running] : running_) {
    running->stop();
  }
  // The stops close every connection and cancel every timer: the loop runs out of work and
  // the thread returns. Stopped checkers cannot start again: a later update() builds anew.
  running_.clear();
  work_.reset();
  thread_.join();
}

}  // namespace pillion::upstream
