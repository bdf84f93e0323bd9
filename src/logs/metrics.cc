#include "logs/metrics.h"

#include <fmt/format.h>

namespace pillion::logs {

std::string Metrics::render() const {
  std::string out;
  auto put = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    fmt::format_to(std::back_inserter(out),
                   "# HELP pillion_logs_{} {}\n# TYPE pillion_logs_{} {}\n"
                   "pillion_logs_{} {}\n",
                   name, help, name, type, name, value);
  };
  put("lines_read_total", "counter", "Lines read from the files.", lines_read);
  put("bytes_read_total", "counter", "Bytes read from the files.", bytes_read);
  put("records_parsed_total", "counter", "Records the parser understood.", records_parsed);
  put("parse_failures_total", "counter", "Records shipped raw because the parser failed.",
      parse_failures);
  put("lines_truncated_total", "counter", "Records cut at max_line_bytes.", lines_truncated);
  put("records_shipped_total", "counter", "Records the output acknowledged.", records_shipped);
  put("bytes_shipped_total", "counter", "JSON bytes the output acknowledged.", bytes_shipped);
  put("records_retried_total", "counter", "Records sent again after a failure.", records_retried);
  put("records_rejected_total", "counter",
      "Records the sink refused for good (written to the dead-letter file).", records_rejected);
  put("sink_errors_total", "counter", "Failed requests to the sink.", sink_errors);
  put("rotations_total", "counter", "Files that were rotated away (rename or copy).", rotations);
  put("truncations_total", "counter", "Files that were truncated (copytruncate).", truncations);
  put("open_errors_total", "counter", "Files that matched but could not be opened.", open_errors);
  put("checkpoints_total", "counter", "Checkpoint files written.", checkpoints);
  put("files_open", "gauge", "Files being followed.", files_open);
  put("lag_bytes", "gauge", "Bytes in the files not yet acknowledged by the sink.", lag_bytes);
  return out;
}

}  // namespace pillion::logs
