#pragma once
// A small blocking HTTP/1.1 client for the exporter thread: one keep-alive connection to the
// collector, every step (connect, write, read) bounded by a timeout. It never runs on a worker,
// so blocking here costs no request latency. Asio stays out of this header.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "observe/tracing/exporter_config.h"

namespace pillion::observe::tracing {

class CollectorClient {
 public:
  CollectorClient(CollectorUrl url, std::chrono::milliseconds timeout);
  ~CollectorClient();
  CollectorClient(const CollectorClient&) = delete;
  CollectorClient& operator=(const CollectorClient&) = delete;

  // POSTs `body`; true on a 2xx answer. Otherwise false with `error` saying why (refused,
  // timed out, "status 503"). A request on a kept-alive connection the collector closed
  // meanwhile is sent again once on a new connection.
  bool post(std::string_view content_type, std::string body, std::string& error);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pillion::observe::tracing
