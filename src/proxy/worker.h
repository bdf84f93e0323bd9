#pragma once
// One worker thread: its own event loop, its own SO_REUSEPORT listener sockets, its own
// downstream sessions, upstream pool, stats shard and access-log buffer. Nothing it touches
// per request is shared with another worker.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "observe/access_log.h"
#include "observe/stats.h"
#include "observe/tracing/span_buffer.h"
#include "proxy/runtime.h"
#include "proxy/upstream_pool.h"
#include "tls/identity_watcher.h"
#include "tls/session_cache.h"
#include "upstream/load_balancer.h"

namespace pillion::proxy {

// Connections (HTTP sessions, TCP relays) register with their worker so its ticker can enforce
// their deadlines and drain or end them.
using SessionHook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class Connection : public SessionHook {
 public:
  virtual ~Connection() = default;
  // The worker's ticker: enforce the current deadline.
  virtual void on_tick(std::chrono::steady_clock::time_point now) = 0;
  // The worker drains: close when nothing is in flight.
  virtual void on_drain() = 0;
  // The worker stops: end now (a session still answers its request with 503 LR).
  virtual void abort() = 0;
  // Shortly after abort(): close the sockets, whatever the connection is doing. Cancelling is
  // not enough: a completion already queued at abort() may start new I/O that no deadline ends
  // once the ticker has stopped, and the worker thread would never finish.
  virtual void close_now() = 0;
};

class Worker {
 public:
  Worker(int index, RuntimePtr runtime, observe::WorkerStats& stats,
         observe::AccessLogWriter* access_log, observe::tracing::SpanExporter* spans);
  ~Worker();

  // Binds this worker's socket for `listener` (SO_REUSEPORT) on `port` (the configured one, or
  // the one the kernel chose for the first worker when the config says 0). Returns the bound
  // port, or 0 with `error` set.
  uint16_t bind(const ListenerRuntime& listener, uint16_t port, std::string& error);
  void start();
  // Drain stage 1: responses carry Connection: close; listeners stay open.
  void begin_drain();
  // Drain stage 2: stop accepting; idle keep-alive connections close now, busy ones after their
  // response.
  void stop_accepting();
  // Ends every session now and stops the loop.
  void stop();
  void join();

  // Any thread: new requests use `runtime`; requests in flight finish on the one they have.
  void update_runtime(RuntimePtr runtime);
  // Before start(): the workload identity for mutual TLS (null: none configured).
  void set_identity(const tls::IdentityWatcher* watcher) {
    if (watcher != nullptr) {
      identity_.emplace(*watcher);
    }
  }

  // What this worker keeps of one cluster: the endpoint set it last took, and its balancer.
  struct ClusterSlot {
    upstream::HostSetPtr hosts;
    upstream::LoadBalancer balancer;
  };

  // Used by sessions on this worker's thread only.
  boost::asio::io_context& context() { return context_; }
  const Runtime& runtime() const { return *runtime_; }
  const RuntimePtr& runtime_ptr() const { return runtime_; }
  size_t index() const { return static_cast<size_t>(index_); }
  // The current workload identity (rotations are picked up here, per new handshake), or null.
  const tls::Identity* identity() { return identity_ ? identity_->get().get() : nullptr; }
  tls::IdentityPtr identity_ptr() { return identity_ ? identity_->get() : nullptr; }
  tls::SessionCache& tls_sessions() { return tls_sessions_; }
  // This worker's slot for `cluster`, its endpoint set brought up to date.
  ClusterSlot& cluster_slot(upstream::ClusterState& cluster);
  observe::WorkerStats& stats() { return stats_; }
  observe::AccessLogBuffer& access_log() { return access_log_; }
  observe::tracing::SpanBuffer& spans() { return spans_; }
  bool tracing_enabled() const { return tracing_enabled_; }
  UpstreamPool& pool() { return pool_; }
  Clock::time_point now() const { return now_; }  // refreshed every tick
  bool draining() const { return draining_; }
  bool stopped() const { return stopped_; }
  void link(Connection& connection);

  // Any thread.
  uint64_t active_sessions() const { return stats_.downstream_cx_active.get(); }

  static constexpr std::chrono::milliseconds kTick{50};

 private:
  struct Listening {
    size_t listener;  // index into the runtime's listeners (reloads keep the same set)
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
  };

  void accept_loop(Listening& listening);
  void tick();
  void close_remaining(Clock::time_point deadline);

  int index_;
  RuntimePtr runtime_;
  boost::asio::io_context context_;
  observe::WorkerStats& stats_;
  observe::AccessLogBuffer access_log_;
  observe::tracing::SpanBuffer spans_;
  bool tracing_enabled_ = false;
  UpstreamPool pool_;
  std::vector<Listening> listening_;
  std::unordered_map<const upstream::ClusterState*, ClusterSlot> cluster_slots_;
  std::optional<tls::IdentityReader> identity_;
  tls::SessionCache tls_sessions_;
  boost::asio::steady_timer ticker_;
  boost::asio::steady_timer final_close_;  // after stop(): ends what abort() did not
  Clock::time_point now_;
  int ticks_ = 0;
  bool draining_ = false;
  bool stopped_ = false;
  boost::intrusive::list<Connection, boost::intrusive::base_hook<SessionHook>,
                         boost::intrusive::constant_time_size<false>>
      sessions_;
  std::thread thread_;
};

}  // namespace pillion::proxy
