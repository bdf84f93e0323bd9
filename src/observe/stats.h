#pragma once
// Per-worker stats shards: each counter is written by one worker thread only (a relaxed load
// and store, no read-modify-write shared between threads) and summed when scraped.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "observe/flags.h"

namespace pillion::observe {

class Counter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct WorkerStats {
  Counter downstream_cx_total;
  Counter downstream_cx_active;  // gauge
  Counter downstream_rq_total;
  Counter downstream_rq_active;                   // gauge
  std::array<Counter, 6> downstream_rq_by_class;  // index 1..5: 1xx..5xx
  Counter downstream_bytes_received;
  Counter downstream_bytes_sent;
  Counter upstream_cx_total;  // connections opened
  Counter upstream_cx_connect_fail;
  Counter upstream_cx_active;  // gauge, idle and busy
  Counter upstream_rq_total;
  Counter upstream_rq_pool_reused;  // requests sent on a pooled connection
  Counter upstream_rq_stale_retry;  // retried once on a fresh connection
  Counter upgrades_total;           // tunnels after 101
  Counter tcp_passthrough_total;    // captured connections passed through as opaque bytes
  Counter capture_refused_total;    // captured connections refused (not redirected, or a loop)
  std::array<Counter, static_cast<size_t>(Flag::kCount)> flags;
};

// Sum of all shards at one moment (not atomic across counters; each value is consistent).
struct StatsSnapshot {
  std::vector<std::pair<std::string, uint64_t>> counters;  // name -> value, stable order
};

class Stats {
 public:
  explicit Stats(int workers);
  WorkerStats& worker(int index) { return *shards_[static_cast<size_t>(index)]; }
  StatsSnapshot snapshot() const;
  // Envoy-style "name: value" lines.
  std::string render_text() const;
  // Prometheus text exposition format 0.0.4.
  std::string render_prometheus() const;

  Counter access_log_dropped;  // written by the access-log writer only
  // Spans exported and dropped, read from the span exporter when tracing export is on.
  std::function<std::pair<uint64_t, uint64_t>()> span_counts;

 private:
  std::vector<std::unique_ptr<WorkerStats>> shards_;
};

}  // namespace pillion::observe
