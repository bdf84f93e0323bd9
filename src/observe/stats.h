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
#include "observe/peer_ids.h"
#include "observe/route_stats.h"

namespace pillion::observe {

class Exposition;

struct WorkerStats {
  WorkerStats() = default;
  explicit WorkerStats(const MetricLayout& layout)
      : listeners_(layout.listeners.size()),
        clusters_(layout.capacity()),
        routes_(layout.slots()) {}

  // The slot of a request on `listener` routed to the cluster in slot `cluster`
  // (Stats::cluster_slot; kNoCluster: no route, kOtherCluster: beyond the reserve); null for
  // indices outside the layout, which the caller then does not count.
  RouteStats* route(size_t listener, size_t cluster) {
    if (listener >= listeners_ ||
        (cluster != kNoCluster && cluster != kOtherCluster && cluster >= clusters_)) {
      return nullptr;
    }
    size_t column = cluster == kNoCluster      ? clusters_ + 1
                    : cluster == kOtherCluster ? clusters_
                                               : cluster;
    return &routes_[listener * (clusters_ + 2) + column];
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
  Counter upstream_rq_pool_reused;            // requests sent on a pooled connection
  Counter upstream_rq_stale_retry;            // retried once on a fresh connection
  Counter upstream_rq_retry;                  // retries by a route's retry policy
  Counter upstream_rq_retry_overflow;         // retries refused by the cluster's retry budget
  Counter upstream_rq_overflow;               // requests refused by a circuit breaker (503 UO)
  Counter downstream_tls_handshakes;          // mutual TLS terminated
  Counter downstream_tls_handshake_failures;  // client handshakes that failed (bad cert, …)
  Counter downstream_tls_plaintext_refused;   // plaintext clients on a STRICT port
  Counter downstream_rq_denied;               // requests refused by authorization (403 AD)
  Counter upstream_tls_handshakes;            // mutual TLS originated
  Counter upstream_tls_handshake_failures;
  Counter upstream_tls_resumed;   // upstream handshakes that resumed a session
  Counter upgrades_total;         // tunnels after 101
  Counter tcp_passthrough_total;  // captured connections passed through as opaque bytes
  Counter capture_refused_total;  // captured connections refused (not redirected, or a loop)
  std::array<Counter, static_cast<size_t>(Flag::kCount)> flags;
  // Requests over mutual TLS by the client's SPIFFE ID slot (peer_ids; the last: "other").
  std::array<Counter, PeerIds::kMax + 1> peer_requests;
  PeerIds* peer_ids = nullptr;  // shared by the shards; owned by Stats

 private:
  size_t listeners_ = 0;
  size_t clusters_ = 0;             // cluster slots, fixed at construction
  std::vector<RouteStats> routes_;  // in MetricLayout::slot order
};

// Sum of all shards at one moment (not atomic across counters; each value is consistent).
struct StatsSnapshot {
  std::vector<std::pair<std::string, uint64_t>> counters;  // name -> value, stable order
};

class Stats {
 public:
  // Cluster slots reserved when the config at startup has fewer clusters than this.
  static constexpr size_t kDefaultClusterCapacity = 256;

  // `layout` fixes the listeners of the per-route families (requests, durations) and reserves
  // layout.capacity() cluster slots; its clusters take the first slots.
  explicit Stats(int workers, MetricLayout layout = {});
  WorkerStats& worker(int index) { return *shards_[static_cast<size_t>(index)]; }
  StatsSnapshot snapshot() const;
  // Envoy-style "name: value" lines.
  std::string render_text() const;
  // Prometheus text exposition format 0.0.4.
  std::string render_prometheus() const;

  const MetricLayout& layout() const { return layout_; }

  // Main thread only (the config is loaded and reloaded, and scrapes are served, there).
  // The slot of cluster `name`, the same for the life of the process; a new name takes the next
  // free slot, or kOtherCluster once the reserve is used up.
  size_t cluster_slot(const std::string& name);
  // Which cluster slots `listener` can reach under the config now in force (index capacity():
  // "other"). Series of clusters no longer reachable stay, frozen, once they have counted.
  void set_reachable(size_t listener, std::vector<bool> reachable);
  void set_config_version(uint64_t version) { layout_.config_version = version; }

  Counter config_reloads_ok;      // written on the main thread only
  Counter config_reloads_failed;  // written on the main thread only
  Counter access_log_dropped;     // written by the access-log writer only
  // Spans exported and dropped, read from the span exporter when tracing export is on.
  std::function<std::pair<uint64_t, uint64_t>()> span_counts;

 private:
  void render_routes(Exposition& out) const;

  MetricLayout layout_;
  PeerIds peer_ids_;
  double start_time_seconds_ = 0;
  std::vector<std::unique_ptr<WorkerStats>> shards_;
};

}  // namespace pillion::observe
