#pragma once
// The adapter's own counters, written by the reading thread and read by the metrics endpoint.
#include <atomic>
#include <cstdint>
#include <string>

namespace pillion::logs {

struct Metrics {
  std::atomic<uint64_t> lines_read{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> records_parsed{0};
  std::atomic<uint64_t> parse_failures{0};
  std::atomic<uint64_t> lines_truncated{0};
  std::atomic<uint64_t> records_shipped{0};
  std::atomic<uint64_t> bytes_shipped{0};
  std::atomic<uint64_t> records_retried{0};
  std::atomic<uint64_t> records_rejected{0};
  std::atomic<uint64_t> sink_errors{0};
  std::atomic<uint64_t> rotations{0};
  std::atomic<uint64_t> truncations{0};
  std::atomic<uint64_t> open_errors{0};
  std::atomic<uint64_t> checkpoints{0};
  std::atomic<uint64_t> files_open{0};
  std::atomic<uint64_t> lag_bytes{0};  // bytes in the files not yet acknowledged by the sink

  // Prometheus text exposition format 0.0.4.
  std::string render() const;
};

}  // namespace pillion::logs
