#include "config/load.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

namespace pillion::config {
namespace {

using namespace std::chrono_literals;

// The full example of DESIGN.md §6, restricted to the keys supported so far.
constexpr const char* kFull = R"(node: { id: payments-7d9f, service: payments-service }
workers: auto
admin: { address: 127.0.0.1:9901 }
listeners:
  - { name: explicit, address: 127.0.0.1:7000, mode: http, routes: default }
  - { name: v6, address: "[::1]:7001", routes: api }
routes:
  default:
    - match: { host: payments-service, path_prefix: / }
      cluster: payments
      timeout: 2s
    - match: { host: "*.example.com", path: /healthz }
      cluster: checkout
  api:
    - cluster: checkout
      timeout: 0
clusters:
  - name: payments
    endpoints: [ "127.0.0.1:8080", "payments-service:8080" ]
    connect_timeout: 1s
    pool: { max_idle: 32, idle_timeout: 90s }
  - name: checkout
    endpoints: [ "[::1]:9090" ]
access_log: { path: /var/log/pillion.log, format: json }
limits: { max_request_header_bytes: 60KiB, max_response_header_bytes: 32KB, max_request_body_bytes: 10MiB }
timeouts: { request_headers: 11s, idle: 61s, stream_idle: 250ms, drain: 1m }
tracing: { sampling: 0.25 }
)";

// A small valid config that error cases start from.
constexpr const char* kMinimal = R"(listeners:
  - { name: l, address: 127.0.0.1:7000 }
routes:
  default:
    - cluster: c
clusters:
  - { name: c, endpoints: ["127.0.0.1:8080"] }
)";

// Field by field: clang warns on aggregates with members left out.
ClusterEndpoint endpoint(const char* host, uint16_t port, uint32_t weight = 1) {
  ClusterEndpoint out;
  out.address.host = host;
  out.address.port = port;
  out.weight = weight;
  return out;
}

std::string error_of(std::string_view yaml) {
  LoadResult result = load_yaml(yaml, "t.yaml");
  EXPECT_FALSE(result) << "unexpectedly loaded:\n" << yaml;
  EXPECT_EQ(result.error.find('\n'), std::string::npos) << result.error;
  return result.error;
}

TEST(LoadYaml, FullExampleSetsEveryField) {
  LoadResult result = load_yaml(kFull, "full.yaml");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& s = *result.snapshot;
  EXPECT_EQ(s.version, 1u);
  EXPECT_EQ(s.node.id, "payments-7d9f");
  EXPECT_EQ(s.node.service, "payments-service");
  EXPECT_EQ(s.workers, 0);
  EXPECT_EQ(s.admin, (HostPort{"127.0.0.1", 9901}));

  ASSERT_EQ(s.listeners.size(), 2u);
  EXPECT_EQ(s.listeners[0].name, "explicit");
  EXPECT_EQ(s.listeners[0].address, (HostPort{"127.0.0.1", 7000}));
  EXPECT_EQ(s.listeners[0].mode, ListenerMode::kHttp);
  EXPECT_EQ(s.listeners[0].routes, "default");
  EXPECT_EQ(s.listeners[1].name, "v6");
  EXPECT_EQ(s.listeners[1].address, (HostPort{"::1", 7001}));
  EXPECT_EQ(s.listeners[1].routes, "api");

  ASSERT_EQ(s.routes.size(), 2u);
  const RouteTable& table = s.routes.at("default");
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[0].match.host, "payments-service");
  EXPECT_EQ(table[0].match.path, "");
  EXPECT_EQ(table[0].match.path_prefix, "/");
  EXPECT_EQ(table[0].cluster, "payments");
  EXPECT_EQ(table[0].timeout, 2s);
  EXPECT_EQ(table[1].match.host, "*.example.com");
  EXPECT_EQ(table[1].match.path, "/healthz");
  EXPECT_EQ(table[1].match.path_prefix, "");
  EXPECT_EQ(table[1].cluster, "checkout");
  EXPECT_EQ(table[1].timeout, 15s);
  const RouteTable& api = s.routes.at("api");
  ASSERT_EQ(api.size(), 1u);
  EXPECT_EQ(api[0].match.host, "");
  EXPECT_EQ(api[0].cluster, "checkout");
  EXPECT_EQ(api[0].timeout, 0s);

  ASSERT_EQ(s.clusters.size(), 2u);
  const Cluster& payments = s.clusters[0];
  EXPECT_EQ(payments.name, "payments");
  ASSERT_EQ(payments.endpoints.size(), 2u);
  EXPECT_EQ(payments.endpoints[0], endpoint("127.0.0.1", 8080));
  EXPECT_EQ(payments.endpoints[1], endpoint("payments-service", 8080));
  EXPECT_EQ(payments.connect_timeout, 1s);
  EXPECT_EQ(payments.max_idle_connections, 32);
  EXPECT_EQ(payments.idle_timeout, 90s);
  const Cluster* checkout = s.find_cluster("checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->endpoints, std::vector<ClusterEndpoint>{endpoint("::1", 9090)});
  EXPECT_EQ(checkout->connect_timeout, 5s);
  EXPECT_EQ(checkout->max_idle_connections, 64);
  EXPECT_EQ(checkout->idle_timeout, 60s);

  EXPECT_TRUE(s.access_log.enabled);
  EXPECT_EQ(s.access_log.path, "/var/log/pillion.log");
  EXPECT_EQ(s.access_log.format, AccessLogFormat::kJson);
  EXPECT_EQ(s.limits.max_request_header_bytes, 60u * 1024);
  EXPECT_EQ(s.limits.max_response_header_bytes, 32u * 1000);
  EXPECT_EQ(s.limits.max_request_body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(s.timeouts.request_headers, 11s);
  EXPECT_EQ(s.timeouts.idle, 61s);
  EXPECT_EQ(s.timeouts.stream_idle, 250ms);
  EXPECT_EQ(s.timeouts.drain, 1min);
  EXPECT_DOUBLE_EQ(s.tracing.sampling, 0.25);
}

TEST(LoadYaml, MinimalConfigGetsDefaults) {
  LoadResult result = load_yaml(kMinimal, "min.yaml");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& s = *result.snapshot;
  Snapshot defaults;
  EXPECT_EQ(s.workers, 0);
  EXPECT_EQ(s.admin, defaults.admin);
  EXPECT_EQ(s.listeners[0].mode, ListenerMode::kHttp);
  EXPECT_EQ(s.listeners[0].routes, "default");
  EXPECT_EQ(s.routes.at("default")[0].timeout, 15s);
  EXPECT_TRUE(s.routes.at("default")[0].match.host.empty());
  EXPECT_TRUE(s.access_log.enabled);
  EXPECT_EQ(s.access_log.path, "/dev/stdout");
  EXPECT_EQ(s.access_log.format, AccessLogFormat::kText);
  EXPECT_EQ(s.limits.max_request_header_bytes, defaults.limits.max_request_header_bytes);
  EXPECT_EQ(s.limits.max_request_body_bytes, 0u);
  EXPECT_EQ(s.timeouts.request_headers, defaults.timeouts.request_headers);
  EXPECT_EQ(s.timeouts.drain, defaults.timeouts.drain);
  EXPECT_DOUBLE_EQ(s.tracing.sampling, 0.01);

  // Clusters and routes: the defaults of schema.h when the keys are left out.
  EXPECT_FALSE(s.routes.at("default")[0].retry);
  const Cluster& cluster = s.clusters.at(0);
  EXPECT_EQ(cluster.endpoints, std::vector<ClusterEndpoint>{endpoint("127.0.0.1", 8080, 1)});
  EXPECT_EQ(cluster.lb_policy, LbPolicy::kLeastRequest);
  EXPECT_EQ(cluster.dns_refresh, 5s);
  EXPECT_EQ(cluster.connect_timeout, 5s);
  EXPECT_EQ(cluster.circuit_breakers.max_connections, 1024u);
  EXPECT_EQ(cluster.circuit_breakers.max_pending_requests, 1024u);
  EXPECT_EQ(cluster.circuit_breakers.max_requests, 1024u);
  EXPECT_EQ(cluster.circuit_breakers.max_retries, 1024u);
  EXPECT_DOUBLE_EQ(cluster.retry_budget.percent, 20);
  EXPECT_EQ(cluster.retry_budget.min_concurrency, 3u);
  EXPECT_FALSE(cluster.outlier_detection);
  EXPECT_FALSE(cluster.health_check);
  EXPECT_EQ(cluster.panic_threshold, 0u);
}

// Every new cluster and route setting, as docs/config.md shows them.
constexpr const char* kResilience = R"(listeners: [ { name: l, address: 127.0.0.1:7000 } ]
clusters:
  - name: api
    endpoints:
      - 127.0.0.1:8080
      - { address: "api-2.internal:8080", weight: 3 }
      - address: "[::1]:8081"
    lb_policy: round_robin
    dns_refresh: 10s
    connect_timeout: 1s
    pool: { max_idle: 16, idle_timeout: 30s }
    circuit_breakers: { max_connections: 100, max_pending_requests: 200, max_requests: 300, max_retries: 4 }
    retry_budget: { percent: 12.5, min_concurrency: 0 }
    outlier_detection: { consecutive_failures: 7, base_ejection_time: 10s, max_ejection_time: 100s, max_ejection_percent: 50 }
    health_check: { path: "/healthz?deep=1", host: api.internal, interval: 3s, timeout: 3s, healthy_threshold: 1, unhealthy_threshold: 100 }
    panic_threshold: 50
  - { name: r, endpoints: [ "h:1" ], lb_policy: random }
  - { name: lr, endpoints: [ "h:1" ], lb_policy: least_request }
routes:
  default:
    - match: { path_prefix: / }
      cluster: api
      timeout: 15s
      retry:
        on: [connect-failure, reset, 5xx, gateway-error, retriable-status-codes]
        retriable_status_codes: [409, 429]
        attempts: 3
        per_try_timeout: 2s
        backoff: { base: 10ms, max: 1s }
        retry_after_max: 20s
        buffer_limit: 1MiB
        replay_non_idempotent: true
    - { cluster: api, retry: { on: [gateway-error], per_try_timeout: 0, buffer_limit: 0 } }
    - { cluster: api, retry: { buffer_limit: 64MiB, backoff: { base: 1s, max: 1s } } }
)";

