#include "proxy/cluster_metrics.h"

#include <algorithm>
#include <array>
#include <functional>

#include "observe/exposition.h"

namespace pillion::proxy {

namespace {

using Resource = upstream::ClusterLimits::Resource;
using observe::Label;

constexpr std::array<std::pair<Resource, const char*>, 4> kResources{{
    {Resource::kConnections, "connections"},
    {Resource::kPendingRequests, "pending_requests"},
    {Resource::kRequests, "requests"},
    {Resource::kRetries, "retries"},
}};

// One family with a sample per configured cluster (built-in clusters have no shared state).
void per_cluster(observe::Exposition& out, const Runtime& runtime, std::string_view name,
                 std::string_view type, std::string_view help,
                 const std::function<void(const ClusterRuntime&, std::string_view)>& samples) {
  // A family without samples says nothing (a transparent sidecar has only built-in clusters).
  if (std::none_of(runtime.clusters.begin(), runtime.clusters.end(),
                   [](const ClusterRuntime& cluster) { return cluster.state != nullptr; })) {
    return;
  }
  out.family(name, type, help);
  for (const auto& cluster : runtime.clusters) {
    if (cluster.state) {
      samples(cluster, cluster.config->name);
    }
  }
}

}  // namespace

void render_cluster_metrics(const Runtime& runtime, std::string& out) {
  observe::Exposition exposition;
  auto now = upstream::Clock::now();
  per_cluster(exposition, runtime, "pillion_cluster_endpoints", "gauge",
              "Endpoints of a cluster by state: available, ejected (outlier detection), "
              "unhealthy (active health checks).",
              [&](const ClusterRuntime& cluster, std::string_view name) {
                uint64_t available = 0, ejected = 0, unhealthy = 0;
                for (const auto& host : cluster.state->hosts()->hosts) {
                  available += host->available(now) ? 1 : 0;
                  ejected += host->ejected(now) ? 1 : 0;
                  unhealthy += host->failed_active_check.load(std::memory_order_relaxed) ? 1 : 0;
                }
                for (auto [state, value] :
                     {std::pair{"available", available}, std::pair{"ejected", ejected},
                      std::pair{"unhealthy", unhealthy}}) {
                  std::array labels{Label{"cluster", name}, Label{"state", state}};
                  exposition.sample("pillion_cluster_endpoints", labels, value);
                }
              });
  per_cluster(exposition, runtime, "pillion_cluster_breaker_active", "gauge",
              "Circuit-breaker resources in use (connections, pending and active requests, "
              "retries).",
              [&](const ClusterRuntime& cluster, std::string_view name) {
                for (auto [resource, resource_name] : kResources) {
                  std::array labels{Label{"cluster", name}, Label{"resource", resource_name}};
                  exposition.sample("pillion_cluster_breaker_active", labels,
                                    cluster.state->limits().in_use(resource));
                }
              });
  per_cluster(exposition, runtime, "pillion_cluster_breaker_overflows_total", "counter",
              "Requests refused because a circuit breaker was full (503 UO; retries: URX).",
              [&](const ClusterRuntime& cluster, std::string_view name) {
                for (auto [resource, resource_name] : kResources) {
                  std::array labels{Label{"cluster", name}, Label{"resource", resource_name}};
                  exposition.sample("pillion_cluster_breaker_overflows_total", labels,
                                    cluster.state->limits().overflows(resource));
                }
              });
  per_cluster(exposition, runtime, "pillion_cluster_retry_budget_exhausted_total", "counter",
              "Retries refused by the cluster's retry budget.",
              [&](const ClusterRuntime& cluster, std::string_view name) {
                std::array labels{Label{"cluster", name}};
                exposition.sample("pillion_cluster_retry_budget_exhausted_total", labels,
                                  cluster.state->limits().budget_exhausted());
              });
  per_cluster(exposition, runtime, "pillion_cluster_ejections_total", "counter",
              "Endpoints ejected by outlier detection (skipped: over max_ejection_percent).",
              [&](const ClusterRuntime& cluster, std::string_view name) {
                const auto* outlier = cluster.state->outlier();
                for (auto [result, value] :
                     {std::pair{"ejected", outlier ? outlier->ejections_total() : 0},
                      std::pair{"skipped", outlier ? outlier->ejections_overflow() : 0}}) {
                  std::array labels{Label{"cluster", name}, Label{"result", result}};
                  exposition.sample("pillion_cluster_ejections_total", labels, value);
                }
              });
  per_cluster(
      exposition, runtime, "pillion_cluster_health_checks_total", "counter",
      "Active health checks by result.", [&](const ClusterRuntime& cluster, std::string_view name) {
        const auto& state = *cluster.state;
        for (auto [result, value] : {std::pair{"passed", state.health_checks_passed.load()},
                                     std::pair{"failed", state.health_checks_failed.load()}}) {
          std::array labels{Label{"cluster", name}, Label{"result", result}};
          exposition.sample("pillion_cluster_health_checks_total", labels, value);
        }
      });
  per_cluster(exposition, runtime, "pillion_cluster_dns_refreshes_total", "counter",
              "DNS re-resolutions of the cluster's endpoint names by result.",
              [&](const ClusterRuntime& cluster, std::string_view name) {
                const auto& state = *cluster.state;
                for (auto [result, value] : {std::pair{"ok", state.dns_refreshes.load()},
                                             std::pair{"failed", state.dns_failures.load()}}) {
                  std::array labels{Label{"cluster", name}, Label{"result", result}};
                  exposition.sample("pillion_cluster_dns_refreshes_total", labels, value);
                }
              });
  out += exposition.take();
}

void render_tls_metrics(const tls::IdentityWatcher& identity, std::string& out) {
  observe::Exposition exposition;
  auto current = identity.current();
  auto seconds = [](std::chrono::system_clock::time_point time) {
    return static_cast<double>(
        std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count());
  };
  exposition.family("pillion_tls_certificate_expiry_timestamp_seconds", "gauge",
                    "When the workload certificate and its trust anchor expire (Unix time).");
  if (current) {
    std::array workload{Label{"certificate", "workload"}};
    exposition.sample("pillion_tls_certificate_expiry_timestamp_seconds", workload,
                      seconds(current->not_after()));
    std::array ca{Label{"certificate", "ca"}};
    exposition.sample("pillion_tls_certificate_expiry_timestamp_seconds", ca,
                      seconds(current->ca_not_after()));
  }
  exposition.family("pillion_tls_certificate_rotations_total", "counter",
                    "Workload certificate changes seen on disk: loaded, or rejected (the old one "
                    "stays).");
  std::array ok{Label{"result", "ok"}};
  exposition.sample("pillion_tls_certificate_rotations_total", ok, identity.rotations_ok());
  std::array failed{Label{"result", "failed"}};
  exposition.sample("pillion_tls_certificate_rotations_total", failed, identity.rotations_failed());
  out += exposition.take();
}

}  // namespace pillion::proxy
