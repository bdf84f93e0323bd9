#include "config/load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "config/prescan.h"
#include "tls/authorization.h"

#include <re2/re2.h>

namespace pillion::config {
namespace {

// How messages name the document itself, which has no key path.
constexpr const char* kTopLevel = "(top level)";

// One value in the document: the node, where to point at, and its key path for messages.
struct Field {
  YAML::Node node;
  YAML::Mark mark;
  std::string path;
};

// Thrown at the first problem and turned into LoadResult::error by load_yaml.
struct LoadError {
  YAML::Mark mark;
  std::string path;
  std::string what;
};

[[noreturn]] void fail(const Field& field, std::string what) {
  throw LoadError{field.mark, field.path, std::move(what)};
}

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

std::string kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// A null value (`key:`) has yaml-cpp's mark on the next token; point at the key instead.
Field child(const YAML::Node& node, const YAML::Node& anchor, std::string path) {
  YAML::Mark mark = node.IsNull() || node.Mark().is_null() ? anchor.Mark() : node.Mark();
  return Field{node, mark, std::move(path)};
}

void expect_map(const Field& field) {
  if (!field.node.IsMap()) {
    fail(field, "expected a map, got " + kind_of(field.node));
  }
}

void expect_list(const Field& field) {
  if (!field.node.IsSequence()) {
    fail(field, "expected a list, got " + kind_of(field.node));
  }
}

const std::string& scalar(const Field& field, std::string_view want) {
  if (!field.node.IsScalar()) {
    fail(field, "expected " + std::string(want) + ", got " + kind_of(field.node));
  }
  return field.node.Scalar();
}

// The entries of a map, in document order, after rejecting non-string, unknown and repeated keys.
std::vector<std::pair<std::string, Field>> entries(const Field& map,
                                                   std::initializer_list<std::string_view> known) {
  expect_map(map);
  std::vector<std::pair<std::string, Field>> out;
  std::set<std::string> seen;
  for (auto it = map.node.begin(); it != map.node.end(); ++it) {
    // Copies: the iterator hands out a temporary pair.
    YAML::Node key = it->first;
    if (!key.IsScalar()) {
      fail(Field{key, key.Mark(), map.path.empty() ? kTopLevel : map.path},
           "keys must be strings, got " + kind_of(key));
    }
    const std::string& name = key.Scalar();
    Field key_field{key, key.Mark(), join(map.path, name.empty() ? "''" : name)};
    if (known.size() != 0) {
      bool found = false;
      std::string expected;
      for (auto k : known) {
        found = found || k == name;
        expected += expected.empty() ? std::string(k) : ", " + std::string(k);
      }
      if (!found) {
        fail(key_field, "unknown key (expected one of: " + expected + ")");
      }
    }
    if (!seen.insert(name).second) {
      fail(key_field, "duplicate key");
    }
    out.emplace_back(name, child(it->second, key, key_field.path));
  }
  return out;
}

// The items of a list, each with its own path ("clusters[2]").
std::vector<Field> items(const Field& list) {
  expect_list(list);
  std::vector<Field> out;
  for (auto it = list.node.begin(); it != list.node.end(); ++it) {
    out.push_back(child(*it, list.node, list.path + "[" + std::to_string(out.size()) + "]"));
  }
  return out;
}

std::string parse_string(const Field& field) {
  return scalar(field, "a string");
}

std::string parse_name(const Field& field) {
  std::string name = parse_string(field);
  if (name.empty()) {
    fail(field, "must not be empty");
  }
  return name;
}

long long parse_integer(const Field& field, long long min, long long max) {
  const std::string& text = scalar(field, "an integer");
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
    fail(field, "expected an integer, got " + quoted(text));
  }
  if (value < min || value > max) {
    fail(field,
         quoted(text) + " out of range (" + std::to_string(min) + ".." + std::to_string(max) + ")");
  }
  return value;
}

Duration parse_duration(const Field& field) {
  const std::string& text = scalar(field, "a duration");
  if (text == "0") {
    return Duration::zero();
  }
  if (text.starts_with('-')) {
    fail(field, "duration " + quoted(text) + " must not be negative");
  }
  auto duration = core::parse_duration(text);
  if (!duration) {
    fail(field, "bad duration " + quoted(text) + " (want e.g. 250ms, 2s, 1m)");
  }
  return *duration;
}

// Sizes: plain bytes, or with a binary (KiB, MiB, GiB) or decimal (KB, MB, GB) suffix.
uint64_t parse_size(const Field& field) {
  const std::string& text = scalar(field, "a size");
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view unit(end, text.data() + text.size() - end);
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KiB", 1ULL << 10},
      {"MiB", 1ULL << 20},
      {"GiB", 1ULL << 30},
      {"KB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
  };
  if (ec == std::errc{} && end != text.data()) {
    for (auto [suffix, multiplier] : kUnits) {
      if (unit == suffix) {
        if (value > std::numeric_limits<uint64_t>::max() / multiplier) {
          break;
        }
        return value * multiplier;
      }
    }
  }
  fail(field, "bad size " + quoted(text) + " (want bytes, or e.g. 64KiB, 10MiB, 1GB)");
}

// A duration that must not be 0 (a period, or a wait that 0 would make meaningless).
Duration parse_positive_duration(const Field& field) {
  Duration duration = parse_duration(field);
  if (duration <= Duration::zero()) {
    fail(field, "must be more than 0");
  }
  return duration;
}

// A retry replays the request body from memory: bound what one request may hold.
constexpr uint64_t kMaxRetryBufferLimit = 64ULL << 20;

// Explains why a host:port did not parse; the port range is the usual surprise.
std::string explain_address(const std::string& text, std::string_view want) {
  auto colon = text.rfind(':');
  if (colon != std::string::npos) {
    std::string_view port(text);
    port.remove_prefix(colon + 1);
    unsigned long long value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (!port.empty() && end == port.data() + port.size() &&
        (ec == std::errc::result_out_of_range || (ec == std::errc{} && value > 65535))) {
      return "port " + std::string(port) + " out of range in " + quoted(text) + " (0..65535)";
    }
  }
  return "bad address " + quoted(text) + " (want " + std::string(want) + ")";
}

// Listeners may use port 0 (the kernel picks one, handy in tests); upstreams may not.
HostPort parse_address(const Field& field, bool allow_port_zero) {
  const std::string& text = scalar(field, "an address");
  auto address = core::parse_host_port(text);
  if (!address) {
    fail(field, explain_address(text, "host:port"));
  }
  if (address->port == 0 && !allow_port_zero) {
    fail(field, "port 0 in " + quoted(text) + " is not allowed here (1..65535)");
  }
  return *address;
}

Node parse_node(const Field& map) {
  Node node;
  for (const auto& [key, value] : entries(map, {"id", "service"})) {
    if (key == "id") {
      node.id = parse_string(value);
    } else {
      node.service = parse_string(value);
    }
  }
  return node;
}

int parse_workers(const Field& field) {
  if (field.node.IsScalar() && field.node.Scalar() == "auto") {
    return 0;
  }
  if (field.node.IsScalar()) {
    const std::string& text = field.node.Scalar();
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
      fail(field, "expected 'auto' or an integer, got " + quoted(text));
    }
  }
  return static_cast<int>(parse_integer(field, 1, 1024));
}