TEST(Clusters, EverySettingIsRead) {
  LoadResult result = load_yaml(kResilience, "t.yaml");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& s = *result.snapshot;
  const Cluster& api = s.clusters.at(0);
  EXPECT_EQ(api.endpoints, (std::vector<ClusterEndpoint>{endpoint("127.0.0.1", 8080, 1),
                                                         endpoint("api-2.internal", 8080, 3),
                                                         endpoint("::1", 8081, 1)}));
  EXPECT_EQ(api.lb_policy, LbPolicy::kRoundRobin);
  EXPECT_EQ(api.dns_refresh, 10s);
  EXPECT_EQ(api.connect_timeout, 1s);
  EXPECT_EQ(api.max_idle_connections, 16);
  EXPECT_EQ(api.idle_timeout, 30s);
  EXPECT_EQ(api.circuit_breakers.max_connections, 100u);
  EXPECT_EQ(api.circuit_breakers.max_pending_requests, 200u);
  EXPECT_EQ(api.circuit_breakers.max_requests, 300u);
  EXPECT_EQ(api.circuit_breakers.max_retries, 4u);
  EXPECT_DOUBLE_EQ(api.retry_budget.percent, 12.5);
  EXPECT_EQ(api.retry_budget.min_concurrency, 0u);
  ASSERT_TRUE(api.outlier_detection);
  EXPECT_EQ(api.outlier_detection->consecutive_failures, 7u);
  EXPECT_EQ(api.outlier_detection->base_ejection_time, 10s);
  EXPECT_EQ(api.outlier_detection->max_ejection_time, 100s);
  EXPECT_EQ(api.outlier_detection->max_ejection_percent, 50u);
  ASSERT_TRUE(api.health_check);
  EXPECT_EQ(api.health_check->path, "/healthz?deep=1");
  EXPECT_EQ(api.health_check->host, "api.internal");
  EXPECT_EQ(api.health_check->interval, 3s);
  EXPECT_EQ(api.health_check->timeout, 3s);
  EXPECT_EQ(api.health_check->healthy_threshold, 1u);
  EXPECT_EQ(api.health_check->unhealthy_threshold, 100u);
  EXPECT_EQ(api.panic_threshold, 50u);
  EXPECT_EQ(s.clusters.at(1).lb_policy, LbPolicy::kRandom);
  EXPECT_EQ(s.clusters.at(2).lb_policy, LbPolicy::kLeastRequest);

  const RouteTable& table = s.routes.at("default");
  ASSERT_EQ(table.size(), 3u);
  ASSERT_TRUE(table[0].retry);
  const RetryPolicy& retry = *table[0].retry;
  EXPECT_EQ(retry.on, kRetryOnConnectFailure | kRetryOnReset | kRetryOn5xx | kRetryOnGatewayError |
                          kRetryOnRetriableStatusCodes);
  EXPECT_EQ(retry.retriable_status_codes, (std::vector<int>{409, 429}));
  EXPECT_EQ(retry.attempts, 3u);
  EXPECT_EQ(retry.per_try_timeout, 2s);
  EXPECT_EQ(retry.backoff_base, 10ms);
  EXPECT_EQ(retry.backoff_max, 1s);
  EXPECT_EQ(retry.retry_after_max, 20s);
  EXPECT_EQ(retry.buffer_limit, 1u << 20);
  EXPECT_TRUE(retry.replay_non_idempotent);
  EXPECT_EQ(table[0].timeout, 15s);

  ASSERT_TRUE(table[1].retry);
  EXPECT_EQ(table[1].retry->on, kRetryOnGatewayError);
  EXPECT_EQ(table[1].retry->per_try_timeout, 0s);
  EXPECT_EQ(table[1].retry->buffer_limit, 0u);
  EXPECT_EQ(table[1].retry->attempts, 2u);
  ASSERT_TRUE(table[2].retry);
  EXPECT_EQ(table[2].retry->buffer_limit, 64u << 20);
  EXPECT_EQ(table[2].retry->backoff_base, 1s);
  EXPECT_EQ(table[2].retry->backoff_max, 1s);
}

TEST(Clusters, EmptyMapsMeanAllDefaults) {
  LoadResult result = load_yaml(R"(listeners: [ { name: l, address: 127.0.0.1:7000 } ]
clusters:
  - { name: c, endpoints: [ { address: "h:1" } ], outlier_detection: {}, health_check: {},
      circuit_breakers: {}, retry_budget: {} }
routes: { default: [ { cluster: c, retry: {} } ] }
)",
                                "t.yaml");
  ASSERT_TRUE(result) << result.error;
  const Cluster& cluster = result.snapshot->clusters.at(0);
  EXPECT_EQ(cluster.endpoints, std::vector<ClusterEndpoint>{endpoint("h", 1, 1)});
  EXPECT_EQ(cluster.outlier_detection, OutlierDetection{});
  EXPECT_EQ(cluster.health_check, HealthCheck{});
  EXPECT_EQ(cluster.health_check->path, "/healthz");
  EXPECT_TRUE(cluster.health_check->host.empty());
  EXPECT_EQ(cluster.circuit_breakers, CircuitBreakers{});
  EXPECT_EQ(cluster.retry_budget, RetryBudget{});
  const auto& retry = result.snapshot->routes.at("default").at(0).retry;
  ASSERT_TRUE(retry);
  RetryPolicy defaults;
  EXPECT_EQ(retry->on, kRetryOnConnectFailure | kRetryOnReset);
  EXPECT_TRUE(retry->retriable_status_codes.empty());
  EXPECT_EQ(retry->attempts, defaults.attempts);
  EXPECT_EQ(retry->per_try_timeout, 0s);
  EXPECT_EQ(retry->backoff_base, 25ms);
  EXPECT_EQ(retry->backoff_max, 250ms);
  EXPECT_EQ(retry->retry_after_max, 10s);
  EXPECT_EQ(retry->buffer_limit, 64u * 1024);
  EXPECT_FALSE(retry->replay_non_idempotent);
}

TEST(LoadYaml, WorkersAndAccessLogOff) {
  std::string yaml = std::string(kMinimal) + "workers: 3\naccess_log: off\n";
  LoadResult result = load_yaml(yaml, "t.yaml");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->workers, 3);
  EXPECT_FALSE(result.snapshot->access_log.enabled);
}

TEST(LoadYaml, SizesAcceptPlainBytesAndSuffixes) {
  std::string yaml = std::string(kMinimal) +
                     "limits: { max_request_header_bytes: 1000, max_response_header_bytes: 1GiB, "
                     "max_request_body_bytes: 2MB }\n";
  LoadResult result = load_yaml(yaml, "t.yaml");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->limits.max_request_header_bytes, 1000u);
  EXPECT_EQ(result.snapshot->limits.max_response_header_bytes, 1ull << 30);
  EXPECT_EQ(result.snapshot->limits.max_request_body_bytes, 2000000u);
}

TEST(LoadYaml, ListenerPortZeroIsAllowed) {
  LoadResult result = load_yaml(R"(listeners: [ { name: l, address: "127.0.0.1:0" } ]
routes: { default: [ { cluster: c } ] }
clusters: [ { name: c, endpoints: [ "h:1" ] } ]
)",
                                "t.yaml");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->listeners[0].address.port, 0);
}

