#pragma once
// Per-(listener, cluster) request metrics. The slots are allocated at startup for the runtime's
// listeners and a reserve of clusters, so a worker finds its slot by index: no lookup, no
// allocation on the request path, and nothing moves when a reload adds a cluster.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "observe/counter.h"
#include "observe/histogram.h"

namespace pillion::observe {

enum class Direction : uint8_t { kOutbound, kInbound };

// Cluster slot of a request that matched no route (label cluster="none").
inline constexpr size_t kNoCluster = static_cast<size_t>(-1);
// Cluster slot of a cluster added by a reload once every reserved slot is taken
// (label cluster="other").
inline constexpr size_t kOtherCluster = static_cast<size_t>(-2);

// Clusters get a slot (a column) by name, for the life of the process: a cluster kept across a
// config reload keeps its series, a new one takes a free slot. Slots are reserved up front
// (`cluster_capacity`), so a reload never moves the counters a worker is writing.
struct MetricLayout {
  struct Listener {
    std::string name;
    Direction direction = Direction::kOutbound;
    // By cluster slot (index capacity(): "other"): reachable from this listener (a route or the
    // fallback). Reachable pairs are exported even at zero, so rate() sees a series before its
    // first request.
    std::vector<bool> reachable;
  };
  std::vector<Listener> listeners;
  std::vector<std::string> clusters;  // names by cluster slot, append-only
  uint64_t config_version = 0;
  size_t cluster_capacity = 0;  // cluster slots reserved; fewer than clusters.size(): that many

  size_t capacity() const { return std::max(cluster_capacity, clusters.size()); }
  // One slot per listener x (cluster slots + "other" + "none").
  size_t slots() const { return listeners.size() * (capacity() + 2); }
  size_t slot(size_t listener, size_t cluster) const {
    return listener * (capacity() + 2) + column(cluster);
  }
  size_t column(size_t cluster) const {
    return cluster == kNoCluster ? capacity() + 1 : cluster == kOtherCluster ? capacity() : cluster;
  }
};

struct RouteStats {
  std::array<Counter, 5> by_class;  // 1xx..5xx
  Histogram duration;               // downstream, first request byte to last response byte
  Histogram upstream;               // request sent upstream to response head

  // upstream_us < 0: no upstream response (a local reply).
  void record(int status, int64_t duration_us, int64_t upstream_us) {
    int status_class = status / 100;
    if (status_class >= 1 && status_class <= 5) {
      by_class[static_cast<size_t>(status_class - 1)].add();
    }
    duration.observe_us(duration_us);
    if (upstream_us >= 0) {
      upstream.observe_us(upstream_us);
    }
  }
};

const char* direction_label(Direction direction);

}  // namespace pillion::observe
