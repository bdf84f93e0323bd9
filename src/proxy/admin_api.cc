#include "proxy/admin_api.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "proxy/app_probe.h"

namespace pillion::proxy {

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kJson = "application/json";

constexpr std::string_view kIndex =
    "admin endpoints:\n"
    "  GET  /ready /stats /stats/prometheus /server_info /config_dump /clusters /memory\n"
    "  POST /logging?level=LEVEL /healthcheck/fail /healthcheck/ok /drain /quitquitquit\n";

admin::AdminResponse json_response(const nlohmann::json& body) {
  return {200, kJson, body.dump(2) + "\n"};
}

std::string_view mode_name(config::ListenerMode mode) {
  switch (mode) {
    case config::ListenerMode::kHttp:
      return "http";
    case config::ListenerMode::kTransparentOutbound:
      return "transparent_outbound";
    case config::ListenerMode::kTransparentInbound:
      return "transparent_inbound";
  }
  return "unknown";
}

std::string_view destination_name(Destination destination) {
  switch (destination) {
    case Destination::kEndpoints:
      return "endpoints";
    case Destination::kOriginalDestination:
      return "original_destination";
    case Destination::kLocalApp:
      return "local_app";
  }
  return "unknown";
}

// The snapshot in force. Nothing in it is secret today; when credentials arrive (TLS keys,
// tokens) they are left out here by construction, not masked afterwards.
nlohmann::json config_dump(const Runtime& runtime) {
  const auto& config = *runtime.config;
  nlohmann::json listeners = nlohmann::json::array();
  for (const auto& listener : config.listeners) {
    listeners.push_back({{"name", listener.name},
                         {"address", listener.address.to_string()},
                         {"mode", mode_name(listener.mode)},
                         {"routes", listener.routes}});
  }
  nlohmann::json routes = nlohmann::json::object();
  for (const auto& [name, table] : config.routes) {
    auto& list = routes[name] = nlohmann::json::array();
    for (const auto& route : table) {
      nlohmann::json weighted = nlohmann::json::array();
      for (const auto& split : route.weighted_clusters) {
        weighted.push_back({{"name", split.name}, {"weight", split.weight}});
      }
      list.push_back({{"host", route.match.host},
                      {"path", route.match.path},
                      {"path_prefix", route.match.path_prefix},
                      {"path_regex", route.match.path_regex},
                      {"methods", route.match.methods},
                      {"cluster", route.cluster},
                      {"weighted_clusters", weighted},
                      {"timeout", core::format_duration(route.timeout)}});
    }
  }
  nlohmann::json clusters = nlohmann::json::array();
  for (const auto& cluster : config.clusters) {
    nlohmann::json endpoints = nlohmann::json::array();
    for (const auto& endpoint : cluster.endpoints) {
      endpoints.push_back(endpoint.to_string());
    }
    clusters.push_back({{"name", cluster.name},
                        {"endpoints", endpoints},
                        {"connect_timeout", core::format_duration(cluster.connect_timeout)}});
  }
  const auto& transparent = config.transparent;
  return {
      {"version", config.version},
      {"node", {{"id", config.node.id}, {"service", config.node.service}}},
      {"workers", config.workers},
      {"admin", config.admin.to_string()},
      {"metrics", config.metrics ? config.metrics->to_string() : "off"},
      {"readiness", config.readiness ? config.readiness->to_string() : "off"},
      {"listeners", listeners},
      {"routes", routes},
      {"clusters", clusters},
      {"timeouts",
       {{"request_headers", core::format_duration(config.timeouts.request_headers)},
        {"idle", core::format_duration(config.timeouts.idle)},
        {"stream_idle", core::format_duration(config.timeouts.stream_idle)},
        {"drain", core::format_duration(config.timeouts.drain)}}},
      {"transparent",
       {{"detect_timeout", core::format_duration(transparent.detect_timeout)},
        {"server_first_ports", transparent.server_first_ports},
        {"opaque_ports", transparent.opaque_ports},
        {"inbound_source", transparent.inbound_source}}},
      {"access_log", {{"enabled", config.access_log.enabled}, {"path", config.access_log.path}}}};
}

nlohmann::json clusters(const Runtime& runtime) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& cluster : runtime.clusters) {
    nlohmann::json endpoints = nlohmann::json::array();
    for (size_t id : cluster.endpoints) {
      const auto& endpoint = runtime.endpoints[id];
      endpoints.push_back({{"address", endpoint.label},
                           {"authority", endpoint.authority},
                           {"health", "healthy"}});  // no health checking yet: always routable
    }
    list.push_back({{"name", cluster.config->name},
                    {"destination", destination_name(cluster.destination)},
                    {"endpoints", endpoints}});
  }
  return {{"clusters", list}};
}

