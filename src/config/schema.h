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

// Inbound TLS of a listener (docs/mtls.md): off; STRICT (mutual TLS required, plaintext
// refused); PERMISSIVE (mutual TLS and plaintext on the same port, told apart by peeking at the
// first bytes for a ClientHello).
enum class InboundTls : uint8_t { kDisabled, kPermissive, kStrict };

struct ListenerTls {
  InboundTls mode = InboundTls::kDisabled;
  // Transparent inbound: per original destination port, overriding `mode`.
  std::map<uint16_t, InboundTls> port_modes;
  bool operator==(const ListenerTls&) const = default;
};

// Which peers may call, by SPIFFE ID (exact, or a prefix ending in "/*", or "*"). Deny wins;
// an empty allow list allows every ID not denied. A plaintext peer has no ID: it is allowed
// only where no rule is set.
struct Authorization {
  std::vector<std::string> allow;
  std::vector<std::string> deny;
  bool operator==(const Authorization&) const = default;
};

struct Listener {
  std::string name;
  HostPort address;
  ListenerMode mode = ListenerMode::kHttp;
  ListenerTls tls;
  std::optional<Authorization> authorization;  // every request (and TCP connection) here
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

// When a failed attempt is tried again (docs/config.md, "Retries"). Conditions as a bit set.
enum RetryOnBits : uint8_t {
  kRetryOnConnectFailure = 1,         // connect refused, unreachable or timed out
  kRetryOnReset = 2,                  // the upstream reset or closed before a response head
  kRetryOn5xx = 4,                    // any 5xx answer, and connect failures and resets
  kRetryOnGatewayError = 8,           // 502, 503, 504
  kRetryOnRetriableStatusCodes = 16,  // the statuses in retriable_status_codes
};

struct RetryPolicy {
  uint8_t on = kRetryOnConnectFailure | kRetryOnReset;
  std::vector<int> retriable_status_codes;  // with retriable-status-codes (e.g. 409, 429)
  uint32_t attempts = 2;                    // tries in all, the first included
  Duration per_try_timeout{0};              // each try's wait for a response head; 0: none
  Duration backoff_base = 25ms;             // exponential with full jitter, as Envoy
  Duration backoff_max = 250ms;
  // A 429/503 with Retry-After is retried after that time if it is at most this long;
  // a longer ask is honoured by not retrying and passing the answer on.
  Duration retry_after_max = 10s;
  uint64_t buffer_limit = 64 * 1024;  // a request body larger than this is never replayed
  // Also replay non-idempotent methods (POST, PATCH). Without this, only requests with an
  // idempotent method or an Idempotency-Key header are replayed.
  bool replay_non_idempotent = false;
};

struct Route {
  RouteMatch match;
  std::string cluster;  // or, for a traffic split, weighted_clusters (then this is empty)
  std::vector<WeightedCluster> weighted_clusters;
  std::optional<RateLimit> rate_limit;
  std::optional<Fault> fault;
  std::optional<RetryPolicy> retry;
  std::optional<Authorization> authorization;  // in addition to the listener's
  Duration timeout = 15s;  // until the upstream's response head arrives, all tries; 0 disables
};

using RouteTable = std::vector<Route>;  // first match wins

enum class LbPolicy : uint8_t {
  kLeastRequest,  // power of two choices: the less busy of two weighted random picks
  kRoundRobin,    // smooth weighted round robin
  kRandom,        // weighted random
};

struct ClusterEndpoint {
  HostPort address;     // an IP or a DNS name (re-resolved every dns_refresh)
  uint32_t weight = 1;  // 1..1000
  bool operator==(const ClusterEndpoint&) const = default;
};

// Per-cluster limits (shared by all workers). Hitting one answers 503 with
// x-pillion-overloaded: true and flag UO at once: nothing queues without bound.
struct CircuitBreakers {
  uint32_t max_connections = 1024;       // open upstream connections
  uint32_t max_pending_requests = 1024;  // requests waiting for a new connection
  uint32_t max_requests = 1024;          // requests in flight
  uint32_t max_retries = 1024;           // retries in flight (the retry budget is tighter)
  bool operator==(const CircuitBreakers&) const = default;
};

// Retries may add at most `percent` of the cluster's active requests, and at least
// `min_concurrency` retries may always run.
struct RetryBudget {
  double percent = 20;
  uint32_t min_concurrency = 3;
  bool operator==(const RetryBudget&) const = default;
};

// Passive health: an endpoint that fails `consecutive_failures` times in a row (5xx answers,
// connect failures, resets, timeouts) is ejected for base_ejection_time × times ejected.
struct OutlierDetection {
  uint32_t consecutive_failures = 5;
  Duration base_ejection_time = 30s;
  Duration max_ejection_time = 300s;
  uint32_t max_ejection_percent = 10;  // never more of the cluster than this (at least one)
  bool operator==(const OutlierDetection&) const = default;
};

// Active health: GET `path` every `interval`; a 2xx within `timeout` is a success.
struct HealthCheck {
  std::string path = "/healthz";
  std::string host;  // Host header; empty: the cluster name
  Duration interval = 5s;
  Duration timeout = 1s;
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  bool operator==(const HealthCheck&) const = default;
};

// Mutual TLS to a cluster's endpoints with the workload identity (Snapshot::tls).
struct ClusterTls {
  std::string sni;                        // empty: the endpoint's configured host
  std::vector<std::string> expected_ids;  // SPIFFE ID patterns; empty: any of our trust domain
  bool operator==(const ClusterTls&) const = default;
};

struct Cluster {
  std::string name;
  std::vector<ClusterEndpoint> endpoints;
  LbPolicy lb_policy = LbPolicy::kLeastRequest;
  Duration dns_refresh = 5s;  // how often DNS names among the endpoints are resolved again
  Duration connect_timeout = 5s;
  int max_idle_connections = 64;  // per worker, per endpoint
  Duration idle_timeout = 60s;    // a pooled connection unused this long is closed
  CircuitBreakers circuit_breakers;
  RetryBudget retry_budget;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<HealthCheck> health_check;
  // Below this percentage of available endpoints, send to all of them (Envoy's panic mode).
  // 0: never; with none available the answer is 503 UH.
  uint32_t panic_threshold = 0;
  std::optional<ClusterTls> tls;  // originate mutual TLS
  bool operator==(const Cluster&) const = default;
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
  // Captured outbound HTTP goes to the destination's sidecar over mutual TLS (both pods run
  // pillion with certificates of one trust domain).
  std::optional<ClusterTls> outbound_tls;
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

// The workload's identity for mutual TLS: PEM files as cert-manager or SPIRE write them,
// watched and reloaded when they change (docs/mtls.md).
struct TlsIdentity {
  std::string cert;  // the certificate chain, leaf first (its one URI SAN is our SPIFFE ID)
  std::string key;
  std::string ca;               // the trust bundle
  Duration poll_interval = 1s;  // the fallback when inotify sees nothing
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
  std::optional<TlsIdentity> tls;

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