TEST(LoadYaml, ExampleFileLoads) {
  LoadResult result = load_file(PILLION_SOURCE_DIR "/examples/pillion.yaml");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& s = *result.snapshot;
  ASSERT_EQ(s.listeners.size(), 1u);
  EXPECT_EQ(s.listeners[0].address, (HostPort{"127.0.0.1", 7000}));
  const Route& route = s.routes.at(s.listeners[0].routes).at(0);
  const Cluster* cluster = s.find_cluster(route.cluster);
  ASSERT_NE(cluster, nullptr);
  EXPECT_EQ(cluster->endpoints, std::vector<ClusterEndpoint>{endpoint("127.0.0.1", 8080)});
}

TEST(LoadFile, MissingFile) {
  LoadResult result = load_file("/nonexistent/pillion.yaml");
  EXPECT_FALSE(result);
  EXPECT_EQ(result.error, "/nonexistent/pillion.yaml: cannot read: No such file or directory");
}

TEST(LoadFile, Directory) {
  EXPECT_EQ(load_file("/tmp").error, "/tmp: cannot read: Is a directory");
}

TEST(LoadFile, ErrorsNameTheFile) {
  char path[] = "/tmp/pillion_config_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "listeners: []\n";
  LoadResult result = load_file(path);
  std::remove(path);
  EXPECT_EQ(result.error, std::string(path) + ":1:12: listeners: required: at least one listener");
}

// Each case: the input, and the exact one-line error (file:line:col: key.path: what).
struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* error;
};

class LoadErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(LoadErrors, ReportsPositionAndKeyPath) {
  EXPECT_EQ(error_of(GetParam().yaml), GetParam().error);
}