bool parse_bool(const Field& field) {
  const std::string& text = scalar(field, "true or false");
  if (text == "true") {
    return true;
  }
  if (text != "false") {
    fail(field, "expected true or false, got " + quoted(text));
  }
  return false;
}

void parse_admin(const Field& map, Snapshot& snapshot) {
  for (const auto& [key, value] : entries(map, {"address", "allow_non_loopback"})) {
    if (key == "address") {
      snapshot.admin = parse_address(value, true);
    } else {
      snapshot.admin_allow_non_loopback = parse_bool(value);
    }
  }
}

ListenerMode parse_mode(const Field& field) {
  const std::string& text = scalar(field, "a mode");
  if (text == "http") {
    return ListenerMode::kHttp;
  }
  if (text == "transparent_outbound") {
    return ListenerMode::kTransparentOutbound;
  }
  if (text == "transparent_inbound") {
    return ListenerMode::kTransparentInbound;
  }
  fail(field, "unknown mode " + quoted(text) +
                  " (want http, transparent_outbound or transparent_inbound)");
}

// An address for a server of the control plane (metrics, readiness): `{address: host:port}`.
HostPort parse_server_address(const Field& map) {
  std::optional<HostPort> address;
  for (const auto& [key, value] : entries(map, {"address"})) {
    address = parse_address(value, true);
  }
  if (!address) {
    fail(Field{map.node, map.mark, join(map.path, "address")}, "required");
  }
  return *address;
}

bool is_loopback_ip(const std::string& text) {
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  return ::inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

AppProbe parse_app_probe(const Field& field) {
  const std::string& url = scalar(field, "a URL");
  AppProbe probe;
  auto slash = url.find('/', 7);
  auto address =
      url.starts_with("http://") ? core::parse_http_url(url.substr(0, slash)) : std::nullopt;
  if (!address) {
    fail(field, "bad probe URL " + quoted(url) + " (want http://127.0.0.1:PORT/path)");
  }
  probe.address = *address;
  if (slash != std::string::npos) {
    probe.path = url.substr(slash);
  }
  return probe;
}

void parse_readiness(const Field& map, Snapshot& snapshot) {
  std::optional<HostPort> address;
  for (const auto& [key, value] : entries(map, {"address", "app_probes"})) {
    if (key == "address") {
      address = parse_address(value, true);
    } else {
      for (const auto& [name, url] : entries(value, {})) {
        snapshot.app_probes[name] = parse_app_probe(url);
      }
    }
  }
  if (!address) {
    fail(Field{map.node, map.mark, join(map.path, "address")}, "required");
  }
  snapshot.readiness = *address;
}

std::vector<uint16_t> parse_ports(const Field& list) {
  std::vector<uint16_t> ports;
  for (const Field& item : items(list)) {
    ports.push_back(static_cast<uint16_t>(parse_integer(item, 1, 65535)));
  }
  return ports;
}

// SPIFFE ID patterns (tls::IdPattern): exact IDs, "spiffe://td/path/*", "spiffe://td/*" or "*".
std::vector<std::string> parse_id_patterns(const Field& list) {
  std::vector<std::string> patterns;
  for (const Field& item : items(list)) {
    std::string text = parse_string(item);
    std::string error;
    if (!tls::IdPattern::parse(text, error)) {
      fail(item, error);
    }
    patterns.push_back(std::move(text));
  }
  return patterns;
}

// `{allow: [...], deny: [...]}`; `{}` sets no rule.
Authorization parse_authorization(const Field& map) {
  Authorization authorization;
  for (const auto& [key, value] : entries(map, {"allow", "deny"})) {
    (key == "allow" ? authorization.allow : authorization.deny) = parse_id_patterns(value);
  }
  return authorization;
}

bool has_rules(const std::optional<Authorization>& authorization) {
  return authorization && (!authorization->allow.empty() || !authorization->deny.empty());
}

// Mutual TLS to upstreams: `{sni, expected_ids}`; `{}` keeps the defaults.
ClusterTls parse_cluster_tls(const Field& map) {
  ClusterTls tls;
  for (const auto& [key, value] : entries(map, {"sni", "expected_ids"})) {
    if (key == "sni") {
      tls.sni = parse_string(value);
      if (tls.sni.empty()) {
        fail(value, "must not be empty (leave sni out to send the endpoint's host)");
      }
      for (char c : tls.sni) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == ':') {
          fail(value, "bad server name " + quoted(tls.sni) + " (want a DNS name)");
        }
      }
    } else {
      tls.expected_ids = parse_id_patterns(value);
    }
  }
  return tls;
}

InboundTls parse_inbound_tls(const Field& field) {
  const std::string& text = scalar(field, "a TLS mode");
  if (text == "disable") {
    return InboundTls::kDisabled;
  }
  if (text == "permissive") {
    return InboundTls::kPermissive;
  }
  if (text == "strict") {
    return InboundTls::kStrict;
  }
  fail(field, "unknown tls mode " + quoted(text) + " (want disable, permissive or strict)");
}

// `disable | permissive | strict`, or `{mode, ports: {PORT: MODE}}`. Sets `ports_field` when
// `ports` is given, for the listener's own checks.
ListenerTls parse_listener_tls(const Field& field, std::optional<Field>& ports_field) {
  ListenerTls tls;
  if (field.node.IsScalar()) {
    tls.mode = parse_inbound_tls(field);
    return tls;
  }
  if (!field.node.IsMap()) {
    fail(field,
         "expected disable, permissive, strict or a map {mode, ports}, got " + kind_of(field.node));
  }
  for (const auto& [key, value] : entries(field, {"mode", "ports"})) {
    if (key == "mode") {
      tls.mode = parse_inbound_tls(value);
      continue;
    }
    // entries() checks the keys and keeps document order; walk the map again for the keys'
    // own positions, so a bad port is pointed at.
    auto node = value.node.begin();
    for (const auto& [port_text, mode] : entries(value, {})) {
      YAML::Node key_node = node->first;
      ++node;
      Field port_field{key_node, key_node.Mark(), mode.path};
      auto port = static_cast<uint16_t>(parse_integer(port_field, 1, 65535));
      if (!tls.port_modes.emplace(port, parse_inbound_tls(mode)).second) {
        fail(port_field, "duplicate port " + std::to_string(port));
      }
    }
    ports_field = value;
  }
  return tls;
}

