#include "observe/tracing/exporter.h"

#include <algorithm>
#include <iterator>

#include <spdlog/spdlog.h>

#include "observe/tracing/collector_client.h"
#include "observe/tracing/span_encoding.h"

namespace pillion::observe::tracing {
namespace {

constexpr size_t kMaxFreeBatches = 16;

}  // namespace

SpanExporter::SpanExporter(ExporterConfig config) : config_(std::move(config)) {}

SpanExporter::~SpanExporter() {
  stop();
}

bool SpanExporter::start(std::string& error) {
  error = validate(config_);
  if (!error.empty()) {
    return false;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

std::vector<Span> SpanExporter::submit(std::vector<Span>&& batch) {
  std::vector<Span> next;
  std::lock_guard lock(mutex_);
  if (!free_.empty()) {
    next = std::move(free_.back());
    free_.pop_back();
  }
  if (batch.empty()) {
    return next;
  }
  if (stopped_ || queued_spans_ + batch.size() > config_.max_queued_spans) {
    count_dropped(batch.size());
    batch.clear();
    if (next.capacity() < batch.capacity()) {
      std::swap(next, batch);
    }
    return next;
  }
  queued_spans_ += batch.size();
  queue_.push_back(std::move(batch));
  if (queued_spans_ >= config_.batch_size) {
    wake_.notify_one();
  }
  return next;
}

size_t SpanExporter::queued_spans() const {
  std::lock_guard lock(mutex_);
  return queued_spans_;
}

void SpanExporter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  std::lock_guard lock(mutex_);
  stopped_ = true;
  drop_queued();  // only left when the thread never ran or gave up
}

void SpanExporter::take_batch(std::vector<Span>& out) {
  while (!queue_.empty() && out.size() < config_.batch_size) {
    auto& front = queue_.front();
    size_t n = std::min(front.size() - front_taken_, config_.batch_size - out.size());
    auto first = front.begin() + static_cast<std::ptrdiff_t>(front_taken_);
    std::move(first, first + static_cast<std::ptrdiff_t>(n), std::back_inserter(out));
    front_taken_ += n;
    queued_spans_ -= n;
    if (front_taken_ == front.size()) {
      front.clear();
      if (free_.size() < kMaxFreeBatches) {
        free_.push_back(std::move(front));
      }
      queue_.pop_front();
      front_taken_ = 0;
    }
  }
}

void SpanExporter::drop_queued() {
  count_dropped(queued_spans_);
  queue_.clear();
  front_taken_ = 0;
  queued_spans_ = 0;
}

void SpanExporter::run() {
  using Clock = std::chrono::steady_clock;
  auto url = parse_collector_url(config_.endpoint, config_.format);  // validated by start()
  CollectorClient client(std::move(*url), config_.timeout);
  auto encode = config_.format == ExportFormat::kZipkin ? encode_zipkin : encode_otlp;
  std::vector<Span> batch;
  batch.reserve(config_.batch_size);
  bool collector_failing = false;
  auto next_flush = Clock::now() + config_.flush_interval;

  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_until(lock, next_flush,
                     [&] { return stopping_ || queued_spans_ >= config_.batch_size; });
    bool timer = Clock::now() >= next_flush;
    if (!timer && !stopping_ && queued_spans_ < config_.batch_size) {
      continue;
    }
    take_batch(batch);
    bool last = stopping_ && queue_.empty();
    lock.unlock();

    if (!batch.empty()) {
      std::string error;
      bool sent = client.post("application/json", encode(batch, config_.service_name), error);
      if (sent) {
        exported_.fetch_add(batch.size(), std::memory_order_relaxed);
      } else {
        count_dropped(batch.size());
      }
      // One line when the collector goes away and one when it is back, not one per batch.
      if (!sent && !collector_failing) {
        spdlog::warn("tracing: dropping spans: {} ({})", error, config_.endpoint);
      } else if (sent && collector_failing) {
        spdlog::info("tracing: collector {} reachable again", config_.endpoint);
      }
      collector_failing = !sent;
      batch.clear();
    }
    if (timer) {
      next_flush = Clock::now() + config_.flush_interval;
    }

    lock.lock();
    if (stopping_ && collector_failing) {
      drop_queued();  // shutting down: one failure is enough to stop trying
      return;
    }
    if (last) {
      return;
    }
  }
}

}  // namespace pillion::observe::tracing