const ErrorCase kErrorCases[] = {
    {"SyntaxError", "listeners: [\n  { name: l\n",
     "t.yaml:3:1: syntax error: end of map flow not found"},
    {"EmptyDocument", "", "t.yaml:1:1: (top level): expected a map, got nothing"},
    {"TopLevelList", "- a\n", "t.yaml:1:1: (top level): expected a map, got a list"},
    {"TwoDocuments", "a: 1\n---\nb: 2\n",
     "t.yaml:2:1: syntax error: expected one document, found more"},
    // yaml-cpp 0.7's LoadAll never returns on these.
    {"StrayComma", ", {", "t.yaml:1:1: syntax error: unexpected ','"},
    {"StrayCommaLine", "\n,\n", "t.yaml:2:1: syntax error: unexpected ','"},
    {"UnknownTopLevelKey", "listeners: []\negress_scope: [a]\n",
     "t.yaml:2:1: egress_scope: unknown key (expected one of: node, workers, admin, metrics, "
     "readiness, listeners, routes, clusters, access_log, limits, timeouts, tracing, transparent, "
     "tls)"},
    {"MissingListeners", "workers: 2\n", "t.yaml:1:1: listeners: required: at least one listener"},
    {"ListenersNotAList", "listeners: { a: 1 }\n",
     "t.yaml:1:12: listeners: expected a list, got a map"},
    {"ListenerNotAMap", "listeners:\n  - 127.0.0.1:80\n",
     "t.yaml:2:5: listeners[0]: expected a map, got a scalar"},
    {"UnknownListenerKey", "listeners:\n  - { name: l, address: 127.0.0.1:7000, mtls: true }\n",
     "t.yaml:2:41: listeners[0].mtls: unknown key (expected one of: name, address, mode, tls, "
     "authorization, routes)"},
    {"ListenerMissingAddress", "listeners:\n  - name: l\n",
     "t.yaml:2:5: listeners[0].address: required"},
    {"ListenerBadAddress", "listeners:\n  - { name: l, address: localhost }\n",
     "t.yaml:2:25: listeners[0].address: bad address 'localhost' (want host:port)"},
    {"ListenerPortOutOfRange", "listeners:\n  - { name: l, address: 127.0.0.1:70000 }\n",
     "t.yaml:2:25: listeners[0].address: port 70000 out of range in '127.0.0.1:70000' (0..65535)"},
    {"UnknownMode", "listeners:\n  - { name: o, address: 0.0.0.0:1, mode: tcp }\n",
     "t.yaml:2:42: listeners[0].mode: unknown mode 'tcp' (want http, transparent_outbound or "
     "transparent_inbound)"},
    {"TransparentBadPort",
     "listeners:\n  - { name: o, address: 0.0.0.0:1, mode: transparent_outbound }\n"
     "transparent: { opaque_ports: [6379, 0] }\n",
     "t.yaml:3:37: transparent.opaque_ports[1]: '0' out of range (1..65535)"},
    {"TransparentSourceNotLoopback",
     "listeners:\n  - { name: o, address: 0.0.0.0:1, mode: transparent_inbound }\n"
     "transparent: { inbound_source: 10.0.0.6 }\n",
     "t.yaml:3:32: transparent.inbound_source: expected a loopback IP address such as "
     "127.0.0.6, got '10.0.0.6'"},
    {"MetricsWithoutAddress", "listeners:\n  - { name: l, address: 0.0.0.0:1 }\nmetrics: {}\n",
     "t.yaml:3:10: metrics.address: required"},
    {"DuplicateListener",
     "listeners:\n  - { name: a, address: 0.0.0.0:1 }\n  - { name: a, address: 0.0.0.0:2 }\n",
     "t.yaml:3:13: listeners[1].name: duplicate listener name 'a'"},
    {"MissingRouteTable", "listeners:\n  - { name: a, address: 0.0.0.0:1 }\n",
     "t.yaml:2:5: listeners[0].routes: no route table named 'default'"},
    {"UnknownRouteTable",
     "listeners:\n  - { name: a, address: 0.0.0.0:1, routes: nope }\nroutes: { default: [] }\n",
     "t.yaml:2:44: listeners[0].routes: no route table named 'nope'"},
    {"RouteUnknownCluster",
     "listeners: [ { name: a, address: 0.0.0.0:1 } ]\nroutes:\n  default:\n    - cluster: c\n"
     "    - cluster: missing\n",
     "t.yaml:4:16: routes.default[0].cluster: no cluster named 'c'"},
    {"RouteMissingCluster", "listeners: []\nroutes:\n  default:\n    - match: { path: /x }\n",
     "t.yaml:4:7: routes.default[0].cluster: required"},
    {"RouteTableNotAList", "listeners: []\nroutes:\n  default: { cluster: c }\n",
     "t.yaml:3:12: routes.default: expected a list, got a map"},
    {"RouteBadHost", "listeners: []\nroutes:\n  default:\n    - match: { host: \"a.*.com\" }\n",
     "t.yaml:4:22: routes.default[0].match.host: bad host 'a.*.com' ('*' only as a leading '*.')"},
    {"RouteBadPath", "listeners: []\nroutes:\n  default:\n    - match: { path_prefix: api }\n",
     "t.yaml:4:29: routes.default[0].match.path_prefix: must start with '/', got 'api'"},
    {"RoutePathAndPrefix",
     "listeners: []\nroutes:\n  default:\n    - match: { path: /a, path_prefix: /b }\n",
     "t.yaml:4:39: routes.default[0].match.path_prefix: only one of path, path_prefix, path_regex"},
    {"RouteUnknownMatchKey", "listeners: []\nroutes:\n  default:\n    - match: { header: x }\n",
     "t.yaml:4:16: routes.default[0].match.header: unknown key (expected one of: host, path, "
     "path_prefix, path_regex, methods, headers)"},
    {"RouteBadRegex", "listeners: []\nroutes:\n  default:\n    - match: { path_regex: \"/a(\" }\n",
     "t.yaml:4:28: routes.default[0].match.path_regex: bad regex '/a(': missing ): /a("},
    {"RouteClusterAndSplit",
     "listeners: []\nroutes:\n  default:\n    - { cluster: a, weighted_clusters: [ { name: b, "
     "weight: 1 } ] }\n",
     "t.yaml:4:40: routes.default[0].weighted_clusters: give cluster or weighted_clusters, not "
     "both"},
    {"RouteSplitAllZero",
     "listeners: []\nroutes:\n  default:\n    - weighted_clusters: [ { name: b, weight: 0 } ]\n",
     "t.yaml:4:26: routes.default[0].weighted_clusters: weights must add up to more than 0"},
    {"RateLimitWithoutRate",
     "listeners: []\nroutes:\n  default:\n    - { cluster: c, rate_limit: { burst: 3 } }\n",
     "t.yaml:4:33: routes.default[0].rate_limit.requests_per_second: required"},
    {"FaultAbortWithoutStatus",
     "listeners: []\nroutes:\n  default:\n    - { cluster: c, fault: { abort: { percent: 5 } } }\n",
     "t.yaml:4:37: routes.default[0].fault.abort.status: required"},
    {"RouteLowerCaseMethod",
     "listeners: []\nroutes:\n  default:\n    - match: { methods: [GET, post] }\n",
     "t.yaml:4:31: routes.default[0].match.methods[1]: method 'post' must be upper-case letters"},
    {"RouteHeaderTwoKinds",
     "listeners: []\nroutes:\n  default:\n    - match: { headers: [ { name: a, exact: x, "
     "prefix: y } ] }\n",
     "t.yaml:4:27: routes.default[0].match.headers[0]: give one of present, absent, exact, prefix, "
     "regex"},
    {"NegativeTimeout", "listeners: []\nroutes:\n  default:\n    - { cluster: c, timeout: -1s }\n",
     "t.yaml:4:30: routes.default[0].timeout: duration '-1s' must not be negative"},
    {"BadDuration", "listeners: []\nroutes:\n  default:\n    - { cluster: c, timeout: 2 }\n",
     "t.yaml:4:30: routes.default[0].timeout: bad duration '2' (want e.g. 250ms, 2s, 1m)"},
    {"DurationIsAList", "listeners: []\ntimeouts: { idle: [1s] }\n",
     "t.yaml:2:19: timeouts.idle: expected a duration, got a list"},
    {"NullValue", "listeners: []\ntimeouts:\n  drain:\n",
     "t.yaml:3:3: timeouts.drain: expected a duration, got nothing"},
    {"EmptyEndpoints", "listeners: []\nclusters:\n  - { name: c, endpoints: [] }\n",
     "t.yaml:3:27: clusters[0].endpoints: must list at least one endpoint"},
    {"MissingEndpoints", "listeners: []\nclusters:\n  - name: c\n",
     "t.yaml:3:5: clusters[0].endpoints: required"},
    {"BadEndpoint",
     "listeners: []\nclusters:\n  - name: c\n    endpoints:\n      - 127.0.0.1:8080\n      - "
     "\"http://x\"\n",
     "t.yaml:6:9: clusters[0].endpoints[1]: bad address 'http://x' (want host:port)"},
    {"EndpointPortZero", "listeners: []\nclusters:\n  - { name: c, endpoints: [ \"h:0\" ] }\n",
     "t.yaml:3:29: clusters[0].endpoints[0]: port 0 in 'h:0' is not allowed here (1..65535)"},
    {"DuplicateCluster",
     "listeners: []\nclusters:\n  - { name: c, endpoints: [ \"h:1\" ] }\n  - { name: c, "
     "endpoints: [ \"h:2\" ] }\n",
     "t.yaml:4:13: clusters[1].name: duplicate cluster name 'c'"},
    {"ClusterNameNotString",
     "listeners: []\nclusters:\n  - { name: [c], endpoints: [ \"h:1\" ] }\n",
     "t.yaml:3:13: clusters[0].name: expected a string, got a list"},
    {"PoolUnknownKey",
     "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n    pool: { max: 3 }\n",
     "t.yaml:5:13: clusters[0].pool.max: unknown key (expected one of: max_idle, idle_timeout)"},
    {"PoolMaxIdleNegative",
     "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n    pool: { max_idle: -1 "
     "}\n",
     "t.yaml:5:23: clusters[0].pool.max_idle: '-1' out of range (0..65536)"},
// Cluster settings (CLUSTER_HEAD starts a cluster that a case adds one key to).
#define CLUSTER_HEAD "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n"
    {"EndpointWeightZero",
     "listeners: []\nclusters:\n  - name: c\n    endpoints:\n      - { address: \"h:1\", weight: 0 "
     "}\n",
     "t.yaml:5:35: clusters[0].endpoints[0].weight: '0' out of range (1..1000)"},
    {"EndpointWeightTooLarge",
     "listeners: []\nclusters:\n  - name: c\n    endpoints:\n      - h:1\n      - { address: "
     "\"h:2\", weight: 1001 }\n",
     "t.yaml:6:35: clusters[0].endpoints[1].weight: '1001' out of range (1..1000)"},
    {"EndpointMapWithoutAddress",
     "listeners: []\nclusters:\n  - name: c\n    endpoints:\n      - { weight: 2 }\n",
     "t.yaml:5:9: clusters[0].endpoints[0].address: required"},
    {"EndpointMapUnknownKey",
     "listeners: []\nclusters:\n  - name: c\n    endpoints:\n      - { address: \"h:1\", zone: a "
     "}\n",
     "t.yaml:5:27: clusters[0].endpoints[0].zone: unknown key (expected one of: address, weight)"},
    {"EndpointList", "listeners: []\nclusters:\n  - name: c\n    endpoints:\n      - [ \"h:1\" ]\n",
     "t.yaml:5:9: clusters[0].endpoints[0]: expected an address or a map {address, weight}, got a "
     "list"},
    {"EndpointMapBadAddress",
     "listeners: []\nclusters:\n  - name: c\n    endpoints:\n      - { address: \"h:0\" }\n",
     "t.yaml:5:20: clusters[0].endpoints[0].address: port 0 in 'h:0' is not allowed here "
     "(1..65535)"},
    {"ClusterUnknownKey", CLUSTER_HEAD "    zone: a\n",
     "t.yaml:5:5: clusters[0].zone: unknown key (expected one of: name, endpoints, lb_policy, "
     "dns_refresh, connect_timeout, pool, circuit_breakers, retry_budget, outlier_detection, "
     "health_check, panic_threshold, tls)"},
    {"UnknownLbPolicy", CLUSTER_HEAD "    lb_policy: maglev\n",
     "t.yaml:5:16: clusters[0].lb_policy: unknown lb_policy 'maglev' (want least_request, "
     "round_robin or random)"},
    {"DnsRefreshZero", CLUSTER_HEAD "    dns_refresh: 0\n",
     "t.yaml:5:18: clusters[0].dns_refresh: must be more than 0"},
    {"BreakerZero", CLUSTER_HEAD "    circuit_breakers: { max_requests: 0 }\n",
     "t.yaml:5:39: clusters[0].circuit_breakers.max_requests: '0' out of range (1..1000000)"},
    {"BreakerTooLarge", CLUSTER_HEAD "    circuit_breakers: { max_connections: 1000001 }\n",
     "t.yaml:5:42: clusters[0].circuit_breakers.max_connections: '1000001' out of range "
     "(1..1000000)"},
    {"BreakerUnknownKey", CLUSTER_HEAD "    circuit_breakers: { max_streams: 1 }\n",
     "t.yaml:5:25: clusters[0].circuit_breakers.max_streams: unknown key (expected one of: "
     "max_connections, max_pending_requests, max_requests, max_retries)"},
    {"RetryBudgetPercent", CLUSTER_HEAD "    retry_budget: { percent: 150 }\n",
     "t.yaml:5:30: clusters[0].retry_budget.percent: '150' out of range (0..100)"},
    {"RetryBudgetConcurrency", CLUSTER_HEAD "    retry_budget: { min_concurrency: -1 }\n",
     "t.yaml:5:38: clusters[0].retry_budget.min_concurrency: '-1' out of range (0..1000000)"},
    {"OutlierConsecutiveZero", CLUSTER_HEAD "    outlier_detection: { consecutive_failures: 0 }\n",
     "t.yaml:5:48: clusters[0].outlier_detection.consecutive_failures: '0' out of range "
     "(1..1000)"},
    {"OutlierPercent", CLUSTER_HEAD "    outlier_detection: { max_ejection_percent: 101 }\n",
     "t.yaml:5:48: clusters[0].outlier_detection.max_ejection_percent: '101' out of range "
     "(0..100)"},
    {"OutlierMaxBelowBase",
     CLUSTER_HEAD "    outlier_detection: { base_ejection_time: 30s, max_ejection_time: 10s }\n",
     "t.yaml:5:70: clusters[0].outlier_detection.max_ejection_time: max_ejection_time 10s is less "
     "than base_ejection_time 30s"},
    {"OutlierBaseAboveDefaultMax",
     CLUSTER_HEAD "    outlier_detection: { base_ejection_time: 10m }\n",
     "t.yaml:5:46: clusters[0].outlier_detection.base_ejection_time: base_ejection_time 600s is "
     "more than max_ejection_time 300s (the default): set max_ejection_time too"},
    {"OutlierNotAMap", CLUSTER_HEAD "    outlier_detection: on\n",
     "t.yaml:5:24: clusters[0].outlier_detection: expected a map, got a scalar"},
    {"HealthCheckPathNoSlash", CLUSTER_HEAD "    health_check: { path: healthz }\n",
     "t.yaml:5:27: clusters[0].health_check.path: must start with '/', got 'healthz'"},
    {"HealthCheckPathSpace", CLUSTER_HEAD "    health_check: { path: \"/a b\" }\n",
     "t.yaml:5:27: clusters[0].health_check.path: '/a b' must not contain spaces or control "
     "characters"},
    {"HealthCheckPathNewline", CLUSTER_HEAD "    health_check: { path: \"/a\\r\\nX: y\" }\n",
     "t.yaml:5:27: clusters[0].health_check.path: '/a\\r\\nX: y' must not contain spaces or "
     "control characters"},
    {"HealthCheckIntervalZero", CLUSTER_HEAD "    health_check: { interval: 0 }\n",
     "t.yaml:5:31: clusters[0].health_check.interval: must be more than 0"},
    {"HealthCheckTimeoutLongerThanInterval",
     CLUSTER_HEAD "    health_check: { interval: 1s, timeout: 2s }\n",
     "t.yaml:5:44: clusters[0].health_check.timeout: timeout 2s is longer than interval 1s"},
    {"HealthCheckIntervalBelowDefaultTimeout",
     CLUSTER_HEAD "    health_check: { interval: 500ms }\n",
     "t.yaml:5:31: clusters[0].health_check.interval: timeout 1s is longer than interval 500ms "
     "(timeout defaults to 1s)"},
    {"HealthCheckThreshold", CLUSTER_HEAD "    health_check: { unhealthy_threshold: 101 }\n",
     "t.yaml:5:42: clusters[0].health_check.unhealthy_threshold: '101' out of range (1..100)"},
    {"PanicThreshold", CLUSTER_HEAD "    panic_threshold: 101\n",
     "t.yaml:5:22: clusters[0].panic_threshold: '101' out of range (0..100)"},
#undef CLUSTER_HEAD
// Route retry policies (RETRY_HEAD starts a route that a case adds a retry map to).
#define RETRY_HEAD "listeners: []\nroutes:\n  default:\n    - cluster: c\n      retry:\n"
    {"RetryUnknownKey", RETRY_HEAD "        tries: 3\n",
     "t.yaml:6:9: routes.default[0].retry.tries: unknown key (expected one of: on, "
     "retriable_status_codes, attempts, per_try_timeout, backoff, retry_after_max, buffer_limit, "
     "replay_non_idempotent)"},
    {"RetryUnknownCondition", RETRY_HEAD "        on: [reset, 4xx]\n",
     "t.yaml:6:21: routes.default[0].retry.on[1]: unknown retry condition '4xx' (want one of: "
     "connect-failure, reset, 5xx, gateway-error, retriable-status-codes)"},
    {"RetryOnNotAList", RETRY_HEAD "        on: 5xx\n",
     "t.yaml:6:13: routes.default[0].retry.on: expected a list, got a scalar"},
    {"RetryOnEmpty", RETRY_HEAD "        on: []\n",
     "t.yaml:6:13: routes.default[0].retry.on: must list at least one condition (to never retry, "
     "set attempts: 1)"},
    {"RetryCodesWithoutCondition",
     RETRY_HEAD "        on: [5xx]\n        retriable_status_codes: [409]\n",
     "t.yaml:7:33: routes.default[0].retry.retriable_status_codes: add retriable-status-codes to "
     "retry.on, or these codes are never retried"},
    {"RetryConditionWithoutCodes", RETRY_HEAD "        on: [retriable-status-codes]\n",
     "t.yaml:6:9: routes.default[0].retry.retriable_status_codes: required: retry.on lists "
     "retriable-status-codes"},
    {"RetryStatusCodeOutOfRange",
     RETRY_HEAD
     "        on: [retriable-status-codes]\n        retriable_status_codes: [409, 600]\n",
     "t.yaml:7:39: routes.default[0].retry.retriable_status_codes[1]: '600' out of range "
     "(100..599)"},
    {"RetryAttemptsZero", RETRY_HEAD "        attempts: 0\n",
     "t.yaml:6:19: routes.default[0].retry.attempts: '0' out of range (1..10)"},
    {"RetryAttemptsEleven", RETRY_HEAD "        attempts: 11\n",
     "t.yaml:6:19: routes.default[0].retry.attempts: '11' out of range (1..10)"},
    {"RetryPerTryNegative", RETRY_HEAD "        per_try_timeout: -2s\n",
     "t.yaml:6:26: routes.default[0].retry.per_try_timeout: duration '-2s' must not be negative"},
    {"RetryBackoffBaseZero", RETRY_HEAD "        backoff: { base: 0 }\n",
     "t.yaml:6:26: routes.default[0].retry.backoff.base: must be more than 0"},
    {"RetryBackoffMaxBelowBase", RETRY_HEAD "        backoff: { base: 100ms, max: 50ms }\n",
     "t.yaml:6:38: routes.default[0].retry.backoff.max: max 50ms is less than base 100ms"},
    {"RetryBackoffBaseAboveDefaultMax", RETRY_HEAD "        backoff: { base: 1s }\n",
     "t.yaml:6:26: routes.default[0].retry.backoff.base: base 1s is more than max 250ms (the "
     "default): set max too"},
    {"RetryBackoffUnknownKey", RETRY_HEAD "        backoff: { jitter: 1 }\n",
     "t.yaml:6:20: routes.default[0].retry.backoff.jitter: unknown key (expected one of: base, "
     "max)"},
    {"RetryBufferLimitTooLarge", RETRY_HEAD "        buffer_limit: 65MiB\n",
     "t.yaml:6:23: routes.default[0].retry.buffer_limit: '65MiB' out of range (0..64MiB)"},
    {"RetryBufferLimitBad", RETRY_HEAD "        buffer_limit: lots\n",
     "t.yaml:6:23: routes.default[0].retry.buffer_limit: bad size 'lots' (want bytes, or e.g. "
     "64KiB, 10MiB, 1GB)"},
    {"RetryReplayNotBool", RETRY_HEAD "        replay_non_idempotent: yes\n",
     "t.yaml:6:32: routes.default[0].retry.replay_non_idempotent: expected true or false, got "
     "'yes'"},
    {"RetryNotAMap", "listeners: []\nroutes:\n  default:\n    - { cluster: c, retry: 3 }\n",
     "t.yaml:4:28: routes.default[0].retry: expected a map, got a scalar"},
#undef RETRY_HEAD
// Mutual TLS (TLS_HEAD: the workload identity; INBOUND_HEAD: a listener a case adds keys to).
#define TLS_HEAD "tls: { cert: c.pem, key: k.pem, ca: ca.pem }\n"
#define INBOUND_HEAD \
  "listeners:\n  - name: in\n    address: 0.0.0.0:15006\n    mode: transparent_inbound\n"
    {"ListenerTlsWithoutIdentity", INBOUND_HEAD "    tls: strict\n",
     "t.yaml:5:10: listeners[0].tls: needs the top-level tls: {cert, key, ca}"},
    {"ListenerPortModeWithoutIdentity", INBOUND_HEAD "    tls: { ports: { 8080: permissive } }\n",
     "t.yaml:5:10: listeners[0].tls: needs the top-level tls: {cert, key, ca}"},
    {"ClusterTlsWithoutIdentity",
     INBOUND_HEAD "clusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n    tls: {}\n",
     "t.yaml:8:10: clusters[0].tls: needs the top-level tls: {cert, key, ca}"},
    {"OutboundTlsWithoutIdentity", INBOUND_HEAD "transparent: { outbound_tls: {} }\n",
     "t.yaml:5:30: transparent.outbound_tls: needs the top-level tls: {cert, key, ca}"},
    {"FirstUseWithoutIdentityReported",
     "clusters:\n  - { name: c, endpoints: [ \"h:1\" ], tls: {} }\n" INBOUND_HEAD
     "    tls: strict\n",
     "t.yaml:2:43: clusters[0].tls: needs the top-level tls: {cert, key, ca}"},
    {"ListenerTlsBadMode", TLS_HEAD INBOUND_HEAD "    tls: mutual\n",
     "t.yaml:6:10: listeners[0].tls: unknown tls mode 'mutual' (want disable, permissive or "
     "strict)"},
    {"ListenerTlsModeCase", TLS_HEAD INBOUND_HEAD "    tls: { mode: STRICT }\n",
     "t.yaml:6:18: listeners[0].tls.mode: unknown tls mode 'STRICT' (want disable, permissive or "
     "strict)"},
    {"ListenerTlsList", TLS_HEAD INBOUND_HEAD "    tls: [strict]\n",
     "t.yaml:6:10: listeners[0].tls: expected disable, permissive, strict or a map {mode, ports}, "
     "got a list"},
    {"ListenerTlsNull", TLS_HEAD INBOUND_HEAD "    tls:\n",
     "t.yaml:6:5: listeners[0].tls: expected disable, permissive, strict or a map {mode, ports}, "
     "got nothing"},
    {"ListenerTlsUnknownKey",
     TLS_HEAD INBOUND_HEAD "    tls: { mode: strict, port: { 80: strict } }\n",
     "t.yaml:6:26: listeners[0].tls.port: unknown key (expected one of: mode, ports)"},
    {"ListenerTlsPortZero", TLS_HEAD INBOUND_HEAD "    tls: { ports: { 0: strict } }\n",
     "t.yaml:6:21: listeners[0].tls.ports.0: '0' out of range (1..65535)"},
    {"ListenerTlsPortTooLarge",
     TLS_HEAD INBOUND_HEAD "    tls: { ports: { 8080: strict, 65536: strict } }\n",
     "t.yaml:6:35: listeners[0].tls.ports.65536: '65536' out of range (1..65535)"},
    {"ListenerTlsPortNotANumber", TLS_HEAD INBOUND_HEAD "    tls: { ports: { http: strict } }\n",
     "t.yaml:6:21: listeners[0].tls.ports.http: expected an integer, got 'http'"},
    {"ListenerTlsPortBadMode", TLS_HEAD INBOUND_HEAD "    tls: { ports: { 8080: on } }\n",
     "t.yaml:6:27: listeners[0].tls.ports.8080: unknown tls mode 'on' (want disable, permissive or "
     "strict)"},
    {"ListenerTlsDuplicatePort",
     TLS_HEAD INBOUND_HEAD "    tls: { ports: { 8080: strict, 08080: disable } }\n",
     "t.yaml:6:35: listeners[0].tls.ports.08080: duplicate port 8080"},
    {"PortModesOnHttpListener",
     TLS_HEAD
     "listeners:\n  - name: l\n    address: 0.0.0.0:1\n    tls: { mode: strict, ports: { 8080: "
     "strict } }\n",
     "t.yaml:5:33: listeners[0].tls.ports: per-port modes are for transparent_inbound listeners "
     "only (set tls.mode)"},
    {"PortModesOnOutboundListener",
     TLS_HEAD
     "listeners:\n  - name: o\n    address: 0.0.0.0:15001\n    mode: transparent_outbound\n"
     "    tls: { ports: {} }\n",
     "t.yaml:6:19: listeners[0].tls.ports: per-port modes are for transparent_inbound listeners "
     "only (set tls.mode)"},
    {"AuthorizationOnPlaintextListener",
     INBOUND_HEAD "    authorization: { allow: [\"spiffe://cluster.local/*\"] }\n",
     "t.yaml:5:20: listeners[0].authorization: allow/deny rules need tls: permissive or strict on "
     "this listener (a plaintext peer has no identity to check)"},
    {"AuthorizationOnDisabledListener",
     TLS_HEAD INBOUND_HEAD
     "    tls: { mode: disable, ports: { 8080: disable } }\n    authorization: { deny: [\"*\"] }\n",
     "t.yaml:7:20: listeners[0].authorization: allow/deny rules need tls: permissive or strict on "
     "this listener (a plaintext peer has no identity to check)"},
    {"AuthorizationWildcardInside",
     TLS_HEAD INBOUND_HEAD
     "    tls: strict\n    authorization: { allow: [\"spiffe://cluster.local/ns/*/sa/web\"] }\n",
     "t.yaml:7:30: listeners[0].authorization.allow[0]: '*' is allowed only as the whole pattern "
     "or as a final '/*' segment"},
    {"AuthorizationNotSpiffe",
     TLS_HEAD INBOUND_HEAD
     "    tls: strict\n    authorization: { deny: [\"https://cluster.local/x\"] }\n",
     "t.yaml:7:29: listeners[0].authorization.deny[0]: invalid SPIFFE ID pattern "
     "'https://cluster.local/x': scheme must be 'spiffe'"},
    {"AuthorizationEmptyPattern",
     TLS_HEAD INBOUND_HEAD "    tls: strict\n    authorization: { allow: [\"*\", \"\"] }\n",
     "t.yaml:7:35: listeners[0].authorization.allow[1]: empty ID pattern"},
    {"AuthorizationUnknownKey",
     TLS_HEAD INBOUND_HEAD "    tls: strict\n    authorization: { allow: [], except: [] }\n",
     "t.yaml:7:33: listeners[0].authorization.except: unknown key (expected one of: allow, deny)"},
    {"AuthorizationNotAList",
     TLS_HEAD INBOUND_HEAD "    tls: strict\n    authorization: { allow: \"*\" }\n",
     "t.yaml:7:29: listeners[0].authorization.allow: expected a list, got a scalar"},
    {"RouteAuthorizationOnPlaintextTable",
     "listeners: [ { name: l, address: 0.0.0.0:1 } ]\nroutes:\n  default:\n    - cluster: c\n"
     "      authorization: { allow: [\"*\"] }\nclusters: [ { name: c, endpoints: [\"h:1\"] } ]\n",
     "t.yaml:5:22: routes.default[0].authorization: allow/deny rules need tls: permissive or "
     "strict on a listener using route table 'default' (a plaintext peer has no identity to "
     "check)"},
    {"RouteAuthorizationBadPattern",
     "listeners: []\nroutes:\n  default:\n    - cluster: c\n"
     "      authorization: { deny: [\"spiffe://td/a/\"] }\n",
     "t.yaml:5:31: routes.default[0].authorization.deny[0]: invalid SPIFFE ID pattern "
     "'spiffe://td/a/': path must not end with '/'"},
    {"ClusterTlsBadExpectedId",
     "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n"
     "    tls: { expected_ids: [\"spiffe://Cluster.local/ns/a\"] }\n",
     "t.yaml:5:27: clusters[0].tls.expected_ids[0]: invalid SPIFFE ID pattern "
     "'spiffe://Cluster.local/ns/a': trust domain must be lowercase"},
    {"ClusterTlsUnknownKey",
     "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n    tls: { server_name: a "
     "}\n",
     "t.yaml:5:12: clusters[0].tls.server_name: unknown key (expected one of: sni, expected_ids)"},
    {"ClusterTlsEmptySni",
     "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n    tls: { sni: \"\" }\n",
     "t.yaml:5:17: clusters[0].tls.sni: must not be empty (leave sni out to send the endpoint's "
     "host)"},
    {"ClusterTlsSniWithPort",
     "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n    tls: { sni: "
     "\"payments:443\" }\n",
     "t.yaml:5:17: clusters[0].tls.sni: bad server name 'payments:443' (want a DNS name)"},
    {"ClusterTlsNotAMap",
     "listeners: []\nclusters:\n  - name: c\n    endpoints: [ \"h:1\" ]\n    tls: on\n",
     "t.yaml:5:10: clusters[0].tls: expected a map, got a scalar"},
    {"OutboundTlsBadExpectedId",
     "listeners: []\ntransparent: { outbound_tls: { expected_ids: [\"spiffe://td/*/x\"] } }\n",
     "t.yaml:2:47: transparent.outbound_tls.expected_ids[0]: '*' is allowed only as the whole "
     "pattern or as a final '/*' segment"},
    {"IdentityMissingCert", "tls: { key: k.pem, ca: ca.pem }\nlisteners: []\n",
     "t.yaml:1:6: tls.cert: required"},
    {"IdentityMissingKey", "tls:\n  cert: c.pem\n  ca: ca.pem\nlisteners: []\n",
     "t.yaml:2:3: tls.key: required"},
    {"IdentityMissingCa", "tls: { cert: c.pem, key: k.pem }\nlisteners: []\n",
     "t.yaml:1:6: tls.ca: required"},
    {"IdentityEmptyCert", "tls: { cert: \"\", key: k.pem, ca: ca.pem }\nlisteners: []\n",
     "t.yaml:1:14: tls.cert: must not be empty"},
    {"IdentityPathList", "tls: { cert: [c.pem], key: k.pem, ca: ca.pem }\nlisteners: []\n",
     "t.yaml:1:14: tls.cert: expected a string, got a list"},
    {"IdentityPollZero",
     "tls: { cert: c.pem, key: k.pem, ca: ca.pem, poll_interval: 0 }\n"
     "listeners: []\n",
     "t.yaml:1:60: tls.poll_interval: must be more than 0"},
    {"IdentityPollBad",
     "tls: { cert: c.pem, key: k.pem, ca: ca.pem, poll_interval: 5 }\n"
     "listeners: []\n",
     "t.yaml:1:60: tls.poll_interval: bad duration '5' (want e.g. 250ms, 2s, 1m)"},
    {"IdentityUnknownKey",
     "tls: { cert: c.pem, key: k.pem, ca: ca.pem, password: x }\n"
     "listeners: []\n",
     "t.yaml:1:45: tls.password: unknown key (expected one of: cert, key, ca, poll_interval)"},
    {"IdentityNotAMap", "tls: strict\nlisteners: []\n",
     "t.yaml:1:6: tls: expected a map, got a scalar"},
#undef INBOUND_HEAD
#undef TLS_HEAD
    {"WorkersZero", "listeners: []\nworkers: 0\n",
     "t.yaml:2:10: workers: '0' out of range (1..1024)"},
    {"WorkersWord", "listeners: []\nworkers: many\n",
     "t.yaml:2:10: workers: expected 'auto' or an integer, got 'many'"},
    {"AdminBadAddress", "listeners: []\nadmin: { address: \":9901\" }\n",
     "t.yaml:2:19: admin.address: bad address ':9901' (want host:port)"},
    {"NodeNotAMap", "node: payments\nlisteners: []\n",
     "t.yaml:1:7: node: expected a map, got a scalar"},
    {"AccessLogFormat", "listeners: []\naccess_log: { format: xml }\n",
     "t.yaml:2:23: access_log.format: unknown format 'xml' (want text or json)"},
    {"AccessLogOn", "listeners: []\naccess_log: on\n",
     "t.yaml:2:13: access_log: expected a map or 'off', got a scalar"},
    {"BadSize", "listeners: []\nlimits: { max_request_body_bytes: 10 MiB }\n",
     "t.yaml:2:35: limits.max_request_body_bytes: bad size '10 MiB' (want bytes, or e.g. 64KiB, "
     "10MiB, 1GB)"},
    {"SizeOverflow", "listeners: []\nlimits: { max_request_body_bytes: 99999999999999GiB }\n",
     "t.yaml:2:35: limits.max_request_body_bytes: bad size '99999999999999GiB' (want bytes, or "
     "e.g. 64KiB, 10MiB, 1GB)"},
    {"ZeroHeaderLimit", "listeners: []\nlimits: { max_request_header_bytes: 0 }\n",
     "t.yaml:2:37: limits.max_request_header_bytes: must be at least 1 byte"},
    {"SamplingOutOfRange", "listeners: []\ntracing: { sampling: 1.5 }\n",
     "t.yaml:2:22: tracing.sampling: sampling '1.5' out of range (0..1)"},
    {"SamplingNotANumber", "listeners: []\ntracing: { sampling: often }\n",
     "t.yaml:2:22: tracing.sampling: expected a number, got 'often'"},
    {"DuplicateKey", "listeners: []\nworkers: 1\nworkers: 2\n",
     "t.yaml:3:1: workers: duplicate key"},
    {"EmptyKey", "listeners: []\nnode: { \"\": 1 }\n",
     "t.yaml:2:9: node.'': unknown key (expected one of: id, service)"},
    {"NonStringKey", "listeners: []\n[a]: 1\n",
     "t.yaml:2:1: (top level): keys must be strings, got a list"},
    {"NewlineInKeyStaysOneLine", "\"a\\nb\": 1\n",
     "t.yaml:1:1: a\\nb: unknown key (expected one of: node, workers, admin, metrics, readiness, "
     "listeners, routes, clusters, access_log, limits, timeouts, tracing, transparent, tls)"},
    {"TooDeep",
     "listeners: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
     "t.yaml:1:268: syntax error: nesting deeper than 256 levels"},
};

