#pragma once
// The typed, validated, immutable configuration snapshot. Plain data: no YAML types leak out.
// Defaults live here; docs/config.md documents every field.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
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

enum class ListenerMode {
  kHttp,                 // explicit: the app sends HTTP here
  kTransparentOutbound,  // iptables-redirected outbound TCP (SO_ORIGINAL_DST)
  kTransparentInbound,   // iptables-redirected inbound TCP, delivered to the local app
};

struct Listener {
  std::string name;
  HostPort address;
  ListenerMode mode = ListenerMode::kHttp;
  // Key into Snapshot::routes. Transparent listeners may have none: requests that match no
  // route go to the original destination (outbound) or to the local app (inbound).
  std::string routes = "default";
};

struct HeaderMatch {
  enum class Kind : uint8_t { kPresent, kAbsent, kExact, kPrefix, kRegex };
  std::string name;  // case-insensitive
  Kind kind = Kind::kPresent;
  std::string value;  // for exact, prefix and regex (RE2 syntax, whole value)
};

struct RouteMatch {
  std::string host;         // empty: any; "*.example.com": suffix; else exact (port ignored)
  std::string path;         // exact path (without query); empty: not used
  std::string path_prefix;  // prefix; empty: not used (both empty matches every path)
  std::string path_regex;   // RE2, must match the whole path; empty: not used
  std::vector<std::string> methods;  // any of these (upper case); empty: every method
  std::vector<HeaderMatch> headers;  // all of these
};

struct WeightedCluster {
  std::string name;
  uint32_t weight = 0;
};

// A route's local rate limit: a token bucket of `burst` requests refilled at `rate` per second,
// shared by all workers.
struct RateLimit {
  double requests_per_second = 0;
  uint32_t burst = 1;
};

// Fault injection, for users to test their resilience: a fixed delay and/or an aborted answer
// for a share of requests, or for the requests that ask (x-pillion-fault-delay-ms,
// x-pillion-fault-abort) when header_control is on.
struct Fault {
  Duration delay{0};
  double delay_percent = 0;
  int abort_status = 0;
  double abort_percent = 0;
  bool header_control = false;
};

struct Route {
  RouteMatch match;
  std::string cluster;  // or, for a traffic split, weighted_clusters (then this is empty)
  std::vector<WeightedCluster> weighted_clusters;
  std::optional<RateLimit> rate_limit;
  std::optional<Fault> fault;
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

// How transparent listeners treat what they capture (docs/transparent.md).
struct Transparent {
  // How long to wait for a client's first bytes before treating the connection as opaque TCP:
  // protocols where the server speaks first must not stall (linkerd's 10 s is the bad outcome).
  Duration detect_timeout = 100ms;
  // Destination ports whose protocol is server-first: passed through at once, no peeking.
  std::vector<uint16_t> server_first_ports{21, 22, 25, 110, 143, 465, 587, 993, 995, 3306, 4222};
  std::vector<uint16_t> opaque_ports;        // further ports always passed through as TCP
  std::string inbound_source = "127.0.0.6";  // the app sees inbound traffic from here
  Duration connect_timeout = 5s;
  Duration tcp_idle_timeout = 3600s;  // a passed-through connection with no byte either way
};

struct AppProbe {
  HostPort address;  // the app, normally 127.0.0.1:<port>
  std::string path = "/";
  Duration timeout = 1s;  // kubelet's default timeoutSeconds
};

// Propagation formats as a bit set (the values of http::PropagationFormat).
enum TraceFormatBits : uint8_t { kTraceW3c = 1, kTraceB3 = 2, kTraceB3Multi = 4 };

// Where finished spans go (docs/tracing.md). Off unless configured.
struct TraceExport {
  std::string endpoint;              // http://host:port[/path]
  bool zipkin = false;               // Zipkin v2 JSON instead of OTLP/HTTP JSON
  std::string service_name;          // resource service.name; empty: node.service, else "pillion"
  uint32_t batch_size = 512;         // spans per POST at most
  Duration flush_interval = 1s;      // a partial batch waits no longer than this
  uint32_t max_queued_spans = 8192;  // beyond this, spans are dropped and counted
};

struct Tracing {
  double sampling = 0.01;                                 // fraction of new traces marked sampled
  uint8_t accept = kTraceW3c | kTraceB3 | kTraceB3Multi;  // read from requests
  uint8_t emit = kTraceW3c;                               // written to the next hop
  std::optional<TraceExport> exporter;
};

struct Snapshot {
  uint64_t version = 1;
  Node node;
  int workers = 0;  // 0: the container's CPU quota (core::default_worker_count)
  HostPort admin{"127.0.0.1", 9901};
  // The admin API can drain and stop the proxy: a non-loopback address must be asked for.
  bool admin_allow_non_loopback = false;
  std::optional<HostPort> metrics;    // Prometheus only (/stats/prometheus); off when unset
  std::optional<HostPort> readiness;  // kubelet's /healthz/ready; off when unset
  // Readiness server: /app-health/<name> probes the app's own endpoint directly (never through
  // the data path), so kubelet's probe of the app still works when inbound is captured.
  std::map<std::string, AppProbe> app_probes;
  std::vector<Listener> listeners;
  std::map<std::string, RouteTable> routes;
  std::vector<Cluster> clusters;
  AccessLog access_log;
  Limits limits;
  Timeouts timeouts;
  Tracing tracing;
  Transparent transparent;

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
