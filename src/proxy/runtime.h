#pragma once
// The config snapshot with everything resolved that the data path needs: endpoint addresses,
// route -> cluster indices. Built once on the main thread; immutable and shared by workers.
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/schema.h"
#include "proxy/rate_limiter.h"
#include "tls/authorization.h"
#include "upstream/cluster_manager.h"
#include "upstream/cluster_state.h"

namespace re2 {
class RE2;
}

namespace pillion::proxy {

// Where a cluster's requests go.
enum class Destination : uint8_t {
  kEndpoints,            // the configured endpoints
  kOriginalDestination,  // where the captured connection was going (transparent outbound)
  kLocalApp,             // the app in this pod, at 127.0.0.1:<original port> (transparent inbound)
};

struct ClusterRuntime {
  const config::Cluster* config = nullptr;  // the state's own copy, or a built-in cluster
  upstream::ClusterStatePtr state;          // endpoints, breakers, health; null when built in
  Destination destination = Destination::kEndpoints;
  size_t index = 0;
  size_t stats_slot = static_cast<size_t>(-1);  // observe::Stats::cluster_slot (proxy/reload.h)
};

// A header condition of a route, its regex compiled once.
struct HeaderMatcher {
  const config::HeaderMatch* config = nullptr;
  std::shared_ptr<const re2::RE2> regex;
};

// What route matching reads first, inline in the route (the table is scanned in order): views
// into the config's strings and a method bit set; anything slower is flagged.
struct RouteKey {
  std::string_view host;  // "" any; exact (lower case not required); or ".suffix" for "*.suffix"
  bool host_suffix = false;
  bool slow_checks = false;  // a path regex, header conditions or an uncommon method
  uint16_t methods = 0;      // bit set of common methods (method_bit); 0: any
  std::string_view path;     // exact, or "" for none
  std::string_view prefix;   // or "" for none
};

struct RouteRuntime {
  RouteKey key;
  const config::Route* config = nullptr;
  size_t cluster = 0;  // the cluster, or the first of a weighted split
  // A traffic split: (cumulative weight, cluster), picked by a uniform draw below total_weight.
  std::vector<std::pair<uint32_t, size_t>> weighted;
  uint32_t total_weight = 0;
  std::shared_ptr<RateLimiter> rate_limiter;   // shared by the workers; null: no limit
  std::shared_ptr<const re2::RE2> path_regex;  // compiled match.path_regex, or null
  std::vector<HeaderMatcher> headers;
  std::shared_ptr<const tls::Authorization> authorization;  // null: no rules of its own
};

struct ListenerRuntime {
  const config::Listener* config = nullptr;
  std::vector<RouteRuntime> routes;
  // Transparent listeners: where a request that matches no route goes.
  std::optional<RouteRuntime> fallback;
  std::shared_ptr<const tls::Authorization> authorization;  // null: no rules
};

struct Runtime {
  config::SnapshotPtr config;
  // Keeps cluster state across reloads and runs health checks and DNS refreshes.
  std::shared_ptr<upstream::ClusterManager> cluster_manager;
  size_t workers = 1;
  std::vector<ClusterRuntime> clusters;
  std::vector<ListenerRuntime> listeners;
  // Built-in clusters and routes of transparent listeners (stable addresses for the pointers).
  std::vector<std::unique_ptr<config::Cluster>> builtin_clusters;
  std::vector<std::unique_ptr<config::Route>> builtin_routes;
};

using RuntimePtr = std::shared_ptr<const Runtime>;

// Resolves every endpoint (names again every dns_refresh, in the background); null with
// `error` on failure. `workers`: how many workers will share the runtime.
RuntimePtr build_runtime(config::SnapshotPtr config,
                         std::shared_ptr<upstream::ClusterManager> cluster_manager, size_t workers,
                         std::string& error);

}  // namespace pillion::proxy
