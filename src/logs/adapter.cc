#include "logs/adapter.h"

#include <algorithm>
#include <memory>
#include <thread>

#include "core/log.h"
#include "logs/batch.h"
#include "logs/bulk_sink.h"
#include "logs/checkpoint.h"
#include "logs/metrics_server.h"
#include "logs/pipeline.h"
#include "logs/stream_sink.h"
#include "logs/tailer.h"

namespace pillion::logs {
namespace {

std::unique_ptr<Sink> make_sink(const Config& c, Metrics& metrics) {
  switch (c.output.kind) {
    case OutputKind::kStdout:
      return std::make_unique<StreamSink>("", false, c.output.retry, metrics);
    case OutputKind::kFile:
      return std::make_unique<StreamSink>(c.output.path, c.output.fsync, c.output.retry, metrics);
    case OutputKind::kElasticsearch:
      return std::make_unique<BulkSink>(c.output, metrics);
  }
  return nullptr;
}

}  // namespace

int run_adapter(const Config& config, const std::atomic<bool>& stop) {
  Metrics metrics;
  std::unique_ptr<Sink> sink;
  ParserPtr parser;
  std::unique_ptr<CheckpointStore> store;
  std::vector<FileState> restored;
  std::unique_ptr<MetricsServer> server;
  try {
    validate(config);
    parser = make_parser(config.parser);
    sink = make_sink(config, metrics);
    if (!config.checkpoint.path.empty()) {
      store = std::make_unique<CheckpointStore>(config.checkpoint.path);
      restored = store->load();
    }
    if (!config.metrics_address.empty()) {
      server = std::make_unique<MetricsServer>(config.metrics_address, metrics);
      spdlog::info("logs: metrics on http://{}/metrics", config.metrics_address);
    }
  } catch (const std::exception& e) {
    spdlog::error("logs: {}", e.what());
    return 1;
  }

  // Records wait only in the batch: its byte limit bounds memory. For stdout and file outputs
  // a smaller batch keeps latency low; they flush whenever the reader is idle anyway.
  const bool bulk = config.output.kind == OutputKind::kElasticsearch;
  Batch batch;
  Pipeline pipeline(std::move(parser), enrichment_fields(config.enrich),
                    config.output.batch_max_bytes, config.output.batch_max_records, batch, metrics);
  Tailer tailer(config.input, config.parser, metrics);
  tailer.restore(restored);
  auto now = Clock::now();
  tailer.scan(now);
  if (config.exit_at_eof && !tailer.open_errors().empty()) {
    spdlog::error("logs: {} path(s) cannot be read (see above); stopping",
                  tailer.open_errors().size());
    return 1;
  }
  auto next_scan = now + config.input.scan_interval;
  auto next_checkpoint = now + config.checkpoint.interval;
  std::vector<FileState> saved = restored;
  int exit_code = 0;

  auto save_checkpoint = [&]() {
    if (!store) {
      return true;
    }
    auto states = tailer.states();
    if (states == saved) {
      return true;
    }
    try {
      store->save(states);
      ++metrics.checkpoints;
      saved = std::move(states);
      return true;
    } catch (const std::exception& e) {
      spdlog::error("logs: {}", e.what());
      return false;
    }
  };

  while (!stop) {
    now = Clock::now();
    if (now >= next_scan) {
      tailer.scan(now);
      next_scan = now + config.input.scan_interval;
    }
    pipeline.set_now(wall_clock_now());
    const size_t consumed = tailer.poll(now, pipeline, config.exit_at_eof);
    const bool idle = consumed == 0;
    now = Clock::now();
    const bool due = !batch.empty() && (pipeline.full() || tailer.wants_flush() ||
                                        (!bulk && idle) || (config.exit_at_eof && idle) ||
                                        now - batch.first_added >= config.output.batch_interval);
    if (due) {
      // deliver() may block for the whole outage of the sink: show the lag it starts with.
      metrics.lag_bytes = tailer.lag_bytes();
      const Delivery d = sink->deliver(batch, stop);
      if (d == Delivery::kStopped) {
        break;
      }
      if (d == Delivery::kFailed) {
        exit_code = 1;
        break;
      }
      // Acknowledged: only now may the offsets move.
      for (const auto& e : batch.entries) {
        tailer.commit(e.handle, e.end);
      }
      metrics.records_shipped += batch.entries.size();
      metrics.bytes_shipped += batch.docs.size();
      batch.clear();
      now = Clock::now();  // delivery may have taken long: checkpoint promptly if due
    }
    tailer.close_finished(now);
    metrics.lag_bytes = tailer.lag_bytes();
    if (now >= next_checkpoint) {
      save_checkpoint();
      next_checkpoint = now + config.checkpoint.interval;
    }
    if (config.exit_at_eof && idle && batch.empty() && !tailer.wants_flush()) {
      break;
    }
    if (idle && !due) {
      auto wake = now + config.input.poll_interval;
      if (!batch.empty()) {
        wake = std::min(wake, batch.first_added + config.output.batch_interval);
      }
      std::this_thread::sleep_until(wake);
    }
  }
  metrics.lag_bytes = tailer.lag_bytes();
  if (!save_checkpoint()) {
    exit_code = 1;
  }
  spdlog::info("logs: stopped: {} lines read, {} records shipped", metrics.lines_read.load(),
               metrics.records_shipped.load());
  return exit_code;
}

}  // namespace pillion::logs
