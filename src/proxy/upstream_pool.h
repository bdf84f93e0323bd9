#pragma once
// Per-worker pool of idle keep-alive connections to each upstream host. Single-threaded (owned
// by one worker), LIFO so the warmest connection is reused and the rest age out. Keyed by the
// host's id, so a host that survives a DNS refresh or a reload keeps its connections. Each
// pooled connection holds one unit of its cluster's max_connections breaker until closed.
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <unordered_map>
#include <vector>

#include "observe/stats.h"
#include "proxy/stream.h"
#include "upstream/cluster_state.h"

namespace pillion::proxy {

using Clock = std::chrono::steady_clock;

class UpstreamPool {
 public:
  explicit UpstreamPool(observe::WorkerStats& stats);
  ~UpstreamPool();

  // An idle connection to host `host_id` believed to be open, or nullopt. Connections idle
  // longer than their idle timeout are closed; those idle for over a second are checked for a
  // FIN first (one non-blocking peek), which catches upstreams with short keep-alive timeouts.
  // `check_always`: peek even at a connection idle for less than a second (for requests that
  // cannot be retried if the connection turns out dead).
  // Only connections made for `cluster` are handed out (a host may outlive a changed cluster
  // in a reload; its old connections count against the old cluster's breaker).
  std::optional<Stream> acquire(uint64_t host_id, const upstream::ClusterState* cluster,
                                Clock::time_point now, bool check_always = false);
  // Keeps `connection` for reuse unless the host already has `max_idle` idle connections.
  // `cluster`: whose connection breaker the socket counts against.
  void release(uint64_t host_id, Stream connection, Clock::time_point now,
               const upstream::ClusterStatePtr& cluster);
  // Closes a connection that the pool or a session owned (keeps the gauge and breaker right).
  void discard(Stream& connection, upstream::ClusterState* cluster);
  // Closes this worker's oldest idle connection made for `cluster`; false when it has none.
  bool close_one_idle(upstream::ClusterState& cluster);
  // Closes every idle connection older than its idle timeout.
  void expire(Clock::time_point now);
  void close_all();

 private:
  struct Idle {
    Stream connection;
    Clock::time_point since;
    upstream::ClusterStatePtr cluster;
  };
  bool expired(const Idle& idle, Clock::time_point now) const {
    return now - idle.since >= idle.cluster->config().idle_timeout;
  }
  std::unordered_map<uint64_t, std::vector<Idle>> slots_;
  observe::WorkerStats& stats_;
};

// True when the peer has not closed the connection and sent nothing unexpected.
bool connection_looks_open(boost::asio::ip::tcp::socket& socket);

}  // namespace pillion::proxy
