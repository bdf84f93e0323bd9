#pragma once
// The config snapshot with everything resolved that the data path needs: endpoint addresses,
// route -> cluster indices. Built once on the main thread; immutable and shared by workers.
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/schema.h"

namespace pillion::proxy {

struct Endpoint {
  boost::asio::ip::tcp::endpoint address;
  std::string label;      // "127.0.0.1:8080" for logs
  std::string authority;  // as configured, for a Host header when the client sent none
  size_t id = 0;          // index into Runtime::endpoints (pool slot)
};

struct ClusterRuntime {
  const config::Cluster* config = nullptr;
  std::vector<size_t> endpoints;  // ids
  size_t index = 0;
};

struct RouteRuntime {
  const config::Route* config = nullptr;
  size_t cluster = 0;
};

struct ListenerRuntime {
  const config::Listener* config = nullptr;
  std::vector<RouteRuntime> routes;
};

struct Runtime {
  config::SnapshotPtr config;
  std::vector<Endpoint> endpoints;
  std::vector<ClusterRuntime> clusters;
  std::vector<ListenerRuntime> listeners;
};

using RuntimePtr = std::shared_ptr<const Runtime>;

// Resolves every endpoint (DNS names once, at startup); false with `error` on failure.
RuntimePtr build_runtime(config::SnapshotPtr config, std::string& error);

}  // namespace pillion::proxy