bool tls_enabled(const ListenerTls& tls) {
  return tls.mode != InboundTls::kDisabled ||
         std::any_of(tls.port_modes.begin(), tls.port_modes.end(),
                     [](const auto& entry) { return entry.second != InboundTls::kDisabled; });
}

// The workload identity: `{cert, key, ca, poll_interval}`. Files are read (and reported when
// unreadable) when the proxy starts, not here: a config is valid wherever it is checked.
TlsIdentity parse_tls_identity(const Field& map) {
  TlsIdentity identity;
  for (const auto& [key, value] : entries(map, {"cert", "key", "ca", "poll_interval"})) {
    if (key == "cert") {
      identity.cert = parse_name(value);
    } else if (key == "key") {
      identity.key = parse_name(value);
    } else if (key == "ca") {
      identity.ca = parse_name(value);
    } else {
      identity.poll_interval = parse_positive_duration(value);
    }
  }
  for (auto [name, path] : {std::pair<const char*, const std::string*>{"cert", &identity.cert},
                            {"key", &identity.key},
                            {"ca", &identity.ca}}) {
    if (path->empty()) {
      fail(Field{map.node, map.mark, join(map.path, name)}, "required");
    }
  }
  return identity;
}

// `outbound_tls` (when given) is stored for the check that the workload identity exists.
Transparent parse_transparent(const Field& map, std::optional<Field>& outbound_tls) {
  Transparent transparent;
  for (const auto& [key, value] :
       entries(map, {"detect_timeout", "server_first_ports", "opaque_ports", "inbound_source",
                     "connect_timeout", "tcp_idle_timeout", "outbound_tls"})) {
    if (key == "outbound_tls") {
      transparent.outbound_tls = parse_cluster_tls(value);
      outbound_tls = value;
    } else if (key == "detect_timeout") {
      transparent.detect_timeout = parse_duration(value);
    } else if (key == "server_first_ports") {
      transparent.server_first_ports = parse_ports(value);
    } else if (key == "opaque_ports") {
      transparent.opaque_ports = parse_ports(value);
    } else if (key == "inbound_source") {
      transparent.inbound_source = parse_string(value);
      if (!is_loopback_ip(transparent.inbound_source)) {
        fail(value, "expected a loopback IP address such as 127.0.0.6, got " +
                        quoted(transparent.inbound_source));
      }
    } else if (key == "connect_timeout") {
      transparent.connect_timeout = parse_duration(value);
    } else {
      transparent.tcp_idle_timeout = parse_duration(value);
    }
  }
  return transparent;
}

// A name that must match something defined elsewhere; checked once everything is read.
struct Reference {
  Field field;
  std::string name;
};

class Loader {
 public:
  Snapshot load(const Field& root) {
    Snapshot snapshot;
    std::optional<Field> listeners;
    for (const auto& [key, value] :
         entries(root, {"node", "workers", "admin", "metrics", "readiness", "listeners", "routes",
                        "clusters", "access_log", "limits", "timeouts", "tracing", "transparent",
                        "tls"})) {
      if (key == "node") {
        snapshot.node = parse_node(value);
      } else if (key == "workers") {
        snapshot.workers = parse_workers(value);
      } else if (key == "admin") {
        parse_admin(value, snapshot);
      } else if (key == "metrics") {
        snapshot.metrics = parse_server_address(value);
      } else if (key == "readiness") {
        parse_readiness(value, snapshot);
      } else if (key == "transparent") {
        std::optional<Field> outbound_tls;
        snapshot.transparent = parse_transparent(value, outbound_tls);
        if (outbound_tls) {
          identity_uses_.push_back(*outbound_tls);
        }
      } else if (key == "tls") {
        snapshot.tls = parse_tls_identity(value);
      } else if (key == "listeners") {
        listeners = value;
      } else if (key == "routes") {
        snapshot.routes = parse_routes(value);
      } else if (key == "clusters") {
        snapshot.clusters = parse_clusters(value);
      } else if (key == "access_log") {
        snapshot.access_log = parse_access_log(value);
      } else if (key == "limits") {
        snapshot.limits = parse_limits(value);
      } else if (key == "timeouts") {
        snapshot.timeouts = parse_timeouts(value);
      } else {
        snapshot.tracing = parse_tracing(value);
      }
    }
    if (!listeners) {
      fail(Field{root.node, root.mark, "listeners"}, "required: at least one listener");
    }
    snapshot.listeners = parse_listeners(*listeners);

    for (const auto& ref : route_refs_) {
      if (!snapshot.routes.contains(ref.name)) {
        fail(ref.field, "no route table named " + quoted(ref.name));
      }
    }
    for (const auto& ref : cluster_refs_) {
      if (snapshot.find_cluster(ref.name) == nullptr) {
        fail(ref.field, "no cluster named " + quoted(ref.name));
      }
    }
    // Document order, so the first offending key is the one reported.
    std::sort(identity_uses_.begin(), identity_uses_.end(),
              [](const Field& a, const Field& b) { return a.mark.pos < b.mark.pos; });
    if (!snapshot.tls && !identity_uses_.empty()) {
      fail(identity_uses_.front(), "needs the top-level tls: {cert, key, ca}");
    }
    // A route's rules need a peer identity: some listener using its table must have TLS.
    for (const auto& ref : route_rules_) {
      bool used = false;
      bool with_tls = false;
      for (const Listener& listener : snapshot.listeners) {
        if (listener.routes == ref.name) {
          used = true;
          with_tls = with_tls || tls_enabled(listener.tls);
        }
      }
      if (used && !with_tls) {
        fail(ref.field,
             "allow/deny rules need tls: permissive or strict on a listener using "
             "route table " +
                 quoted(ref.name) + " (a plaintext peer has no identity to check)");
      }
    }
    return snapshot;
  }