INSTANTIATE_TEST_SUITE_P(Cases, LoadErrors, testing::ValuesIn(kErrorCases),
                         [](const testing::TestParamInfo<ErrorCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(Routes, WeightedClustersForATrafficSplit) {
  LoadResult result = load_yaml(R"(listeners: [ { name: l, address: 127.0.0.1:1 } ]
routes:
  default:
    - weighted_clusters: [ { name: v1, weight: 90 }, { name: v2, weight: 10 } ]
clusters:
  - { name: v1, endpoints: ["127.0.0.1:8080"] }
  - { name: v2, endpoints: ["127.0.0.1:8081"] }
)",
                                "t.yaml");
  ASSERT_TRUE(result) << result.error;
  const auto& route = result.snapshot->routes.at("default")[0];
  EXPECT_TRUE(route.cluster.empty());
  ASSERT_EQ(route.weighted_clusters.size(), 2u);
  EXPECT_EQ(route.weighted_clusters[1].name, "v2");
  EXPECT_EQ(route.weighted_clusters[1].weight, 10u);
  EXPECT_NE(error_of(R"(listeners: [ { name: l, address: 127.0.0.1:1 } ]
routes: { default: [ { weighted_clusters: [ { name: nope, weight: 1 } ] } ] }
)")
                .find("no cluster named 'nope'"),
            std::string::npos);
}

TEST(Transparent, ListenersNeedNoRoutesAndSettingsHaveDefaults) {
  LoadResult result = load_yaml(R"(listeners:
  - { name: out, address: 0.0.0.0:15001, mode: transparent_outbound }
  - { name: in, address: 0.0.0.0:15006, mode: transparent_inbound, routes: inbound }
routes:
  inbound:
    - match: { path_prefix: /admin }
      cluster: c
clusters:
  - { name: c, endpoints: ["127.0.0.1:8080"] }
metrics: { address: 0.0.0.0:15090 }
readiness: { address: 0.0.0.0:15021 }
transparent: { detect_timeout: 50ms, opaque_ports: [6379], server_first_ports: [25] }
)",
                                "t.yaml");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& config = *result.snapshot;
  EXPECT_EQ(config.listeners[0].mode, ListenerMode::kTransparentOutbound);
  EXPECT_EQ(config.listeners[0].routes, "");
  EXPECT_EQ(config.listeners[1].mode, ListenerMode::kTransparentInbound);
  EXPECT_EQ(config.listeners[1].routes, "inbound");
  EXPECT_EQ(config.metrics->port, 15090);
  EXPECT_EQ(config.readiness->port, 15021);
  EXPECT_EQ(config.transparent.detect_timeout, 50ms);
  EXPECT_EQ(config.transparent.opaque_ports, std::vector<uint16_t>{6379});
  EXPECT_EQ(config.transparent.server_first_ports, std::vector<uint16_t>{25});
  EXPECT_EQ(config.transparent.inbound_source, "127.0.0.6");
}

