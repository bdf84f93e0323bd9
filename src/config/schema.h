#pragma once
// The typed, validated, immutable configuration snapshot. Plain data: no YAML types leak out.
// Defaults live here; docs/config.md documents every field.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/address.h"
#include "core/duration.h"

namespace pillion::config {

using namespace std::chrono_literals;
using core::Duration;
using core::HostPort;

struct Node {
  std::string id;
  std::string service;
};

enum class ListenerMode { kHttp };

struct Listener {
  std::string name;
  HostPort address;
  ListenerMode mode = ListenerMode::kHttp;
  std::string routes = "default";  // key into Snapshot::routes
};

struct RouteMatch {
  std::string host;         // empty: any; "*.example.com": suffix; else exact (port ignored)
  std::string path;         // exact path (without query); empty: not used
  std::string path_prefix;  // prefix; empty: not used (both empty matches every path)
};

struct Route {
  RouteMatch match;
  std::string cluster;
  Duration timeout = 15s;  // until the upstream's response head arrives; 0 disables
};

using RouteTable = std::vector<Route>;  // first match wins

struct Cluster {
  std::string name;
  std::vector<HostPort> endpoints;  // names resolved at startup
  Duration connect_timeout = 5s;
  int max_idle_connections = 64;  // per worker, per endpoint
  Duration idle_timeout = 60s;    // a pooled connection unused this long is closed
};

enum class AccessLogFormat { kText, kJson };

struct AccessLog {
  bool enabled = true;
  std::string path = "/dev/stdout";
  AccessLogFormat format = AccessLogFormat::kText;
};

struct Limits {
  uint64_t max_request_header_bytes = 60 * 1024;   // larger: 431
  uint64_t max_response_header_bytes = 60 * 1024;  // larger: 502
  uint64_t max_request_body_bytes = 0;             // larger: 413; 0 = unlimited
};

struct Timeouts {
  Duration request_headers = 10s;  // a client must send a whole request head within this
  Duration idle = 60s;             // a keep-alive connection with no request in flight
  Duration stream_idle = 300s;     // no byte either way while a request is in flight
  Duration drain = 5s;             // on SIGTERM: how long in-flight requests may finish
};

struct Tracing {
  double sampling = 0.01;  // fraction of new traces marked sampled
};

struct Snapshot {
  uint64_t version = 1;
  Node node;
  int workers = 0;  // 0: the container's CPU quota (core::default_worker_count)
  HostPort admin{"127.0.0.1", 9901};
  std::vector<Listener> listeners;
  std::map<std::string, RouteTable> routes;
  std::vector<Cluster> clusters;
  AccessLog access_log;
  Limits limits;
  Timeouts timeouts;
  Tracing tracing;

  const Cluster* find_cluster(const std::string& name) const {
    for (const auto& cluster : clusters) {
      if (cluster.name == name) {
        return &cluster;
      }
    }
    return nullptr;
  }
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace pillion::config
