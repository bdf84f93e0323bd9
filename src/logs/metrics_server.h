#pragma once
// A small HTTP endpoint serving the adapter's metrics in Prometheus format on GET /metrics
// (any path works, for simple probes). Runs its own thread; Asio stays out of this header.
#include <memory>
#include <string>

#include "logs/metrics.h"

namespace pillion::logs {

class MetricsServer {
 public:
  // Binds host:port (port 0 picks one); throws std::runtime_error when it cannot.
  MetricsServer(const std::string& address, const Metrics& metrics);
  ~MetricsServer();  // stops the thread
  unsigned short port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pillion::logs