TEST(Transparent, ZeroConfigSidecarUsesTheWellKnownPorts) {
  Snapshot config = transparent_sidecar(true);
  ASSERT_EQ(config.listeners.size(), 4u);
  EXPECT_EQ(config.listeners[2].address.to_string(), "[::]:15001");
  EXPECT_EQ(config.listeners[3].mode, ListenerMode::kTransparentInbound);
  EXPECT_EQ(transparent_sidecar(false).listeners.size(), 2u);
  EXPECT_EQ(config.listeners[0].address.to_string(), "0.0.0.0:15001");
  EXPECT_EQ(config.listeners[0].mode, ListenerMode::kTransparentOutbound);
  EXPECT_EQ(config.listeners[1].address.to_string(), "0.0.0.0:15006");
  EXPECT_EQ(config.listeners[1].mode, ListenerMode::kTransparentInbound);
  EXPECT_EQ(config.metrics->to_string(), "0.0.0.0:15090");
  EXPECT_EQ(config.readiness->to_string(), "0.0.0.0:15021");
  EXPECT_EQ(config.admin.to_string(), "127.0.0.1:9901");
  // MySQL speaks first: it must never wait for the detection timeout.
  const auto& ports = config.transparent.server_first_ports;
  EXPECT_NE(std::find(ports.begin(), ports.end(), 3306), ports.end());
}

