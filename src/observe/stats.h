#pragma once
// Per-worker stats shards: each counter is written by one worker thread only (a relaxed load
// and store, no read-modify-write shared between threads) and summed when scraped.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "observe/counter.h"
#include "observe/flags.h"
#include "observe/route_stats.h"

namespace pillion::observe {

class Exposition;

struct WorkerStats {
  WorkerStats() = default;
  explicit WorkerStats(const MetricLayout& layout)
      : listeners_(layout.listeners.size()),
        clusters_(layout.clusters.size()),
        routes_(layout.slots()) {}

  // The slot of a request on `listener` routed to `cluster` (kNoCluster: no route); null for
  // indices outside the layout, which the caller then does not count.
  RouteStats* route(size_t listener, size_t cluster) {
    if (listener >= listeners_ || (cluster != kNoCluster && cluster >= clusters_)) {
      return nullptr;
    }
    return &routes_[listener * (clusters_ + 1) + (cluster == kNoCluster ? clusters_ : cluster)];
  }
  const std::vector<RouteStats>& routes() const { return routes_; }

  Counter downstream_cx_total;
  Counter downstream_cx_active;  // gauge
  Counter downstream_rq_total;
  Counter downstream_rq_active;  // gauge
  Counter downstream_bytes_received;
  Counter downstream_bytes_sent;
  Counter upstream_cx_total;  // connections opened
  Counter upstream_cx_connect_fail;
  Counter upstream_cx_active;  // gauge, idle and busy
  Counter upstream_rq_total;
  Counter upstream_rq_pool_reused;  // requests sent on a pooled connection
  Counter upstream_rq_stale_retry;  // retried once on a fresh connection
  Counter upgrades_total;           // tunnels after 101
  Counter tcp_passthrough_total;    // captured connections passed through as opaque bytes
  Counter capture_refused_total;    // captured connections refused (not redirected, or a loop)
  std::array<Counter, static_cast<size_t>(Flag::kCount)> flags;

 private:
  size_t listeners_ = 0;
  size_t clusters_ = 0;
  std::vector<RouteStats> routes_;  // in MetricLayout::slot order
};

// Sum of all shards at one moment (not atomic across counters; each value is consistent).
struct StatsSnapshot {
  std::vector<std::pair<std::string, uint64_t>> counters;  // name -> value, stable order
};

class Stats {
 public:
  // `layout` fixes the labels of the per-route families (requests, durations).
  explicit Stats(int workers, MetricLayout layout = {});
  WorkerStats& worker(int index) { return *shards_[static_cast<size_t>(index)]; }
  StatsSnapshot snapshot() const;
  // Envoy-style "name: value" lines.
  std::string render_text() const;
  // Prometheus text exposition format 0.0.4.
  std::string render_prometheus() const;

  const MetricLayout& layout() const { return layout_; }

  Counter access_log_dropped;  // written by the access-log writer only
  // Spans exported and dropped, read from the span exporter when tracing export is on.
  std::function<std::pair<uint64_t, uint64_t>()> span_counts;

 private:
  void render_routes(Exposition& out) const;

  MetricLayout layout_;
  double start_time_seconds_ = 0;
  std::vector<std::unique_ptr<WorkerStats>> shards_;
};

}  // namespace pillion::observe
