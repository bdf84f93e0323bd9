#include "observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace pillion::observe {
namespace {

// "2026-11-30T02:11:31.123Z"; the calendar part is cached per thread for the current second.
void append_timestamp(std::chrono::system_clock::time_point time, std::string& out) {
  thread_local time_t cached_second = -1;
  thread_local char cached[24];
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch());
  time_t seconds = static_cast<time_t>(micros.count() / 1000000);
  if (seconds != cached_second) {
    struct tm parts;
    gmtime_r(&seconds, &parts);
    strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &parts);
    cached_second = seconds;
  }
  out.append(cached);
  auto millis = static_cast<int>((micros.count() / 1000) % 1000);
  char fraction[6] = {'.',
                      static_cast<char>('0' + millis / 100),
                      static_cast<char>('0' + millis / 10 % 10),
                      static_cast<char>('0' + millis % 10),
                      'Z',
                      0};
  out.append(fraction, 5);
}

inline bool any_needs_json_escape(std::string_view value) {
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || byte < 0x20 || byte >= 0x80) {
      return true;
    }
  }
  return false;
}

// Length of the valid UTF-8 sequence starting at `text[0]`, or 0 when it is not one.
size_t utf8_sequence_length(std::string_view text) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  size_t length = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 0;
  if (length == 0 || length > text.size() || lead >= 0xF5) {
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) {
      return 0;
    }
  }
  // Overlong three- and four-byte forms, surrogates and code points past U+10FFFF.
  if ((lead == 0xE0 && byte(1) < 0xA0) || (lead == 0xED && byte(1) >= 0xA0) ||
      (lead == 0xF0 && byte(1) < 0x90) || (lead == 0xF4 && byte(1) >= 0x90)) {
    return 0;
  }
  return length;
}