// Mutual TLS: the workload identity, inbound modes (scalar and map), authorization on listeners
// and routes, and origination to clusters and captured outbound traffic.
constexpr const char* kMtls = R"(tls:
  cert: /var/run/secrets/pillion/cert.pem
  key: /var/run/secrets/pillion/key.pem
  ca: /var/run/secrets/pillion/ca.pem
  poll_interval: 2s
listeners:
  - name: inbound
    address: 0.0.0.0:15006
    mode: transparent_inbound
    tls: { mode: permissive, ports: { 8080: strict, 9090: disable } }
    authorization:
      allow: ["spiffe://cluster.local/ns/prod/*"]
      deny: ["spiffe://cluster.local/ns/prod/sa/legacy"]
  - { name: outbound, address: 0.0.0.0:15001, mode: transparent_outbound, tls: permissive }
  - name: api
    address: 127.0.0.1:7000
    tls: strict
    authorization: { allow: ["*"] }
  - { name: plain, address: 127.0.0.1:7001, routes: other, tls: disable, authorization: {} }
routes:
  default:
    - match: { path_prefix: /admin/ }
      cluster: app
      authorization: { allow: ["spiffe://cluster.local/ns/ops/sa/admin"] }
    - cluster: app
  other:
    - { cluster: payments, authorization: {} }
clusters:
  - name: app
    endpoints: ["127.0.0.1:8080"]
  - name: payments
    endpoints: ["10.0.0.7:15006"]
    tls: { sni: payments.prod.svc, expected_ids: ["spiffe://cluster.local/ns/prod/sa/payments"] }
  - { name: defaults, endpoints: ["10.0.0.8:15006"], tls: {} }
transparent:
  outbound_tls: { expected_ids: ["spiffe://cluster.local/*"] }
)";