nlohmann::json memory() {
  long pages = 0;
  long resident = 0;
  std::ifstream statm("/proc/self/statm");
  statm >> pages >> resident;
  auto page_size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  struct mallinfo2 heap = ::mallinfo2();
  return {{"rss_bytes", static_cast<uint64_t>(resident) * page_size},
          {"virtual_bytes", static_cast<uint64_t>(pages) * page_size},
          {"heap_allocated_bytes", heap.uordblks + heap.hblkhd},
          {"heap_free_bytes", heap.fordblks},
          {"heap_mmapped_bytes", heap.hblkhd}};
}

}  // namespace

admin::AdminResponse handle_admin(std::string_view method, std::string_view path,
                                  std::string_view query, AdminContext& context) {
  auto& lifecycle = context.lifecycle;
  bool post = method == "POST";
  auto needs_post = [&] {
    return admin::AdminResponse{405, kText, fmt::format("use POST {}\n", path)};
  };
  if (path == "/ready") {
    if (lifecycle.draining()) {
      return {503, kText, "DRAINING\n"};
    }
    return lifecycle.ready() ? admin::AdminResponse{200, kText, "LIVE\n"}
                             : admin::AdminResponse{503, kText, "HEALTHCHECK FAILED\n"};
  }
  if (path == "/stats") {
    return {200, kText, context.stats.render_text()};
  }
  if (path == "/stats/prometheus") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", context.stats.render_prometheus()};
  }
  if (path == "/server_info") {
    const auto& config = *context.runtime.config;
    return json_response(
        {{"version", PILLION_VERSION},
         {"state", lifecycle.draining() ? "DRAINING" : "LIVE"},
         {"workers", context.workers},
         {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::steady_clock::now() - lifecycle.started())
                                .count()},
         {"node", {{"id", config.node.id}, {"service", config.node.service}}}});
  }
  if (path == "/config_dump") {
    return json_response(config_dump(context.runtime));
  }
  if (path == "/clusters") {
    return json_response(clusters(context.runtime));
  }
  if (path == "/memory") {
    return json_response(memory());
  }
  if (path == "/logging") {
    if (!post) {
      return {405, kText, "use POST /logging?level=debug\n"};
    }
    constexpr std::string_view kKey = "level=";
    if (!query.starts_with(kKey) || !core::set_log_level(query.substr(kKey.size()))) {
      return {400, kText, "level must be one of trace, debug, info, warn, error, off\n"};
    }
    return {200, kText, fmt::format("level set to {}\n", query.substr(kKey.size()))};
  }
  if (path == "/healthcheck/fail" || path == "/healthcheck/ok") {
    if (!post) {
      return needs_post();
    }
    bool fail = path == "/healthcheck/fail";
    lifecycle.set_health_failed(fail);
    return {200, kText, fail ? "readiness now fails\n" : "readiness restored\n"};
  }
  if (path == "/drain") {
    if (!post) {
      return needs_post();
    }
    if (!lifecycle.draining()) {
      lifecycle.drain("POST /drain");
    }
    return {200, kText, "draining\n"};
  }
  if (path == "/quitquitquit") {
    if (!post) {
      return needs_post();
    }
    lifecycle.quit("POST /quitquitquit");
    return {200, kText, "exiting\n"};
  }
  return {404, kText, std::string(kIndex)};
}

admin::AdminResponse handle_readiness(std::string_view path, const Lifecycle& lifecycle,
                                      const config::Snapshot& config) {
  constexpr std::string_view kAppHealth = "/app-health/";
  if (path.starts_with(kAppHealth)) {
    auto probe = config.app_probes.find(std::string(path.substr(kAppHealth.size())));
    if (probe == config.app_probes.end()) {
      return {404, kText, "no such app probe (readiness.app_probes)\n"};
    }
    admin::AdminResponse response;
    response.deferred = [name = probe->first, &settings = probe->second] {
      return probe_app(name, settings);
    };
    return response;
  }
  if (path != "/healthz/ready") {
    return {404, kText, "readiness is at /healthz/ready (and /app-health/<name>)\n"};
  }
  if (lifecycle.draining()) {
    return {503, kText, "draining\n"};
  }
  if (!lifecycle.ready()) {
    return {503, kText, "health check failed (POST /healthcheck/ok on the admin port)\n"};
  }
  return {200, kText, "ready\n"};
}

}  // namespace pillion::proxy
