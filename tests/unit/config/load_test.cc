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
  EXPECT_EQ(payments.endpoints[0], (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(payments.endpoints[1], (HostPort{"payments-service", 8080}));
  EXPECT_EQ(payments.connect_timeout, 1s);
  EXPECT_EQ(payments.max_idle_connections, 32);
  EXPECT_EQ(payments.idle_timeout, 90s);
  const Cluster* checkout = s.find_cluster("checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->endpoints, (std::vector<HostPort>{{"::1", 9090}}));
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
  EXPECT_EQ(cluster->endpoints, (std::vector<HostPort>{{"127.0.0.1", 8080}}));
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
     "readiness, listeners, routes, clusters, access_log, limits, timeouts, tracing, transparent)"},
    {"MissingListeners", "workers: 2\n", "t.yaml:1:1: listeners: required: at least one listener"},
    {"ListenersNotAList", "listeners: { a: 1 }\n",
     "t.yaml:1:12: listeners: expected a list, got a map"},
    {"ListenerNotAMap", "listeners:\n  - 127.0.0.1:80\n",
     "t.yaml:2:5: listeners[0]: expected a map, got a scalar"},
    {"UnknownListenerKey",
     "listeners:\n  - { name: l, address: 127.0.0.1:7000, tls: { mode: strict } }\n",
     "t.yaml:2:41: listeners[0].tls: unknown key (expected one of: name, address, mode, routes)"},
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
     "listeners, routes, clusters, access_log, limits, timeouts, tracing, transparent)"},
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
  EXPECT_EQ(s.clusters[0].endpoints, (std::vector<HostPort>{{"127.0.0.1", 8080}}));
  EXPECT_EQ(s.workers, 0);
  EXPECT_TRUE(s.access_log.enabled);
}

TEST(FromFlags, DefaultPortAndIpv6) {
  LoadResult result = from_flags("[::1]:0", "http://backend/");
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.snapshot->listeners[0].address, (HostPort{"::1", 0}));
  EXPECT_EQ(result.snapshot->clusters[0].endpoints[0], (HostPort{"backend", 80}));
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