TEST(Mtls, EverySettingIsRead) {
  LoadResult result = load_yaml(kMtls, "mtls.yaml");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& s = *result.snapshot;

  ASSERT_TRUE(s.tls.has_value());
  EXPECT_EQ(s.tls->cert, "/var/run/secrets/pillion/cert.pem");
  EXPECT_EQ(s.tls->key, "/var/run/secrets/pillion/key.pem");
  EXPECT_EQ(s.tls->ca, "/var/run/secrets/pillion/ca.pem");
  EXPECT_EQ(s.tls->poll_interval, 2s);

  ASSERT_EQ(s.listeners.size(), 4u);
  const Listener& inbound = s.listeners[0];
  EXPECT_EQ(inbound.tls.mode, InboundTls::kPermissive);
  std::map<uint16_t, InboundTls> ports{{8080, InboundTls::kStrict}, {9090, InboundTls::kDisabled}};
  EXPECT_EQ(inbound.tls.port_modes, ports);
  ASSERT_TRUE(inbound.authorization.has_value());
  EXPECT_EQ(inbound.authorization->allow,
            std::vector<std::string>{"spiffe://cluster.local/ns/prod/*"});
  EXPECT_EQ(inbound.authorization->deny,
            std::vector<std::string>{"spiffe://cluster.local/ns/prod/sa/legacy"});

  EXPECT_EQ(s.listeners[1].tls.mode, InboundTls::kPermissive);
  EXPECT_TRUE(s.listeners[1].tls.port_modes.empty());
  EXPECT_FALSE(s.listeners[1].authorization.has_value());

  const Listener& api = s.listeners[2];
  EXPECT_EQ(api.mode, ListenerMode::kHttp);
  EXPECT_EQ(api.tls.mode, InboundTls::kStrict);
  ASSERT_TRUE(api.authorization.has_value());
  EXPECT_EQ(api.authorization->allow, std::vector<std::string>{"*"});
  EXPECT_TRUE(api.authorization->deny.empty());

  const Listener& plain = s.listeners[3];
  EXPECT_EQ(plain.tls, ListenerTls{});
  ASSERT_TRUE(plain.authorization.has_value());  // {}: present, with no rule
  EXPECT_EQ(*plain.authorization, Authorization{});

  const RouteTable& table = s.routes.at("default");
  ASSERT_EQ(table.size(), 2u);
  ASSERT_TRUE(table[0].authorization.has_value());
  EXPECT_EQ(table[0].authorization->allow,
            std::vector<std::string>{"spiffe://cluster.local/ns/ops/sa/admin"});
  EXPECT_FALSE(table[1].authorization.has_value());
  ASSERT_TRUE(s.routes.at("other")[0].authorization.has_value());

  EXPECT_FALSE(s.find_cluster("app")->tls.has_value());
  const Cluster* payments = s.find_cluster("payments");
  ASSERT_TRUE(payments->tls.has_value());
  EXPECT_EQ(payments->tls->sni, "payments.prod.svc");
  EXPECT_EQ(payments->tls->expected_ids,
            std::vector<std::string>{"spiffe://cluster.local/ns/prod/sa/payments"});
  ASSERT_TRUE(s.find_cluster("defaults")->tls.has_value());
  EXPECT_EQ(*s.find_cluster("defaults")->tls, ClusterTls{});

  ASSERT_TRUE(s.transparent.outbound_tls.has_value());
  EXPECT_EQ(s.transparent.outbound_tls->sni, "");
  EXPECT_EQ(s.transparent.outbound_tls->expected_ids,
            std::vector<std::string>{"spiffe://cluster.local/*"});
}

TEST(Mtls, OffByDefault) {
  LoadResult result = load_yaml(kMinimal, "t.yaml");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& s = *result.snapshot;
  EXPECT_FALSE(s.tls.has_value());
  EXPECT_EQ(s.listeners[0].tls.mode, InboundTls::kDisabled);
  EXPECT_TRUE(s.listeners[0].tls.port_modes.empty());
  EXPECT_FALSE(s.listeners[0].authorization.has_value());
  EXPECT_FALSE(s.routes.at("default")[0].authorization.has_value());
  EXPECT_FALSE(s.clusters[0].tls.has_value());
  EXPECT_FALSE(s.transparent.outbound_tls.has_value());
}

TEST(Mtls, IdentityDefaultsAndDisabledListenersNeedNoIdentity) {
  // The identity alone (nothing uses it yet) is fine; poll_interval defaults to 1s.
  LoadResult result =
      load_yaml(std::string("tls: { cert: c.pem, key: k.pem, ca: ca.pem }\n") + kMinimal, "t.yaml");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->tls->poll_interval, 1s);

  // tls: disable (also per port) and an empty authorization ask for no identity.
  result = load_yaml(R"(listeners:
  - name: in
    address: 0.0.0.0:15006
    mode: transparent_inbound
    tls: { mode: disable, ports: { 8080: disable } }
    authorization: {}
)",
                     "t.yaml");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->listeners[0].tls.port_modes.at(8080), InboundTls::kDisabled);
}

TEST(Mtls, RulesOnAListenerWithTlsOnlyOnSomePorts) {
  // A disabled default with a strict port still has peers with identities: rules are allowed.
  LoadResult result = load_yaml(R"(tls: { cert: c.pem, key: k.pem, ca: ca.pem }
listeners:
  - name: in
    address: 0.0.0.0:15006
    mode: transparent_inbound
    tls: { ports: { 8443: strict } }
    authorization: { deny: ["spiffe://cluster.local/ns/dev/*"] }
)",
                                "t.yaml");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->listeners[0].tls.mode, InboundTls::kDisabled);
  EXPECT_EQ(result.snapshot->listeners[0].tls.port_modes.at(8443), InboundTls::kStrict);
}

TEST(Mtls, RouteRulesNeedOneListenerWithTlsUsingTheTable) {
  // "default" is used by a plaintext listener and a strict one: the strict one gives identities.
  LoadResult result = load_yaml(R"(tls: { cert: c.pem, key: k.pem, ca: ca.pem }
listeners:
  - { name: plain, address: 127.0.0.1:7000 }
  - { name: mtls, address: 0.0.0.0:7443, tls: strict }
routes:
  default:
    - { cluster: c, authorization: { allow: ["spiffe://cluster.local/ns/ops/*"] } }
  unused:
    - { cluster: c, authorization: { allow: ["*"] } }
clusters: [ { name: c, endpoints: ["127.0.0.1:8080"] } ]
)",
                                "t.yaml");
  ASSERT_TRUE(result) << result.error;
}

TEST(FromFlags, BuildsOneListenerRouteAndCluster) {
  LoadResult result = from_flags("127.0.0.1:7000", "http://127.0.0.1:8080");
  ASSERT_TRUE(result) << result.error;
  const Snapshot& s = *result.snapshot;
  ASSERT_EQ(s.listeners.size(), 1u);
  EXPECT_EQ(s.listeners[0].name, "explicit");
  EXPECT_EQ(s.listeners[0].address, (HostPort{"127.0.0.1", 7000}));
  EXPECT_EQ(s.listeners[0].mode, ListenerMode::kHttp);
  EXPECT_EQ(s.listeners[0].routes, "default");
  ASSERT_EQ(s.routes.size(), 1u);
  const RouteTable& table = s.routes.at("default");
  ASSERT_EQ(table.size(), 1u);
  EXPECT_TRUE(table[0].match.host.empty());
  EXPECT_TRUE(table[0].match.path.empty());
  EXPECT_TRUE(table[0].match.path_prefix.empty());
  EXPECT_EQ(table[0].cluster, "upstream");
  EXPECT_EQ(table[0].timeout, Route{}.timeout);
  ASSERT_EQ(s.clusters.size(), 1u);
  EXPECT_EQ(s.clusters[0].name, "upstream");
  EXPECT_EQ(s.clusters[0].endpoints, std::vector<ClusterEndpoint>{endpoint("127.0.0.1", 8080)});
  // The flag form gets every cluster and route default, as a config file that omits them.
  EXPECT_EQ(s.clusters[0].lb_policy, LbPolicy::kLeastRequest);
  EXPECT_EQ(s.clusters[0].circuit_breakers, CircuitBreakers{});
  EXPECT_FALSE(s.clusters[0].outlier_detection);
  EXPECT_FALSE(s.clusters[0].health_check);
  EXPECT_FALSE(table[0].retry);
  EXPECT_EQ(s.workers, 0);
  EXPECT_TRUE(s.access_log.enabled);
}

TEST(FromFlags, DefaultPortAndIpv6) {
  LoadResult result = from_flags("[::1]:0", "http://backend/");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->listeners[0].address, (HostPort{"::1", 0}));
  EXPECT_EQ(result.snapshot->clusters[0].endpoints[0], endpoint("backend", 80));
}

TEST(FromFlags, BadListen) {
  EXPECT_EQ(from_flags("x", "http://127.0.0.1:8080").error,
            "--listen: bad address 'x' (want host:port)");
  EXPECT_EQ(from_flags("127.0.0.1:99999", "http://127.0.0.1:8080").error,
            "--listen: bad address '127.0.0.1:99999' (want host:port)");
}

TEST(FromFlags, BadUpstream) {
  EXPECT_EQ(from_flags("127.0.0.1:7000", "x").error,
            "--upstream: bad URL 'x' (want http://host:port)");
  EXPECT_EQ(from_flags("127.0.0.1:7000", "https://a:1").error,
            "--upstream: bad URL 'https://a:1' (want http://host:port)");
  EXPECT_EQ(from_flags("127.0.0.1:7000", "http://a:1/path").error,
            "--upstream: bad URL 'http://a:1/path' (want http://host:port)");
  EXPECT_EQ(from_flags("127.0.0.1:7000", "http://a:0").error,
            "--upstream: bad URL 'http://a:0' (want http://host:port)");
}

}  // namespace
}  // namespace pillion::config
