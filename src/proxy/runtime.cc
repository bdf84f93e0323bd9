#include "proxy/runtime.h"

#include <fmt/format.h>
#include <re2/re2.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace pillion::proxy {

namespace {

// A route with no timeout of its own to a built-in cluster: a transparent sidecar must not
// impose limits the app never asked for (Istio's passthrough does the same).
RouteRuntime builtin_route(Runtime& runtime, const char* name, Destination destination) {
  for (const auto& cluster : runtime.clusters) {
    if (cluster.destination != destination) {
      continue;
    }
    for (const auto& route : runtime.builtin_routes) {
      if (route->cluster == name) {
        return RouteRuntime{route.get(), cluster.index};
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
  return RouteRuntime{runtime.builtin_routes.back().get(), cluster_runtime.index};
}

}  // namespace

RuntimePtr build_runtime(config::SnapshotPtr config, std::string& error) {
  auto runtime = std::make_shared<Runtime>();
  runtime->config = config;
  boost::asio::io_context context;
  boost::asio::ip::tcp::resolver resolver(context);
  for (const auto& cluster : config->clusters) {
    ClusterRuntime cluster_runtime;
    cluster_runtime.config = &cluster;
    cluster_runtime.index = runtime->clusters.size();
    for (const auto& endpoint : cluster.endpoints) {
      boost::system::error_code ec;
      auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
      if (ec || results.empty()) {
        error = fmt::format("cluster {}: cannot resolve {}: {}", cluster.name, endpoint.to_string(),
                            ec ? ec.message() : "no address");
        return nullptr;
      }
      Endpoint resolved;
      resolved.address = results.begin()->endpoint();
      auto ip = resolved.address.address();
      resolved.label = ip.is_v6() ? fmt::format("[{}]:{}", ip.to_string(), endpoint.port)
                                  : fmt::format("{}:{}", ip.to_string(), endpoint.port);
      resolved.authority = endpoint.to_string();
      resolved.id = runtime->endpoints.size();
      cluster_runtime.endpoints.push_back(resolved.id);
      runtime->endpoints.push_back(std::move(resolved));
    }
    runtime->clusters.push_back(std::move(cluster_runtime));
  }
  for (const auto& listener : config->listeners) {
    ListenerRuntime listener_runtime;
    listener_runtime.config = &listener;
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
      route_runtime.config = &route;
      // Anchored: a route's regex describes the whole path or header value, as in Envoy.
      if (route.rate_limit) {
        route_runtime.rate_limiter = std::make_shared<RateLimiter>(
            route.rate_limit->requests_per_second, route.rate_limit->burst);
      }
      if (!route.match.path_regex.empty()) {
        route_runtime.path_regex = std::make_shared<const re2::RE2>(route.match.path_regex);
      }
      for (const auto& header : route.match.headers) {
        HeaderMatcher matcher{&header, nullptr};
        if (header.kind == config::HeaderMatch::Kind::kRegex) {
          matcher.regex = std::make_shared<const re2::RE2>(header.value);
        }
        route_runtime.headers.push_back(std::move(matcher));
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