 private:
  std::vector<Listener> parse_listeners(const Field& list) {
    std::vector<Field> list_items = items(list);
    if (list_items.empty()) {
      fail(list, "required: at least one listener");
    }
    std::vector<Listener> listeners;
    std::set<std::string> names;
    for (const Field& item : list_items) {
      Listener listener;
      bool has_name = false;
      bool has_address = false;
      std::optional<Field> routes;
      std::optional<Field> tls;
      std::optional<Field> ports;
      std::optional<Field> authorization;
      for (const auto& [key, value] :
           entries(item, {"name", "address", "mode", "tls", "authorization", "routes"})) {
        if (key == "name") {
          listener.name = parse_name(value);
          has_name = true;
          if (!names.insert(listener.name).second) {
            fail(value, "duplicate listener name " + quoted(listener.name));
          }
        } else if (key == "address") {
          listener.address = parse_address(value, true);
          has_address = true;
        } else if (key == "mode") {
          listener.mode = parse_mode(value);
        } else if (key == "tls") {
          listener.tls = parse_listener_tls(value, ports);
          tls = value;
        } else if (key == "authorization") {
          listener.authorization = parse_authorization(value);
          authorization = value;
        } else {
          listener.routes = parse_name(value);
          routes = value;
        }
      }
      if (!has_name) {
        fail(Field{item.node, item.mark, join(item.path, "name")}, "required");
      }
      if (!has_address) {
        fail(Field{item.node, item.mark, join(item.path, "address")}, "required");
      }
      if (ports && listener.mode != ListenerMode::kTransparentInbound) {
        fail(*ports, "per-port modes are for transparent_inbound listeners only (set tls.mode)");
      }
      if (tls_enabled(listener.tls)) {
        identity_uses_.push_back(*tls);
      } else if (has_rules(listener.authorization)) {
        fail(*authorization,
             "allow/deny rules need tls: permissive or strict on this listener (a plaintext peer "
             "has no identity to check)");
      }
      if (listener.mode != ListenerMode::kHttp && !routes) {
        listener.routes.clear();  // everything goes to the original destination or the app
        listeners.push_back(std::move(listener));
        continue;
      }
      route_refs_.push_back(
          {routes ? *routes : Field{item.node, item.mark, join(item.path, "routes")},
           listener.routes});
      listeners.push_back(std::move(listener));
    }
    return listeners;
  }

  std::map<std::string, RouteTable> parse_routes(const Field& map) {
    std::map<std::string, RouteTable> tables;
    for (const auto& [name, list] : entries(map, {})) {
      RouteTable table;
      for (const Field& item : items(list)) {
        table.push_back(parse_route(item, name));
      }
      tables.emplace(name, std::move(table));
    }
    return tables;
  }

  Route parse_route(const Field& item, const std::string& table) {
    Route route;
    bool has_cluster = false;
    for (const auto& [key, value] :
         entries(item, {"match", "cluster", "weighted_clusters", "timeout", "rate_limit", "fault",
                        "retry", "authorization"})) {
      if (key == "authorization") {
        route.authorization = parse_authorization(value);
        if (has_rules(route.authorization)) {
          route_rules_.push_back({value, table});
        }
      } else if (key == "rate_limit") {
        route.rate_limit = parse_rate_limit(value);
      } else if (key == "retry") {
        route.retry = parse_retry(value);
      } else if (key == "fault") {
        route.fault = parse_fault(value);
      } else if (key == "match") {
        route.match = parse_match(value);
      } else if (key == "cluster") {
        if (has_cluster) {
          fail(value, "give cluster or weighted_clusters, not both");
        }
        route.cluster = parse_name(value);
        has_cluster = true;
        cluster_refs_.push_back({value, route.cluster});
      } else if (key == "weighted_clusters") {
        if (has_cluster) {
          fail(value, "give cluster or weighted_clusters, not both");
        }
        route.weighted_clusters = parse_weighted_clusters(value);
        has_cluster = true;
      } else {
        route.timeout = parse_duration(value);
      }
    }
    if (!has_cluster) {
      fail(Field{item.node, item.mark, join(item.path, "cluster")}, "required");
    }
    return route;
  }

