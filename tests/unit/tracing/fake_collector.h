#pragma once
// A collector for tests: an HTTP/1.1 server on 127.0.0.1:<ephemeral> in its own thread that
// records each POST (path and parsed JSON body), or misbehaves on purpose.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace pillion::observe::tracing::test {

class FakeCollector {
 public:
  enum class Mode {
    kAnswer,  // 200 with keep-alive
    kFail,    // 503
    kHang,    // reads the request, never answers, keeps the connection open
  };
  struct Post {
    std::string path;
    std::string content_type;
    nlohmann::json body;
    std::vector<std::string> trace_ids;  // of every span in the body, OTLP or Zipkin
  };

  explicit FakeCollector(Mode mode);
  ~FakeCollector();

  std::string url(const std::string& path) const;
  // Waits until `spans` spans (or `requests` requests) arrived; false on timeout.
  bool wait_for_spans(size_t spans, std::chrono::milliseconds timeout);
  bool wait_for_requests(size_t requests, std::chrono::milliseconds timeout);
  std::vector<Post> posts() const;
  std::multiset<std::string> trace_ids() const;
  size_t connections() const;

 private:
  class Server;
  void record(Post post);
  void count_request();
  void count_connection();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Post> posts_;
  size_t spans_ = 0;
  size_t requests_ = 0;
  size_t connections_ = 0;
  std::unique_ptr<Server> server_;
};

}  // namespace pillion::observe::tracing::test
