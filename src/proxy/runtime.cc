#include "proxy/runtime.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include "proxy/router.h"

namespace pillion::proxy {

namespace {

RouteRuntime fallback_route(const config::Route& route, size_t cluster) {
  RouteRuntime runtime;
  compile_route_match(route, runtime);
  runtime.cluster = cluster;
  return runtime;
}

// A route with no timeout of its own to a built-in cluster: a transparent sidecar must not
// impose limits the app never asked for (Istio's passthrough does the same).
RouteRuntime builtin_route(Runtime& runtime, const char* name, Destination destination) {
  for (const auto& cluster : runtime.clusters) {
    if (cluster.destination != destination) {
      continue;
    }
    for (const auto& route : runtime.builtin_routes) {
      if (route->cluster == name) {
        return fallback_route(*route, cluster.index);
      }
    }
  }
  const auto& transparent = runtime.config->transparent;
  auto cluster = std::make_unique<config::Cluster>();
  cluster->name = name;
  cluster->connect_timeout = transparent.connect_timeout;
  ClusterRuntime cluster_runtime;
  cluster_runtime.config = cluster.get();
  cluster_runtime.destination = destination;
  cluster_runtime.index = runtime.clusters.size();
  runtime.clusters.push_back(cluster_runtime);
  runtime.builtin_clusters.push_back(std::move(cluster));
  auto route = std::make_unique<config::Route>();
  route->cluster = name;
  route->timeout = core::Duration::zero();
  runtime.builtin_routes.push_back(std::move(route));
  return fallback_route(*runtime.builtin_routes.back(), cluster_runtime.index);
}

// Compiles a config Authorization; null when it has no rules. Patterns were validated when
// the config was loaded, so a failure here is reported, not assumed away.
std::shared_ptr<const tls::Authorization> compile_authorization(
    const std::optional<config::Authorization>& rules, std::string& error) {
  if (!rules || (rules->allow.empty() && rules->deny.empty())) {
    return nullptr;
  }
  auto compiled = std::make_shared<tls::Authorization>();
  for (auto [texts, out] :
       {std::pair{&rules->allow, &compiled->allow}, std::pair{&rules->deny, &compiled->deny}}) {
    for (const auto& text : *texts) {
      std::string reason;
      auto pattern = tls::IdPattern::parse(text, reason);
      if (!pattern) {
        error = fmt::format("authorization pattern {}: {}", text, reason);
        return nullptr;
      }
      out->push_back(std::move(*pattern));
    }
  }
  return compiled;
}

}  // namespace

RuntimePtr build_runtime(config::SnapshotPtr config,
                         std::shared_ptr<upstream::ClusterManager> cluster_manager, size_t workers,
                         std::string& error) {
  auto runtime = std::make_shared<Runtime>();
  runtime->config = config;
  runtime->cluster_manager = std::move(cluster_manager);
  runtime->workers = workers;
  auto states = runtime->cluster_manager->update(*config, error);
  if (states.size() != config->clusters.size()) {
    return nullptr;
  }
  for (auto& state : states) {
    ClusterRuntime cluster_runtime;
    cluster_runtime.config = &state->config();
    cluster_runtime.state = std::move(state);
    cluster_runtime.index = runtime->clusters.size();
    runtime->clusters.push_back(std::move(cluster_runtime));
  }
  for (const auto& listener : config->listeners) {
    ListenerRuntime listener_runtime;
    listener_runtime.config = &listener;
    listener_runtime.authorization = compile_authorization(listener.authorization, error);
    if (!error.empty()) {
      return nullptr;
    }
    if (listener.mode == config::ListenerMode::kTransparentOutbound) {
      listener_runtime.fallback =
          builtin_route(*runtime, "original-destination", Destination::kOriginalDestination);
    } else if (listener.mode == config::ListenerMode::kTransparentInbound) {
      listener_runtime.fallback = builtin_route(*runtime, "local-app", Destination::kLocalApp);
    }
    if (listener.routes.empty() && listener_runtime.fallback) {
      runtime->listeners.push_back(std::move(listener_runtime));
      continue;
    }
    auto table = config->routes.find(listener.routes);
    if (table == config->routes.end()) {
      error = fmt::format("listener {}: no route table named {}", listener.name, listener.routes);
      return nullptr;
    }
    for (const auto& route : table->second) {
      RouteRuntime route_runtime;
      compile_route_match(route, route_runtime);
      route_runtime.authorization = compile_authorization(route.authorization, error);
      if (!error.empty()) {
        return nullptr;
      }
      if (route.rate_limit) {
        route_runtime.rate_limiter = std::make_shared<RateLimiter>(
            route.rate_limit->requests_per_second, route.rate_limit->burst);
      }
      auto find_cluster = [&](const std::string& name) -> std::optional<size_t> {
        for (const auto& cluster : runtime->clusters) {
          if (cluster.config->name == name) {
            return cluster.index;
          }
        }
        error = fmt::format("route to unknown cluster {}", name);
        return std::nullopt;
      };
      if (route.weighted_clusters.empty()) {
        auto index = find_cluster(route.cluster);
        if (!index) {
          return nullptr;
        }
        route_runtime.cluster = *index;
      }
      for (const auto& weighted : route.weighted_clusters) {
        auto index = find_cluster(weighted.name);
        if (!index) {
          return nullptr;
        }
        if (weighted.weight == 0) {
          continue;  // kept in the config for a later shift, sent nothing now
        }
        route_runtime.total_weight += weighted.weight;
        route_runtime.weighted.emplace_back(route_runtime.total_weight, *index);
      }
      if (!route_runtime.weighted.empty()) {
        route_runtime.cluster = route_runtime.weighted.front().second;
      }
      listener_runtime.routes.push_back(route_runtime);
    }
    runtime->listeners.push_back(std::move(listener_runtime));
  }
  return runtime;
}

}  // namespace pillion::proxy