  static double parse_number(const Field& field, double min, double max) {
    const std::string& text = scalar(field, "a number");
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
        !std::isfinite(value)) {
      fail(field, "expected a number, got " + quoted(text));
    }
    if (value < min || value > max) {
      fail(field, quoted(text) + " out of range (" + fmt::format("{}..{}", min, max) + ")");
    }
    return value;
  }

  static RateLimit parse_rate_limit(const Field& map) {
    RateLimit limit;
    bool has_rate = false;
    for (const auto& [key, value] : entries(map, {"requests_per_second", "burst"})) {
      if (key == "requests_per_second") {
        limit.requests_per_second = parse_number(value, 0.001, 1e9);
        has_rate = true;
      } else {
        limit.burst = static_cast<uint32_t>(parse_integer(value, 1, 1000000000));
      }
    }
    if (!has_rate) {
      fail(Field{map.node, map.mark, join(map.path, "requests_per_second")}, "required");
    }
    return limit;
  }

  static Fault parse_fault(const Field& map) {
    Fault fault;
    for (const auto& [key, value] : entries(map, {"delay", "abort", "header_control"})) {
      if (key == "header_control") {
        fault.header_control = parse_bool(value);
      } else if (key == "delay") {
        fault.delay_percent = 100;
        for (const auto& [k, v] : entries(value, {"fixed", "percent"})) {
          if (k == "fixed") {
            fault.delay = parse_duration(v);
          } else {
            fault.delay_percent = parse_number(v, 0, 100);
          }
        }
      } else {
        fault.abort_percent = 100;
        for (const auto& [k, v] : entries(value, {"status", "percent"})) {
          if (k == "status") {
            fault.abort_status = static_cast<int>(parse_integer(v, 200, 599));
          } else {
            fault.abort_percent = parse_number(v, 0, 100);
          }
        }
        if (fault.abort_status == 0) {
          fail(Field{value.node, value.mark, join(value.path, "status")}, "required");
        }
      }
    }
    return fault;
  }

  static uint8_t parse_retry_on(const Field& list) {
    static constexpr std::pair<std::string_view, uint8_t> kConditions[] = {
        {"connect-failure", kRetryOnConnectFailure},
        {"reset", kRetryOnReset},
        {"5xx", kRetryOn5xx},
        {"gateway-error", kRetryOnGatewayError},
        {"retriable-status-codes", kRetryOnRetriableStatusCodes},
    };
    std::vector<Field> conditions = items(list);
    if (conditions.empty()) {
      fail(list, "must list at least one condition (to never retry, set attempts: 1)");
    }
    uint8_t bits = 0;
    for (const Field& item : conditions) {
      const std::string& name = scalar(item, "a retry condition");
      uint8_t bit = 0;
      std::string valid;
      for (auto [condition, condition_bit] : kConditions) {
        if (name == condition) {
          bit = condition_bit;
        }
        valid += (valid.empty() ? "" : ", ") + std::string(condition);
      }
      if (bit == 0) {
        fail(item, "unknown retry condition " + quoted(name) + " (want one of: " + valid + ")");
      }
      bits |= bit;
    }
    return bits;
  }

  static RetryPolicy parse_retry(const Field& map) {
    RetryPolicy retry;
    std::optional<Field> codes;
    for (const auto& [key, value] :
         entries(map, {"on", "retriable_status_codes", "attempts", "per_try_timeout", "backoff",
                       "retry_after_max", "buffer_limit", "replay_non_idempotent"})) {
      if (key == "on") {
        retry.on = parse_retry_on(value);
      } else if (key == "retriable_status_codes") {
        std::vector<Field> list = items(value);
        if (list.empty()) {
          fail(value, "must list at least one status code");
        }
        for (const Field& item : list) {
          retry.retriable_status_codes.push_back(static_cast<int>(parse_integer(item, 100, 599)));
        }
        codes = value;
      } else if (key == "attempts") {
        retry.attempts = static_cast<uint32_t>(parse_integer(value, 1, 10));
      } else if (key == "per_try_timeout") {
        retry.per_try_timeout = parse_duration(value);
      } else if (key == "backoff") {
        std::optional<Field> base;
        std::optional<Field> max;
        for (const auto& [k, v] : entries(value, {"base", "max"})) {
          if (k == "base") {
            retry.backoff_base = parse_positive_duration(v);
            base = v;
          } else {
            retry.backoff_max = parse_duration(v);
            max = v;
          }
        }
        if (retry.backoff_max < retry.backoff_base) {
          fail(max ? *max : *base,
               max ? "max " + core::format_duration(retry.backoff_max) + " is less than base " +
                         core::format_duration(retry.backoff_base)
                   : "base " + core::format_duration(retry.backoff_base) + " is more than max " +
                         core::format_duration(retry.backoff_max) + " (the default): set max too");
        }
      } else if (key == "retry_after_max") {
        retry.retry_after_max = parse_duration(value);
      } else if (key == "buffer_limit") {
        retry.buffer_limit = parse_size(value);
        if (retry.buffer_limit > kMaxRetryBufferLimit) {
          fail(value, quoted(value.node.Scalar()) + " out of range (0..64MiB)");
        }
      } else {
        retry.replay_non_idempotent = parse_bool(value);
      }
    }
    bool wants_codes = (retry.on & kRetryOnRetriableStatusCodes) != 0;
    if (codes && !wants_codes) {
      fail(*codes, "add retriable-status-codes to retry.on, or these codes are never retried");
    }
    if (wants_codes && !codes) {
      fail(Field{map.node, map.mark, join(map.path, "retriable_status_codes")},
           "required: retry.on lists retriable-status-codes");
    }
    return retry;
  }

  std::vector<WeightedCluster> parse_weighted_clusters(const Field& list) {
    std::vector<WeightedCluster> out;
    uint64_t total = 0;
    for (const Field& item : items(list)) {
      WeightedCluster weighted;
      bool has_name = false;
      bool has_weight = false;
      for (const auto& [key, value] : entries(item, {"name", "weight"})) {
        if (key == "name") {
          weighted.name = parse_name(value);
          cluster_refs_.push_back({value, weighted.name});
          has_name = true;
        } else {
          weighted.weight = static_cast<uint32_t>(parse_integer(value, 0, 1000000));
          has_weight = true;
        }
      }
      if (!has_name || !has_weight) {
        fail(Field{item.node, item.mark, join(item.path, has_name ? "weight" : "name")},
             "required");
      }
      total += weighted.weight;
      out.push_back(std::move(weighted));
    }
    if (total == 0) {
      fail(list, "weights must add up to more than 0");
    }
    return out;
  }

  static std::string parse_regex(const Field& field) {
    std::string pattern = parse_string(field);
    // RE2: linear time whatever the input, no backtracking blow-ups (and no recursion to
    // overflow the stack, unlike std::regex).
    re2::RE2 compiled(pattern, re2::RE2::Quiet);
    if (!compiled.ok()) {
      fail(field, "bad regex " + quoted(pattern) + ": " + compiled.error());
    }
    return pattern;
  }

  static HeaderMatch parse_header_match(const Field& map) {
    HeaderMatch match;
    bool has_name = false;
    int kinds = 0;
    for (const auto& [key, value] :
         entries(map, {"name", "present", "absent", "exact", "prefix", "regex"})) {
      if (key == "name") {
        match.name = parse_name(value);
        has_name = true;
        continue;
      }
      ++kinds;
      if (key == "present" || key == "absent") {
        if (!parse_bool(value)) {
          fail(value, "only true is meaningful here");
        }
        match.kind = key == "present" ? HeaderMatch::Kind::kPresent : HeaderMatch::Kind::kAbsent;
      } else if (key == "exact") {
        match.kind = HeaderMatch::Kind::kExact;
        match.value = parse_string(value);
      } else if (key == "prefix") {
        match.kind = HeaderMatch::Kind::kPrefix;
        match.value = parse_string(value);
      } else {
        match.kind = HeaderMatch::Kind::kRegex;
        match.value = parse_regex(value);
      }
    }
    if (!has_name) {
      fail(Field{map.node, map.mark, join(map.path, "name")}, "required");
    }
    if (kinds > 1) {
      fail(map, "give one of present, absent, exact, prefix, regex");
    }
    return match;
  }

  static RouteMatch parse_match(const Field& map) {
    RouteMatch match;
    std::optional<Field> path;
    for (const auto& [key, value] :
         entries(map, {"host", "path", "path_prefix", "path_regex", "methods", "headers"})) {
      if (key == "host") {
        match.host = parse_string(value);
        auto star = match.host.find('*');
        if (star != std::string::npos &&
            (star != 0 || match.host.size() < 3 || match.host[1] != '.' ||
             match.host.find('*', 1) != std::string::npos)) {
          fail(value, "bad host " + quoted(match.host) + " ('*' only as a leading '*.')");
        }
      } else if (key == "methods") {
        for (const Field& item : items(value)) {
          std::string method = parse_name(item);
          if (!std::all_of(method.begin(), method.end(),
                           [](char c) { return c >= 'A' && c <= 'Z'; })) {
            fail(item, "method " + quoted(method) + " must be upper-case letters");
          }
          match.methods.push_back(std::move(method));
        }
      } else if (key == "headers") {
        for (const Field& item : items(value)) {
          match.headers.push_back(parse_header_match(item));
        }
      } else {
        if (path) {
          fail(value, "only one of path, path_prefix, path_regex");
        }
        path = value;
        if (key == "path_regex") {
          match.path_regex = parse_regex(value);
          continue;
        }
        std::string text = parse_string(value);
        if (!text.starts_with('/')) {
          fail(value, "must start with '/', got " + quoted(text));
        }
        (key == "path" ? match.path : match.path_prefix) = std::move(text);
      }
    }
    return match;
  }

  // "host:port", or {address: "host:port", weight: 1..1000}.
  static ClusterEndpoint parse_endpoint(const Field& field) {
    ClusterEndpoint endpoint;
    if (!field.node.IsMap()) {
      if (!field.node.IsScalar()) {
        fail(field, "expected an address or a map {address, weight}, got " + kind_of(field.node));
      }
      endpoint.address = parse_address(field, false);
      return endpoint;
    }
    bool has_address = false;
    for (const auto& [key, value] : entries(field, {"address", "weight"})) {
      if (key == "address") {
        endpoint.address = parse_address(value, false);
        has_address = true;
      } else {
        endpoint.weight = static_cast<uint32_t>(parse_integer(value, 1, 1000));
      }
    }
    if (!has_address) {
      fail(Field{field.node, field.mark, join(field.path, "address")}, "required");
    }
    return endpoint;
  }

  static LbPolicy parse_lb_policy(const Field& field) {
    const std::string& text = scalar(field, "a load balancing policy");
    if (text == "least_request") {
      return LbPolicy::kLeastRequest;
    }
    if (text == "round_robin") {
      return LbPolicy::kRoundRobin;
    }
    if (text == "random") {
      return LbPolicy::kRandom;
    }
    fail(field,
         "unknown lb_policy " + quoted(text) + " (want least_request, round_robin or random)");
  }

  static CircuitBreakers parse_circuit_breakers(const Field& map) {
    CircuitBreakers breakers;
    for (const auto& [key, value] :
         entries(map, {"max_connections", "max_pending_requests", "max_requests", "max_retries"})) {
      auto limit = static_cast<uint32_t>(parse_integer(value, 1, 1000000));
      if (key == "max_connections") {
        breakers.max_connections = limit;
      } else if (key == "max_pending_requests") {
        breakers.max_pending_requests = limit;
      } else if (key == "max_requests") {
        breakers.max_requests = limit;
      } else {
        breakers.max_retries = limit;
      }
    }
    return breakers;
  }

  static RetryBudget parse_retry_budget(const Field& map) {
    RetryBudget budget;
    for (const auto& [key, value] : entries(map, {"percent", "min_concurrency"})) {
      if (key == "percent") {
        budget.percent = parse_number(value, 0, 100);
      } else {
        budget.min_concurrency = static_cast<uint32_t>(parse_integer(value, 0, 1000000));
      }
    }
    return budget;
  }

  static OutlierDetection parse_outlier_detection(const Field& map) {
    OutlierDetection outlier;
    std::optional<Field> base;
    std::optional<Field> max;
    for (const auto& [key, value] : entries(map, {"consecutive_failures", "base_ejection_time",
                                                  "max_ejection_time", "max_ejection_percent"})) {
      if (key == "consecutive_failures") {
        outlier.consecutive_failures = static_cast<uint32_t>(parse_integer(value, 1, 1000));
      } else if (key == "base_ejection_time") {
        outlier.base_ejection_time = parse_positive_duration(value);
        base = value;
      } else if (key == "max_ejection_time") {
        outlier.max_ejection_time = parse_duration(value);
        max = value;
      } else {
        outlier.max_ejection_percent = static_cast<uint32_t>(parse_integer(value, 0, 100));
      }
    }
    if (outlier.max_ejection_time < outlier.base_ejection_time) {
      fail(max ? *max : *base,
           max ? "max_ejection_time " + core::format_duration(outlier.max_ejection_time) +
                     " is less than base_ejection_time " +
                     core::format_duration(outlier.base_ejection_time)
               : "base_ejection_time " + core::format_duration(outlier.base_ejection_time) +
                     " is more than max_ejection_time " +
                     core::format_duration(outlier.max_ejection_time) +
                     " (the default): set max_ejection_time too");
    }
    return outlier;
  }

  // Goes into a request line or a header as is: no whitespace or control characters.
  static void check_header_safe(const Field& field, const std::string& text) {
    for (char c : text) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        fail(field, quoted(text) + " must not contain spaces or control characters");
      }
    }
  }

  static HealthCheck parse_health_check(const Field& map) {
    HealthCheck check;
    std::optional<Field> interval;
    std::optional<Field> timeout;
    for (const auto& [key, value] : entries(map, {"path", "host", "interval", "timeout",
                                                  "healthy_threshold", "unhealthy_threshold"})) {
      if (key == "path") {
        check.path = parse_string(value);
        if (!check.path.starts_with('/')) {
          fail(value, "must start with '/', got " + quoted(check.path));
        }
        check_header_safe(value, check.path);
      } else if (key == "host") {
        check.host = parse_string(value);
        check_header_safe(value, check.host);
      } else if (key == "interval") {
        check.interval = parse_positive_duration(value);
        interval = value;
      } else if (key == "timeout") {
        check.timeout = parse_positive_duration(value);
        timeout = value;
      } else {
        auto threshold = static_cast<uint32_t>(parse_integer(value, 1, 100));
        (key == "healthy_threshold" ? check.healthy_threshold : check.unhealthy_threshold) =
            threshold;
      }
    }
    if (check.timeout > check.interval) {
      fail(timeout ? *timeout : *interval, "timeout " + core::format_duration(check.timeout) +
                                               " is longer than interval " +
                                               core::format_duration(check.interval) +
                                               (timeout ? "" : " (timeout defaults to 1s)"));
    }
    return check;
  }

  std::vector<Cluster> parse_clusters(const Field& list) {
    std::vector<Cluster> clusters;
    std::set<std::string> names;
    for (const Field& item : items(list)) {
      Cluster cluster;
      bool has_name = false;
      bool has_endpoints = false;
      for (const auto& [key, value] :
           entries(item, {"name", "endpoints", "lb_policy", "dns_refresh", "connect_timeout",
                          "pool", "circuit_breakers", "retry_budget", "outlier_detection",
                          "health_check", "panic_threshold", "tls"})) {
        if (key == "name") {
          cluster.name = parse_name(value);
          has_name = true;
          if (!names.insert(cluster.name).second) {
            fail(value, "duplicate cluster name " + quoted(cluster.name));
          }
        } else if (key == "endpoints") {
          std::vector<Field> endpoints = items(value);
          if (endpoints.empty()) {
            fail(value, "must list at least one endpoint");
          }
          for (const Field& endpoint : endpoints) {
            cluster.endpoints.push_back(parse_endpoint(endpoint));
          }
          has_endpoints = true;
        } else if (key == "lb_policy") {
          cluster.lb_policy = parse_lb_policy(value);
        } else if (key == "dns_refresh") {
          cluster.dns_refresh = parse_positive_duration(value);
        } else if (key == "connect_timeout") {
          cluster.connect_timeout = parse_duration(value);
        } else if (key == "circuit_breakers") {
          cluster.circuit_breakers = parse_circuit_breakers(value);
        } else if (key == "retry_budget") {
          cluster.retry_budget = parse_retry_budget(value);
        } else if (key == "outlier_detection") {
          cluster.outlier_detection = parse_outlier_detection(value);
        } else if (key == "health_check") {
          cluster.health_check = parse_health_check(value);
        } else if (key == "panic_threshold") {
          cluster.panic_threshold = static_cast<uint32_t>(parse_integer(value, 0, 100));
        } else if (key == "tls") {
          cluster.tls = parse_cluster_tls(value);
          identity_uses_.push_back(value);
        } else {
          for (const auto& [pool_key, pool_value] : entries(value, {"max_idle", "idle_timeout"})) {
            if (pool_key == "max_idle") {
              cluster.max_idle_connections = static_cast<int>(parse_integer(pool_value, 0, 65536));
            } else {
              cluster.idle_timeout = parse_duration(pool_value);
            }
          }
        }
      }
      if (!has_name) {
        fail(Field{item.node, item.mark, join(item.path, "name")}, "required");
      }
      if (!has_endpoints) {
        fail(Field{item.node, item.mark, join(item.path, "endpoints")}, "required");
      }
      clusters.push_back(std::move(cluster));
    }
    return clusters;
  }

  static AccessLog parse_access_log(const Field& field) {
    AccessLog log;
    if (field.node.IsScalar() && (field.node.Scalar() == "off" || field.node.Scalar() == "false")) {
      log.enabled = false;
      return log;
    }
    if (!field.node.IsMap()) {
      fail(field, "expected a map or 'off', got " + kind_of(field.node));
    }
    for (const auto& [key, value] : entries(field, {"path", "format"})) {
      if (key == "path") {
        log.path = parse_name(value);
      } else {
        const std::string& format = scalar(value, "a format");
        if (format == "text") {
          log.format = AccessLogFormat::kText;
        } else if (format == "json") {
          log.format = AccessLogFormat::kJson;
        } else {
          fail(value, "unknown format " + quoted(format) + " (want text or json)");
        }
      }
    }
    return log;
  }

  static Limits parse_limits(const Field& map) {
    Limits limits;
    for (const auto& [key, value] : entries(
             map,
             {"max_request_header_bytes", "max_response_header_bytes", "max_request_body_bytes"})) {
      uint64_t size = parse_size(value);
      if (key == "max_request_body_bytes") {
        limits.max_request_body_bytes = size;
        continue;
      }
      if (size == 0) {
        fail(value, "must be at least 1 byte");
      }
      (key == "max_request_header_bytes" ? limits.max_request_header_bytes
                                         : limits.max_response_header_bytes) = size;
    }
    return limits;
  }

  static Timeouts parse_timeouts(const Field& map) {
    Timeouts timeouts;
    for (const auto& [key, value] :
         entries(map, {"request_headers", "idle", "stream_idle", "drain"})) {
      Duration duration = parse_duration(value);
      if (key == "request_headers") {
        timeouts.request_headers = duration;
      } else if (key == "idle") {
        timeouts.idle = duration;
      } else if (key == "stream_idle") {
        timeouts.stream_idle = duration;
      } else {
        timeouts.drain = duration;
      }
    }
    return timeouts;
  }

  static uint8_t parse_trace_formats(const Field& list) {
    uint8_t bits = 0;
    for (const Field& item : items(list)) {
      const std::string& name = scalar(item, "a propagation format");
      if (name == "w3c") {
        bits |= kTraceW3c;
      } else if (name == "b3") {
        bits |= kTraceB3;
      } else if (name == "b3multi") {
        bits |= kTraceB3Multi;
      } else {
        fail(item, "unknown propagation format " + quoted(name) + " (want w3c, b3 or b3multi)");
      }
    }
    return bits;
  }

  static TraceExport parse_trace_export(const Field& map) {
    TraceExport out;
    bool has_endpoint = false;
    for (const auto& [key, value] :
         entries(map, {"endpoint", "format", "service_name", "batch_size", "flush_interval",
                       "max_queued_spans"})) {
      if (key == "endpoint") {
        out.endpoint = parse_string(value);
        auto authority = std::string_view(out.endpoint).substr(0, out.endpoint.find('/', 7));
        if (!out.endpoint.starts_with("http://") || !core::parse_http_url(authority)) {
          fail(value, "bad endpoint " + quoted(out.endpoint) + " (want http://host:port/path)");
        }
        has_endpoint = true;
      } else if (key == "format") {
        const std::string& format = scalar(value, "otlp or zipkin");
        if (format != "otlp" && format != "zipkin") {
          fail(value, "unknown format " + quoted(format) + " (want otlp or zipkin)");
        }
        out.zipkin = format == "zipkin";
      } else if (key == "service_name") {
        out.service_name = parse_string(value);
      } else if (key == "batch_size") {
        out.batch_size = static_cast<uint32_t>(parse_integer(value, 1, 100000));
      } else if (key == "flush_interval") {
        out.flush_interval = parse_duration(value);
      } else {
        out.max_queued_spans = static_cast<uint32_t>(parse_integer(value, 1, 10000000));
      }
    }
    if (!has_endpoint) {
      fail(Field{map.node, map.mark, join(map.path, "endpoint")}, "required");
    }
    return out;
  }

  static Tracing parse_tracing(const Field& map) {
    Tracing tracing;
    for (const auto& [key, value] : entries(map, {"sampling", "accept", "emit", "export"})) {
      if (key == "accept") {
        tracing.accept = parse_trace_formats(value);
        continue;
      }
      if (key == "emit") {
        tracing.emit = parse_trace_formats(value);
        continue;
      }
      if (key == "export") {
        tracing.exporter = parse_trace_export(value);
        continue;
      }
      const std::string& text = scalar(value, "a number");
      double sampling = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), sampling);
      if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
          !std::isfinite(sampling)) {
        fail(value, "expected a number, got " + quoted(text));
      }
      if (sampling < 0 || sampling > 1) {
        fail(value, "sampling " + quoted(text) + " out of range (0..1)");
      }
      tracing.sampling = sampling;
    }
    return tracing;
  }

  std::vector<Reference> route_refs_;
  std::vector<Reference> cluster_refs_;
  std::vector<Field> identity_uses_;    // keys that need the workload identity (top-level tls)
  std::vector<Reference> route_rules_;  // route authorization with rules, by table
};

