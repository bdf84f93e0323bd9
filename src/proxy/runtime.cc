#include "proxy/runtime.h"

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace pillion::proxy {

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
    auto table = config->routes.find(listener.routes);
    if (table == config->routes.end()) {
      error = fmt::format("listener {}: no route table named {}", listener.name, listener.routes);
      return nullptr;
    }
    for (const auto& route : table->second) {
      RouteRuntime route_runtime;
      route_runtime.config = &route;
      bool found = false;
      for (const auto& cluster : runtime->clusters) {
        if (cluster.config->name == route.cluster) {
          route_runtime.cluster = cluster.index;
          found = true;
        }
      }
      if (!found) {
        error = fmt::format("route to unknown cluster {}", route.cluster);
        return nullptr;
      }
      listener_runtime.routes.push_back(route_runtime);
    }
    runtime->listeners.push_back(std::move(listener_runtime));
  }
  return runtime;
}

}  // namespace pillion::proxy