// Valid JSON for any bytes: escapes per RFC 8259, and bytes that are not UTF-8 become \u00XX
// (so the line stays valid JSON and the byte value is still visible).
void append_json_string(std::string_view value, std::string& out) {
  out.push_back('"');
  if (!any_needs_json_escape(value)) {
    out.append(value);
    out.push_back('"');
    return;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
      size_t length = utf8_sequence_length(value.substr(i));
      if (length > 0) {
        out.append(value.substr(i, length));
        i += length - 1;
      } else {
        fmt::format_to(std::back_inserter(out), "\\u00{:02x}", byte);
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (byte < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(byte));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

// Text values never contain spaces or quotes unescaped: a line splits on spaces safely.
inline bool needs_text_escape(char c) {
  return c == ' ' || c == '"' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

inline bool any_needs_text_escape(std::string_view value) {
  for (char c : value) {
    if (needs_text_escape(c)) {
      return true;
    }
  }
  return false;
}

void append_text_value(std::string_view value, std::string& out) {
  if (value.empty()) {
    out.push_back('-');
    return;
  }
  if (!any_needs_text_escape(value)) {
    out.append(value);
    return;
  }
  for (char c : value) {
    if (c == ' ' || c == '"' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      fmt::format_to(std::back_inserter(out), "%{:02X}", static_cast<unsigned char>(c));
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace

template <typename Integer>
void append_number(Integer value, std::string& out) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, static_cast<size_t>(end - digits));
}

void format_text(const AccessLogEntry& e, std::string& out) {
  out.push_back('[');
  append_timestamp(e.start, out);
  out.append("] request_id=");
  append_text_value(e.request_id, out);
  out.append(" method=");
  append_text_value(e.method, out);
  out.append(" path=");
  append_text_value(e.path, out);
  out.append(" protocol=");
  append_text_value(e.protocol, out);
  out.append(" status=");
  append_number(e.status, out);
  out.append(" flags=");
  append_flags(e.flags, out);
  out.append(" bytes_in=");
  append_number(e.bytes_received, out);
  out.append(" bytes=");
  append_number(e.bytes_sent, out);
  out.append(" latency_ms=");
  append_number(e.duration_us / 1000, out);
  out.append(" duration_us=");
  append_number(e.duration_us, out);
  out.append(" upstream=");
  append_text_value(e.upstream_host, out);
  out.append(" upstream_us=");
  if (e.upstream_us >= 0) {
    append_number(e.upstream_us, out);
  } else {
    out.push_back('-');
  }
  out.append(" attempts=");
  append_number(e.attempts, out);
  out.append(" client=");
  append_text_value(e.client, out);
  out.append(" listener=");
  append_text_value(e.listener, out);
  if (!e.peer_id.empty()) {
    out.append(" peer_id=");
    append_text_value(e.peer_id, out);
  }
  out.push_back('\n');
}

void format_json(const AccessLogEntry& e, std::string& out) {
  out.append("{\"time\":\"");
  append_timestamp(e.start, out);
  out.append("\",\"request_id\":");
  append_json_string(e.request_id, out);
  out.append(",\"method\":");
  append_json_string(e.method, out);
  out.append(",\"path\":");
  append_json_string(e.path, out);
  out.append(",\"protocol\":");
  append_json_string(e.protocol, out);
  fmt::format_to(std::back_inserter(out), ",\"status\":{},\"flags\":\"", e.status);
  append_flags(e.flags, out);
  fmt::format_to(std::back_inserter(out),
                 "\",\"bytes_in\":{},\"bytes\":{},\"latency_ms\":{},\"duration_us\":{}",
                 e.bytes_received, e.bytes_sent, e.duration_us / 1000, e.duration_us);
  out.append(",\"upstream\":");
  append_json_string(e.upstream_host, out);
  if (e.upstream_us >= 0) {
    fmt::format_to(std::back_inserter(out), ",\"upstream_us\":{}", e.upstream_us);
  } else {
    out.append(",\"upstream_us\":null");
  }
  fmt::format_to(std::back_inserter(out), ",\"attempts\":{},\"client\":", e.attempts);
  append_json_string(e.client, out);
  out.append(",\"listener\":");
  append_json_string(e.listener, out);
  if (!e.peer_id.empty()) {
    out.append(",\"peer_id\":");
    append_json_string(e.peer_id, out);
  }
  out.append("}\n");
}

AccessLogWriter::AccessLogWriter(std::string path, Counter& dropped)
    : path_(std::move(path)), dropped_(dropped) {}

AccessLogWriter::~AccessLogWriter() {
  stop();
}

int AccessLogWriter::open_file() const {
  if (path_ == "/dev/stdout") {
    return dup(STDOUT_FILENO);
  }
  if (path_ == "/dev/stderr") {
    return dup(STDERR_FILENO);
  }
  return ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

bool AccessLogWriter::start(std::string& error) {
  fd_ = open_file();
  if (fd_ < 0) {
    error = fmt::format("access_log: cannot open {}: {}", path_, std::strerror(errno));
    return false;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void AccessLogWriter::submit(std::string&& batch) {
  std::lock_guard lock(mutex_);
  if (stopping_ && !thread_.joinable()) {
    return;
  }
  if (queued_bytes_ + batch.size() > kMaxQueuedBytes) {
    dropped_.add();
    batch.clear();
    return;
  }
  queued_bytes_ += batch.size();
  queue_.push_back(std::move(batch));
  wake_.notify_one();
}

void AccessLogWriter::reopen() {
  std::lock_guard lock(mutex_);
  reopen_ = true;
  wake_.notify_one();
}

std::string AccessLogWriter::recycled_buffer() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) {
    return {};
  }
  std::string buffer = std::move(free_.back());
  free_.pop_back();
  return buffer;
}

void AccessLogWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void AccessLogWriter::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || reopen_ || !queue_.empty(); });
    if (reopen_) {
      reopen_ = false;
      lock.unlock();
      int fd = open_file();
      if (fd >= 0) {
        ::close(fd_);
        fd_ = fd;
      } else {
        spdlog::error("access_log: cannot reopen {}: {}", path_, std::strerror(errno));
      }
      lock.lock();
    }
    if (queue_.empty()) {
      if (stopping_) {
        return;
      }
      continue;
    }
    std::string batch = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= batch.size();
    lock.unlock();
    size_t written = 0;
    while (written < batch.size()) {
      ssize_t n = ::write(fd_, batch.data() + written, batch.size() - written);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        dropped_.add();
        break;
      }
      written += static_cast<size_t>(n);
    }
    batch.clear();
    lock.lock();
    if (free_.size() < 16) {
      free_.push_back(std::move(batch));
    }
  }
}

AccessLogBuffer::AccessLogBuffer(AccessLogWriter* writer, config::AccessLogFormat format)
    : writer_(writer), format_(format) {
  buffer_.reserve(kFlushBytes + 4096);
}

void AccessLogBuffer::log(const AccessLogEntry& entry) {
  if (writer_ == nullptr) {
    return;
  }
  if (format_ == config::AccessLogFormat::kJson) {
    format_json(entry, buffer_);
  } else {
    format_text(entry, buffer_);
  }
  if (buffer_.size() >= kFlushBytes) {
    flush();
  }
}

void AccessLogBuffer::flush() {
  if (writer_ == nullptr || buffer_.empty()) {
    return;
  }
  std::string next = writer_->recycled_buffer();
  next.reserve(kFlushBytes + 4096);
  writer_->submit(std::move(buffer_));
  buffer_ = std::move(next);
}

}  // namespace pillion::observe