// Messages are one line: a key or value with a newline in it must not break that.
std::string one_line(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string position(std::string_view file_name, const YAML::Mark& mark) {
  int line = mark.is_null() || mark.line < 0 ? 1 : mark.line + 1;
  int column = mark.is_null() || mark.column < 0 ? 1 : mark.column + 1;
  return std::string(file_name) + ":" + std::to_string(line) + ":" + std::to_string(column);
}

// Counts documents and where each starts. yaml-cpp 0.7's LoadAll loops forever, allocating, on
// input such as ", {" (the parser reports a document without consuming a token; fixed upstream in
// yaml-cpp PR #1319), so documents are counted here with a bounded number of calls instead.
struct DocumentCounter : YAML::EventHandler {
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::vector<YAML::Mark> starts;
};

// Rejects a second document, and input the parser cannot make progress on. Throws yaml-cpp's
// ParserException on syntax errors.
std::optional<LoadError> check_documents(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  // A third call tells a real second document from the parser being stuck on one token.
  for (int i = 0; i < 3 && parser.HandleNextDocument(counter); ++i) {
  }
  const auto& starts = counter.starts;
  if (starts.size() >= 2 && starts.back().pos == starts[starts.size() - 2].pos) {
    const YAML::Mark& mark = starts.back();
    std::string what = "unexpected character";
    if (mark.pos >= 0 && static_cast<size_t>(mark.pos) < text.size()) {
      what = "unexpected " + quoted(std::string_view(text).substr(mark.pos, 1));
    }
    return LoadError{mark, "syntax error", what};
  }
  if (starts.size() >= 2) {
    return LoadError{starts[1], "syntax error", "expected one document, found more"};
  }
  return std::nullopt;
}

LoadResult failure(std::string message) {
  return LoadResult{nullptr, one_line(std::move(message))};
}

}  // namespace

