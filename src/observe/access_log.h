#pragma once
// The access log: workers format lines into their own buffer (no lock per request) and hand
// whole batches to one writer thread, so a slow disk or a full stdout pipe never blocks the
// data path. When the writer falls behind by more than kMaxQueuedBytes, batches are dropped and
// counted (pillion_access_log_dropped_total) instead of growing memory.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "config/schema.h"
#include "observe/flags.h"
#include "observe/stats.h"

namespace pillion::observe {

struct AccessLogEntry {
  std::chrono::system_clock::time_point start;
  std::string_view request_id;
  std::string_view method;
  std::string_view path;
  std::string_view protocol;       // "HTTP/1.1"
  std::string_view client;         // ip:port
  std::string_view upstream_host;  // ip:port, empty when none was chosen
  std::string_view listener;
  std::string_view peer_id;  // the client's SPIFFE ID (mutual TLS); empty: not logged
  int status = 0;
  uint64_t bytes_received = 0;  // request body bytes
  uint64_t bytes_sent = 0;      // response body bytes
  int64_t duration_us = 0;      // first request byte to last response byte
  int64_t upstream_us = -1;     // request sent upstream to response head; -1 when none
  int attempts = 0;
  Flags flags = 0;
};

void format_text(const AccessLogEntry& entry, std::string& out);
void format_json(const AccessLogEntry& entry, std::string& out);

class AccessLogWriter {
 public:
  static constexpr size_t kMaxQueuedBytes = 16 << 20;

  AccessLogWriter(std::string path, Counter& dropped);
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Opens the file (append, create) and starts the writer thread; false with `error` set.
  bool start(std::string& error);
  // Takes a batch of complete lines. Any thread.
  void submit(std::string&& batch);
  // Reopens the file before the next write (log rotation on SIGHUP). Any thread.
  void reopen();
  // Writes everything queued, then stops the thread.
  void stop();
  // Lets a worker reuse the memory of a written batch.
  std::string recycled_buffer();

 private:
  void run();
  int open_file() const;

  std::string path_;
  Counter& dropped_;
  int fd_ = -1;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::vector<std::string> free_;
  size_t queued_bytes_ = 0;
  bool reopen_ = false;
  bool stopping_ = false;
};

// One per worker thread.
class AccessLogBuffer {
 public:
  static constexpr size_t kFlushBytes = 32 * 1024;

  AccessLogBuffer(AccessLogWriter* writer, config::AccessLogFormat format);
  void log(const AccessLogEntry& entry);
  void flush();

 private:
  AccessLogWriter* writer_;
  config::AccessLogFormat format_;
  std::string buffer_;
};

}  // namespace pillion::observe
