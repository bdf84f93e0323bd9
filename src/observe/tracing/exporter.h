#pragma once
// Sends finished spans to a collector without ever holding up a worker. Workers collect spans in
// their own SpanBuffer and hand over whole batches (one short lock per batch, never per span);
// one exporter thread groups them into POSTs of up to batch_size spans, at least every
// flush_interval. When the collector is slow or down, the queue stops growing at
// max_queued_spans and further spans are dropped and counted: memory stays bounded and submit
// never waits for I/O.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "observe/tracing/exporter_config.h"
#include "observe/tracing/span.h"

namespace pillion::observe::tracing {

class SpanExporter {
 public:
  explicit SpanExporter(ExporterConfig config);
  ~SpanExporter();  // stop()
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Validates the config and starts the exporter thread; false with `error` set.
  bool start(std::string& error);
  // Takes a batch of finished spans. Any thread; returns at once, having taken one lock. The
  // spans beyond max_queued_spans are dropped and counted; after stop() all are. Returns an
  // empty vector to fill next, with the capacity of an exported batch when one is free.
  [[nodiscard]] std::vector<Span> submit(std::vector<Span>&& batch);
  // Exports what is queued (giving up at the first failed POST), then joins the thread.
  void stop();

  // For pillion_tracing_spans_exported_total / _dropped_total. Any thread.
  uint64_t spans_exported() const { return exported_.load(std::memory_order_relaxed); }
  uint64_t spans_dropped() const { return dropped_.load(std::memory_order_relaxed); }
  size_t queued_spans() const;  // waiting for the exporter thread

  const ExporterConfig& config() const { return config_; }

 private:
  void run();
  // Moves up to batch_size queued spans into `out`. Called with mutex_ held.
  void take_batch(std::vector<Span>& out);
  void drop_queued();  // called with mutex_ held
  void count_dropped(uint64_t n) { dropped_.fetch_add(n, std::memory_order_relaxed); }

  const ExporterConfig config_;
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_{0};

  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::vector<Span>> queue_;
  size_t front_taken_ = 0;  // spans of queue_.front() already moved out
  size_t queued_spans_ = 0;
  std::vector<std::vector<Span>> free_;
  bool stopping_ = false;
  bool stopped_ = false;
};

}  // namespace pillion::observe::tracing
