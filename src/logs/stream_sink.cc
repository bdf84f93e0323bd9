#include "logs/stream_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/log.h"
#include "logs/backoff.h"

namespace pillion::logs {

StreamSink::StreamSink(const std::string& path, bool fsync, const RetryConfig& retry,
                       Metrics& metrics)
    : fsync_(fsync), name_(path.empty() ? "stdout" : path), retry_(retry), metrics_(metrics) {
  if (!path.empty()) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw std::runtime_error("output file " + path + ": " + std::strerror(errno));
    }
    owned_ = true;
  }
}

StreamSink::~StreamSink() {
  if (owned_) {
    ::close(fd_);
  }
}

Delivery StreamSink::deliver(const Batch& batch, const std::atomic<bool>& stop) {
  size_t done = 0;
  uint64_t attempt = 0;
  while (done < batch.docs.size()) {
    const ssize_t n = ::write(fd_, batch.docs.data() + done, batch.docs.size() - done);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    // A full disk may clear up; a closed pipe (EPIPE) or a bad descriptor will not.
    const int err = errno;
    ++metrics_.sink_errors;
    spdlog::error("logs: writing to {} failed: {}", name_, std::strerror(err));
    if (err == EPIPE || err == EBADF) {
      return Delivery::kFailed;
    }
    ++attempt;
    if (retry_.max_attempts != 0 && attempt >= retry_.max_attempts) {
      return Delivery::kFailed;
    }
    if (!sleep_unless_stopped(backoff_delay(retry_, attempt), stop)) {
      return Delivery::kStopped;
    }
  }
  if (fsync_ && ::fdatasync(fd_) != 0 && errno != EINVAL) {
    spdlog::error("logs: fdatasync {}: {}", name_, std::strerror(errno));
    return Delivery::kFailed;
  }
  return Delivery::kDelivered;
}

}  // namespace pillion::logs