LoadResult load_yaml(std::string_view text, std::string_view file_name) {
  if (auto deep = find_excessive_nesting(text)) {
    return failure(std::string(file_name) + ":" + std::to_string(deep->line) + ":" +
                   std::to_string(deep->column) + ": syntax error: nesting deeper than " +
                   std::to_string(kMaxNesting) + " levels");
  }
  try {
    std::string copy(text);
    if (auto error = check_documents(copy)) {
      throw *error;
    }
    YAML::Node root = YAML::Load(copy);
    Field field{root, root.Mark(), ""};
    if (!root.IsMap()) {
      return failure(position(file_name, root.Mark()) + ": " + kTopLevel +
                     ": expected a map, got " + kind_of(root));
    }
    Snapshot snapshot = Loader().load(field);
    return LoadResult{std::make_shared<const Snapshot>(std::move(snapshot)), ""};
  } catch (const LoadError& error) {
    return failure(position(file_name, error.mark) + ": " + error.path + ": " + error.what);
  } catch (const YAML::Exception& error) {
    return failure(position(file_name, error.mark) + ": syntax error: " + error.msg);
  } catch (const std::exception& error) {
    return failure(std::string(file_name) + ":1:1: syntax error: " + error.what());
  }
}

LoadResult load_file(const std::string& path) {
  // POSIX calls rather than ifstream: they report why (ENOENT, EACCES, EISDIR...) through errno.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return failure(path + ": cannot read: " + std::strerror(errno));
  }
  std::string text;
  char buffer[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return failure(path + ": cannot read: " + std::strerror(error));
    }
    if (n == 0) {
      break;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return load_yaml(text, path);
}

