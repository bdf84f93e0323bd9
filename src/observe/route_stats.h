#pragma once
// Per-(listener, cluster) request metrics. The label space is fixed at startup from the
// runtime's listeners and clusters, so a worker finds its slot by index: no lookup, no
// allocation on the request path.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "observe/counter.h"
#include "observe/histogram.h"

namespace pillion::observe {

enum class Direction : uint8_t { kOutbound, kInbound };

// Cluster index of a request that matched no route (label cluster="none").
inline constexpr size_t kNoCluster = static_cast<size_t>(-1);

struct MetricLayout {
  struct Listener {
    std::string name;
    Direction direction = Direction::kOutbound;
    // By cluster index: reachable from this listener (a route or the fallback). Reachable
    // pairs are exported even at zero, so rate() sees a series before its first request.
    std::vector<bool> reachable;
  };
  std::vector<Listener> listeners;
  std::vector<std::string> clusters;  // names by cluster index
  uint64_t config_version = 0;

  // One slot per listener x (clusters + "none").
  size_t slots() const { return listeners.size() * (clusters.size() + 1); }
  size_t slot(size_t listener, size_t cluster) const {
    return listener * (clusters.size() + 1) + (cluster == kNoCluster ? clusters.size() : cluster);
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
