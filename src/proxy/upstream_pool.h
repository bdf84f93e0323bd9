#pragma once
// Per-worker pool of idle keep-alive connections to each endpoint. Single-threaded (owned by
// one worker), LIFO so the warmest connection is reused and the rest age out.
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <vector>

#include "observe/stats.h"

namespace pillion::proxy {

using Clock = std::chrono::steady_clock;

class UpstreamPool {
 public:
  // `idle_timeouts[i]`: how long endpoint i's connections may sit idle (its cluster's setting).
  UpstreamPool(std::vector<Clock::duration> idle_timeouts, observe::WorkerStats& stats);
  ~UpstreamPool();

  // An idle connection to `endpoint` believed to be open, or nullopt. Connections idle longer
  // than their idle timeout are closed; those idle for over a second are checked for a FIN first
  // (one non-blocking peek), which catches upstreams with short keep-alive timeouts.
  // `check_always`: peek even at a connection idle for less than a second (for requests that
  // cannot be retried if the connection turns out dead).
  std::optional<boost::asio::ip::tcp::socket> acquire(size_t endpoint, Clock::time_point now,
                                                      bool check_always = false);
  // Keeps `socket` for reuse unless the endpoint already has `max_idle` idle connections.
  void release(size_t endpoint, boost::asio::ip::tcp::socket socket, Clock::time_point now,
               size_t max_idle);
  // Closes a connection that the pool or a session owned (keeps the active gauge right).
  void discard(boost::asio::ip::tcp::socket& socket);
  // Closes every idle connection older than `idle_timeout`.
  void expire(Clock::time_point now);
  void close_all();

 private:
  struct Idle {
    boost::asio::ip::tcp::socket socket;
    Clock::time_point since;
  };
  std::vector<std::vector<Idle>> slots_;
  std::vector<Clock::duration> idle_timeouts_;
  observe::WorkerStats& stats_;
};

// True when the peer has not closed the connection and sent nothing unexpected.
bool connection_looks_open(boost::asio::ip::tcp::socket& socket);

}  // namespace pillion::proxy
