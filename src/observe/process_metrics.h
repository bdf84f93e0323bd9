#pragma once
// Process gauges read from /proc and the allocator at scrape time (never on the data path).
#include <cstdint>

namespace pillion::observe {

struct ProcessMetrics {
  uint64_t resident_bytes = 0;
  uint64_t heap_allocated_bytes = 0;  // malloc'ed and not freed, mmapped chunks included
  uint64_t open_fds = 0;
};

ProcessMetrics read_process_metrics();

// Unix time the process started, from /proc/self/stat and the boot time; 0 when unknown.
double process_start_time_seconds();

}  // namespace pillion::observe