Snapshot transparent_sidecar(bool ipv6) {
  Snapshot snapshot;
  // Field by field: GCC 12 at -O3 misreads aggregate temporaries here as maybe-uninitialized.
  auto add = [&snapshot](const char* name, const char* host, uint16_t port, ListenerMode mode) {
    Listener& listener = snapshot.listeners.emplace_back();
    listener.name = name;
    listener.address.host = host;
    listener.address.port = port;
    listener.mode = mode;
    listener.routes.clear();
  };
  add("outbound", "0.0.0.0", 15001, ListenerMode::kTransparentOutbound);
  add("inbound", "0.0.0.0", 15006, ListenerMode::kTransparentInbound);
  if (ipv6) {
    // `pillion init` redirects IPv6 too: without these its redirected connections would be
    // refused.
    add("outbound-ipv6", "::", 15001, ListenerMode::kTransparentOutbound);
    add("inbound-ipv6", "::", 15006, ListenerMode::kTransparentInbound);
  }
  snapshot.metrics = HostPort{"0.0.0.0", 15090};
  snapshot.readiness = HostPort{"0.0.0.0", 15021};
  return snapshot;
}

LoadResult from_flags(std::string_view listen, std::string_view upstream_url) {
  auto address = core::parse_host_port(listen);
  if (!address) {
    return failure("--listen: bad address " + quoted(listen) + " (want host:port)");
  }
  auto upstream = core::parse_http_url(upstream_url);
  if (!upstream || upstream->port == 0) {
    return failure("--upstream: bad URL " + quoted(upstream_url) + " (want http://host:port)");
  }
  Snapshot snapshot;
  Listener& listener = snapshot.listeners.emplace_back();  // field by field, as below
  listener.name = "explicit";
  listener.address = *address;
  listener.mode = ListenerMode::kHttp;
  listener.routes = "default";
  Route route;  // field by field: clang warns on aggregates with members left out
  route.cluster = "upstream";
  snapshot.routes["default"].push_back(std::move(route));
  Cluster cluster;
  cluster.name = "upstream";
  cluster.endpoints.push_back(ClusterEndpoint{*upstream, 1});
  snapshot.clusters.push_back(std::move(cluster));
  return LoadResult{std::make_shared<const Snapshot>(std::move(snapshot)), ""};
}

}  // namespace pillion::config
