#pragma once
// stdout and file outputs: NDJSON appended with write(2); a record counts as acknowledged once
// write returned (and, with fsync set, once fdatasync did).
#include <string>

#include "logs/batch.h"
#include "logs/config.h"
#include "logs/metrics.h"

namespace pillion::logs {

class StreamSink : public Sink {
 public:
  // Opens `path` for appending, or uses stdout when path is empty. Throws std::runtime_error.
  StreamSink(const std::string& path, bool fsync, const RetryConfig& retry, Metrics& metrics);
  ~StreamSink() override;
  Delivery deliver(const Batch& batch, const std::atomic<bool>& stop) override;

 private:
  int fd_ = 1;
  bool owned_ = false;
  bool fsync_ = false;
  std::string name_;
  RetryConfig retry_;
  Metrics& metrics_;
};

}  // namespace pillion::logs
