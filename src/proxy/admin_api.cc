#include "proxy/admin_api.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "proxy/app_probe.h"
#include "proxy/cluster_metrics.h"

namespace pillion::proxy {

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kJson = "application/json";

constexpr std::string_view kIndex =
    "admin endpoints:\n"
    "  GET  /ready /stats /stats/prometheus /server_info /config_dump /clusters /certs /memory\n"
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
const char* lb_policy_name(config::LbPolicy policy) {
  switch (policy) {
    case config::LbPolicy::kRoundRobin:
      return "round_robin";
    case config::LbPolicy::kRandom:
      return "random";
    case config::LbPolicy::kLeastRequest:
      break;
  }
  return "least_request";
}

nlohmann::json retry_json(const std::optional<config::RetryPolicy>& retry) {
  if (!retry) {
    return nullptr;
  }
  nlohmann::json on = nlohmann::json::array();
  for (auto [bit, name] :
       {std::pair{config::kRetryOnConnectFailure, "connect-failure"},
        std::pair{config::kRetryOnReset, "reset"}, std::pair{config::kRetryOn5xx, "5xx"},
        std::pair{config::kRetryOnGatewayError, "gateway-error"},
        std::pair{config::kRetryOnRetriableStatusCodes, "retriable-status-codes"}}) {
    if (retry->on & bit) {
      on.push_back(name);
    }
  }
  return {{"on", on},
          {"retriable_status_codes", retry->retriable_status_codes},
          {"attempts", retry->attempts},
          {"per_try_timeout", core::format_duration(retry->per_try_timeout)},
          {"backoff",
           {{"base", core::format_duration(retry->backoff_base)},
            {"max", core::format_duration(retry->backoff_max)}}},
          {"retry_after_max", core::format_duration(retry->retry_after_max)},
          {"buffer_limit", retry->buffer_limit},
          {"replay_non_idempotent", retry->replay_non_idempotent}};
}

nlohmann::json cluster_json(const config::Cluster& cluster) {
  nlohmann::json endpoints = nlohmann::json::array();
  for (const auto& endpoint : cluster.endpoints) {
    endpoints.push_back({{"address", endpoint.address.to_string()}, {"weight", endpoint.weight}});
  }
  const auto& breakers = cluster.circuit_breakers;
  nlohmann::json out = {{"name", cluster.name},
                        {"endpoints", endpoints},
                        {"lb_policy", lb_policy_name(cluster.lb_policy)},
                        {"dns_refresh", core::format_duration(cluster.dns_refresh)},
                        {"connect_timeout", core::format_duration(cluster.connect_timeout)},
                        {"pool",
                         {{"max_idle", cluster.max_idle_connections},
                          {"idle_timeout", core::format_duration(cluster.idle_timeout)}}},
                        {"circuit_breakers",
                         {{"max_connections", breakers.max_connections},
                          {"max_pending_requests", breakers.max_pending_requests},
                          {"max_requests", breakers.max_requests},
                          {"max_retries", breakers.max_retries}}},
                        {"retry_budget",
                         {{"percent", cluster.retry_budget.percent},
                          {"min_concurrency", cluster.retry_budget.min_concurrency}}},
                        {"panic_threshold", cluster.panic_threshold},
                        {"outlier_detection", nullptr},
                        {"health_check", nullptr}};
  if (const auto& outlier = cluster.outlier_detection) {
    out["outlier_detection"] = {
        {"consecutive_failures", outlier->consecutive_failures},
        {"base_ejection_time", core::format_duration(outlier->base_ejection_time)},
        {"max_ejection_time", core::format_duration(outlier->max_ejection_time)},
        {"max_ejection_percent", outlier->max_ejection_percent}};
  }
  if (const auto& check = cluster.health_check) {
    out["health_check"] = {{"path", check->path},
                           {"host", check->host},
                           {"interval", core::format_duration(check->interval)},
                           {"timeout", core::format_duration(check->timeout)},
                           {"healthy_threshold", check->healthy_threshold},
                           {"unhealthy_threshold", check->unhealthy_threshold}};
  }
  return out;
}

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
                      {"timeout", core::format_duration(route.timeout)},
                      {"retry", retry_json(route.retry)}});
    }
  }
  nlohmann::json clusters = nlohmann::json::array();
  for (const auto& cluster : config.clusters) {
    clusters.push_back(cluster_json(cluster));
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

// Each cluster's endpoints as the data path sees them now: health (active checks), ejection
// (outlier detection), requests in flight, and the breakers' use against their limits.
nlohmann::json clusters(const Runtime& runtime) {
  using Resource = upstream::ClusterLimits::Resource;
  nlohmann::json list = nlohmann::json::array();
  auto now = upstream::Clock::now();
  for (const auto& cluster : runtime.clusters) {
    nlohmann::json item = {{"name", cluster.config->name},
                           {"destination", destination_name(cluster.destination)}};
    nlohmann::json endpoints = nlohmann::json::array();
    if (cluster.state) {
      auto hosts = cluster.state->hosts();
      for (const auto& host : hosts->hosts) {
        bool failed_check = host->failed_active_check.load(std::memory_order_relaxed);
        bool ejected = host->ejected(now);
        endpoints.push_back(
            {{"address", host->label()},
             {"authority", host->authority()},
             {"weight", host->weight()},
             {"health", failed_check ? "unhealthy" : "healthy"},
             {"ejected", ejected},
             {"times_ejected", host->times_ejected.load(std::memory_order_relaxed)},
             {"consecutive_failures", host->consecutive_failures.load(std::memory_order_relaxed)},
             {"active_requests", host->total_active()},
             {"available", host->available(now)}});
      }
      auto& limits = cluster.state->limits();
      nlohmann::json breakers = nlohmann::json::object();
      for (auto [resource, name] :
           {std::pair{Resource::kConnections, "connections"},
            std::pair{Resource::kPendingRequests, "pending_requests"},
            std::pair{Resource::kRequests, "requests"}, std::pair{Resource::kRetries, "retries"}}) {
        breakers[name] = {{"active", limits.in_use(resource)},
                          {"limit", limits.limit(resource)},
                          {"overflows", limits.overflows(resource)}};
      }
      item["circuit_breakers"] = breakers;
      item["lb_policy"] = lb_policy_name(cluster.config->lb_policy);
    }
    item["endpoints"] = endpoints;
    list.push_back(std::move(item));
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

std::string render_metrics(const AdminContext& context) {
  std::string text = context.stats.render_prometheus();
  render_cluster_metrics(*context.runtime, text);
  if (context.identity != nullptr) {
    render_tls_metrics(*context.identity, text);
  }
  return text;
}

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
    return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(context)};
  }
  if (path == "/server_info") {
    const auto& config = *context.runtime->config;
    return json_response(
        {{"version", PILLION_VERSION},
         {"config_version", config.version},
         {"config_reloads",
          {{"ok", context.stats.config_reloads_ok.get()},
           {"failed", context.stats.config_reloads_failed.get()}}},
         {"state", lifecycle.draining() ? "DRAINING" : "LIVE"},
         {"workers", context.workers},
         {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::steady_clock::now() - lifecycle.started())
                                .count()},
         {"node", {{"id", config.node.id}, {"service", config.node.service}}}});
  }
  if (path == "/config_dump") {
    return json_response(config_dump(*context.runtime));
  }
  if (path == "/clusters") {
    return json_response(clusters(*context.runtime));
  }
  if (path == "/certs") {
    if (context.identity == nullptr) {
      return {404, kText, "no workload certificate: the config has no tls section\n"};
    }
    return json_response(context.identity->certs_json());
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
