#include "logs/tailer.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/log.h"

namespace pillion::logs {
namespace {

constexpr size_t kFingerprintBytes = 256;
constexpr size_t kMaxBytesPerTurn = 4 * 1024 * 1024;  // per file per poll: fairness

using Key = std::pair<uint64_t, uint64_t>;

bool fresh_size(int fd, uint64_t& size) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return false;
  }
  size = static_cast<uint64_t>(st.st_size);
  return true;
}

}  // namespace

uint64_t fnv1a(std::string_view bytes, uint64_t seed) {
  uint64_t h = seed;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

bool file_fingerprint(int fd, uint64_t& fingerprint) {
  char buf[kFingerprintBytes];
  ssize_t n;
  do {
    n = ::pread(fd, buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    return false;
  }
  const auto* nl = static_cast<const char*>(std::memchr(buf, '\n', static_cast<size_t>(n)));
  if (nl == nullptr && static_cast<size_t>(n) < sizeof buf) {
    return false;  // the first line is not complete yet
  }
  const size_t len = nl != nullptr ? static_cast<size_t>(nl - buf) + 1 : sizeof buf;
  fingerprint = fnv1a(std::string_view(buf, len));
  return true;
}

uint64_t Tailer::id_base(uint64_t dev, uint64_t ino, uint64_t fingerprint, uint64_t generation) {
  uint64_t parts[] = {dev, ino, fingerprint, generation};
  return fnv1a(std::string_view(reinterpret_cast<const char*>(parts), sizeof parts));
}

struct Tailer::Handle {
  uint64_t id = 0;
  int fd = -1;
  int origin_fd = -1;  // while draining the copy of a truncated file: the file itself
  std::string path;
  std::vector<std::string> names;  // every file name it had: copies are named after one of them
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t fingerprint = 0;
  bool has_fingerprint = false;
  uint64_t generation = 0;
  uint64_t id_base = 0;
  uint64_t read_offset = 0;  // start of the first byte not yet turned into (part of) a record
  uint64_t emitted_end = 0;  // end of the last record handed to the sink
  uint64_t committed = 0;    // end of the last record the sink acknowledged
  uint64_t size = 0;
  uint64_t last_size = UINT64_MAX;
  bool rotated = false;
  bool draining = false;
  // The copy drained last (copytruncate): copies made after it hold generations that were
  // truncated away before we saw them, and are drained next, oldest first.
  int64_t last_copy_mtime = INT64_MIN;
  uint64_t last_copy_fingerprint = 0;
  bool truncation_seen = false;
  Clock::time_point last_activity;
  // An over-long line whose newline has not been read yet: its head, kept for the record.
  bool skipping = false;
  std::string long_line;
  uint64_t long_start = 0;
  // A record waiting for continuation lines (multiline: indent).
  bool has_pending = false;
  bool pending_truncated = false;
  std::string pending;
  uint64_t pending_start = 0;
  uint64_t pending_end = 0;
  Clock::time_point pending_since;
};

Tailer::Tailer(const InputConfig& input, const ParserConfig& parser, Metrics& metrics)
    : input_(input), parser_(parser), metrics_(metrics) {
  buffer_.resize(std::max<size_t>(1024 * 1024, 2 * parser_.max_line_bytes + 2));
}

Tailer::~Tailer() {
  for (auto& [id, h] : handles_) {
    if (h->fd >= 0) {
      ::close(h->fd);
    }
    if (h->origin_fd >= 0) {
      ::close(h->origin_fd);
    }
    delete h;
  }
}

void Tailer::restore(const std::vector<FileState>& states) {
  for (const auto& s : states) {
    restored_[{s.dev, s.ino}] = s;
  }
}

void Tailer::open_file(const std::string& path, const struct ::stat& st, bool rotated,
                       Clock::time_point now) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string reason = std::strerror(errno);
    open_errors_[path] = reason;
    if (reported_.insert(path).second) {
      ++metrics_.open_errors;
      spdlog::error("logs: cannot read {}: {}", path, reason);
    }
    return;
  }
  open_errors_.erase(path);
  reported_.erase(path);
  auto* h = new Handle;
  h->id = next_handle_++;
  h->fd = fd;
  h->path = path;
  h->names.push_back(std::filesystem::path(path).filename().string());
  h->dev = st.st_dev;
  h->ino = st.st_ino;
  h->size = static_cast<uint64_t>(st.st_size);
  h->rotated = rotated;
  h->last_activity = now;
  const auto it = restored_.find({h->dev, h->ino});
  if (it != restored_.end()) {
    const FileState& s = it->second;
    h->fingerprint = s.fingerprint;
    h->has_fingerprint = s.has_fingerprint;
    h->generation = s.generation;
    h->read_offset = h->emitted_end = h->committed = s.offset;
    h->names.push_back(std::filesystem::path(s.path).filename().string());
    restored_.erase(it);
    spdlog::info("logs: resuming {} at offset {}", path, h->read_offset);
  } else if (first_scan_ && input_.read_from_end) {
    h->read_offset = h->emitted_end = h->committed = h->size;
    h->has_fingerprint = file_fingerprint(fd, h->fingerprint);
  } else {
    spdlog::info("logs: following {}", path);
  }
  if (h->has_fingerprint) {
    h->id_base = id_base(h->dev, h->ino, h->fingerprint, h->generation);
  }
  handles_[h->id] = h;
}

void Tailer::scan(Clock::time_point now) {
  std::map<Key, std::string> seen;
  for (const auto& pattern : input_.paths) {
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        struct stat st;
        if (::stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode)) {
          seen.emplace(Key{st.st_dev, st.st_ino}, g.gl_pathv[i]);
        }
      }
    } else {
      // Nothing matched: tell an unreadable directory from one that has no file yet.
      const auto dir = std::filesystem::path(pattern).parent_path();
      if (!dir.empty() && ::access(dir.c_str(), R_OK | X_OK) != 0 && errno != ENOENT) {
        const std::string reason = std::string("directory not readable: ") + std::strerror(errno);
        open_errors_[pattern] = reason;
        if (reported_.insert(pattern).second) {
          ++metrics_.open_errors;
          spdlog::error("logs: cannot read {}: {}", pattern, reason);
        }
      } else if (first_scan_) {
        spdlog::warn("logs: no file matches {} yet", pattern);
      }
    }
    ::globfree(&g);
  }
  for (auto& [id, h] : handles_) {
    const auto it = seen.find({h->dev, h->ino});
    if (it != seen.end()) {
      if (h->path != it->second) {
        h->path = it->second;
        h->names.push_back(std::filesystem::path(h->path).filename().string());
      }
      h->rotated = false;
      seen.erase(it);
    } else if (!h->rotated) {
      h->rotated = true;
      h->last_activity = now;
      ++metrics_.rotations;
      spdlog::info("logs: {} was rotated away; draining it", h->path);
    }
  }
  for (const auto& [key, path] : seen) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      open_file(path, st, false, now);
    }
  }
  if (first_scan_) {
    // Files from the checkpoint that no glob matches any more were renamed while we were down:
    // look for them next to where they were, by device+inode.
    for (const auto& [key, state] : std::map<Key, FileState>(restored_)) {
      const auto dir = std::filesystem::path(state.path).parent_path();
      std::error_code ec;
      bool found = false;
      for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        struct stat st;
        if (::stat(entry.path().c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_dev == key.first && st.st_ino == key.second) {
          spdlog::info("logs: {} was renamed to {} while stopped", state.path,
                       entry.path().string());
          open_file(entry.path().string(), st, true, now);
          found = true;
          break;
        }
      }
      if (!found) {
        spdlog::warn("logs: {} from the checkpoint is gone", state.path);
      }
    }
    restored_.clear();
    first_scan_ = false;
  }
  metrics_.files_open = handles_.size();
}

bool Tailer::check_truncation(Handle& h) {
  if (h.draining) {
    return false;
  }
  if (!fresh_size(h.fd, h.size)) {
    return false;
  }
  bool truncated = h.size < h.read_offset;
  // Content replaced in place (copytruncate followed by new writes past our offset) shows as a
  // different first line.
  if (!truncated && h.size != h.last_size && h.has_fingerprint && h.read_offset > 0) {
    uint64_t fp = 0;
    truncated = !file_fingerprint(h.fd, fp) || fp != h.fingerprint;
  }
  h.last_size = h.size;
  return truncated;
}

bool Tailer::still_same_content(Handle& h, size_t n) {
  uint64_t fp = 0;
  return fresh_size(h.fd, h.size) && h.size >= h.read_offset + n && file_fingerprint(h.fd, fp) &&
         fp == h.fingerprint;
}

// Reads the rotated copy `copy` (of the file's older content) to its end before going back to
// the live file.
void Tailer::drain_copy(Handle& h, int copy, int64_t mtime, uint64_t fingerprint) {
  h.origin_fd = h.fd;
  h.fd = copy;
  h.draining = true;
  h.last_copy_mtime = mtime;
  h.last_copy_fingerprint = fingerprint;
}

void Tailer::start_over(Handle& h) {
  ++h.generation;
  h.read_offset = h.emitted_end = h.committed = 0;
  h.has_fingerprint = false;
  h.skipping = false;
  h.long_line.clear();
  h.last_size = UINT64_MAX;
}

namespace {

int64_t mtime_ns(const struct ::stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

int Tailer::find_copy(const Handle& h, bool intermediate, const uint64_t* live_fp, int64_t& mtime,
                      uint64_t& fingerprint) const {
  const std::filesystem::path path(h.path);
  std::error_code ec;
  int best = -1;
  for (const auto& entry : std::filesystem::directory_iterator(path.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    const bool named_after = std::any_of(h.names.begin(), h.names.end(), [&](const auto& base) {
      return name != base && name.starts_with(base);
    });
    // Compressed copies cannot be read as text.
    const bool compressed = name.ends_with(".gz") || name.ends_with(".bz2") ||
                            name.ends_with(".xz") || name.ends_with(".zst");
    if (!named_after || compressed) {
      continue;
    }
    const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    struct stat st;
    uint64_t fp = 0;
    bool pick = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                !(st.st_dev == h.dev && st.st_ino == h.ino) && file_fingerprint(fd, fp);
    if (pick && intermediate) {
      // A generation we never saw: newer than the copy drained last, not its content, not
      // what the file holds now; the oldest such copy comes first.
      pick = mtime_ns(st) > h.last_copy_mtime && fp != h.last_copy_fingerprint &&
             (live_fp == nullptr || fp != *live_fp) && (best < 0 || mtime_ns(st) < mtime);
    } else if (pick) {
      // The copy of the content being read: same first line, at least as long; the newest.
      pick = static_cast<uint64_t>(st.st_size) >= h.read_offset && fp == h.fingerprint &&
             (best < 0 || mtime_ns(st) > mtime);
    }
    if (pick) {
      if (best >= 0) {
        ::close(best);
      }
      best = fd;
      mtime = mtime_ns(st);
      fingerprint = fp;
      continue;
    }
    ::close(fd);
  }
  return best;
}

bool Tailer::emit(Handle& h, std::string_view text, uint64_t start, uint64_t end, bool truncated,
                  RecordSink& sink) {
  if (truncated) {
    ++metrics_.lines_truncated;
  }
  h.emitted_end = end;
  return sink.add(text, RecordOrigin{h.id, start, end, h.id_base, truncated});
}

bool Tailer::flush_pending(Handle& h, RecordSink& sink) {
  if (!h.has_pending) {
    return true;
  }
  h.has_pending = false;
  const bool room = emit(h, h.pending, h.pending_start, h.pending_end, h.pending_truncated, sink);
  h.pending.clear();
  return room;
}

bool Tailer::on_line(Handle& h, std::string_view line, uint64_t start, uint64_t end, bool truncated,
                     Clock::time_point now, RecordSink& sink) {
  ++metrics_.lines_read;
  if (parser_.multiline != Multiline::kIndent) {
    return emit(h, line, start, end, truncated, sink);
  }
  const bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
  if (continuation && h.has_pending) {
    const size_t room = parser_.max_line_bytes > h.pending.size() + 1
                            ? parser_.max_line_bytes - h.pending.size() - 1
                            : 0;
    if (room > 0) {
      h.pending += '\n';
      h.pending.append(line.substr(0, room));
    }
    h.pending_truncated |= truncated || line.size() > room;
    h.pending_end = end;
    h.pending_since = now;
    return true;
  }
  const bool room = flush_pending(h, sink);
  h.has_pending = true;
  h.pending.assign(line);
  h.pending_start = start;
  h.pending_end = end;
  h.pending_truncated = truncated;
  h.pending_since = now;
  return room;
}

size_t Tailer::poll(Clock::time_point now, RecordSink& sink, bool final) {
  wants_flush_ = false;
  size_t total = 0;
  for (auto& [id, h] : handles_) {
    total += poll_handle(*h, now, sink, final);
  }
  metrics_.bytes_read += total;
  return total;
}

size_t Tailer::poll_handle(Handle& h, Clock::time_point now, RecordSink& sink, bool final) {
  if (h.truncation_seen || check_truncation(h)) {
    h.truncation_seen = true;
    // Everything read from the old content must be acknowledged before the offsets restart.
    flush_pending(h, sink);
    if (h.committed < h.emitted_end) {
      wants_flush_ = true;
      return 0;
    }
    h.truncation_seen = false;
    ++metrics_.truncations;
    int64_t mtime = 0;
    uint64_t fp = 0;
    const int copy =
        h.read_offset > 0 && h.has_fingerprint ? find_copy(h, false, nullptr, mtime, fp) : -1;
    if (copy >= 0) {
      spdlog::info("logs: {} was truncated; reading the rest of its copy first", h.path);
      drain_copy(h, copy, mtime, fp);
    } else {
      spdlog::info("logs: {} was truncated; reading it again from the start", h.path);
      start_over(h);
    }
  }
  if (!h.has_fingerprint) {
    uint64_t live = 0;
    const bool have_live = file_fingerprint(h.fd, live);
    if (h.last_copy_mtime != INT64_MIN && !h.draining) {
      int64_t mtime = 0;
      uint64_t fp = 0;
      const int copy = find_copy(h, true, have_live ? &live : nullptr, mtime, fp);
      if (copy >= 0) {
        spdlog::info("logs: {} was truncated more than once; reading an older copy", h.path);
        drain_copy(h, copy, mtime, fp);
        h.fingerprint = fp;
        h.has_fingerprint = true;
      } else {
        h.last_copy_mtime = INT64_MIN;
      }
    }
    if (!h.has_fingerprint) {
      if (!have_live) {
        return 0;  // not even one complete line yet
      }
      h.fingerprint = live;
      h.has_fingerprint = true;
    }
    h.id_base = id_base(h.dev, h.ino, h.fingerprint, h.generation);
  }
  const size_t max_line = parser_.max_line_bytes;
  char* buf = buffer_.data();
  const size_t cap = buffer_.size();
  size_t consumed = 0;
  bool eof = false;
  bool full = false;
  while (!full && consumed < kMaxBytesPerTurn) {
    const ssize_t got = ::pread(h.fd, buf, cap, static_cast<off_t>(h.read_offset));
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      spdlog::error("logs: read {}: {}", h.path, std::strerror(errno));
      break;
    }
    if (got == 0) {
      eof = true;
      break;
    }
    const auto n = static_cast<size_t>(got);
    if (!h.draining && !still_same_content(h, n)) {
      // Truncated between the check and the read: these bytes may be new content at an old
      // offset. Drop them; the next poll sees the truncation and drains the copy instead.
      break;
    }
    size_t p = 0;
    if (h.skipping) {
      const auto* nl = static_cast<const char*>(std::memchr(buf, '\n', n));
      if (nl == nullptr) {
        h.read_offset += n;
        consumed += n;
        continue;
      }
      p = static_cast<size_t>(nl - buf) + 1;
      h.skipping = false;
      full = !on_line(h, h.long_line, h.long_start, h.read_offset + p, true, now, sink);
      h.long_line.clear();
    }
    while (!full && p < n) {
      const auto* nl = static_cast<const char*>(std::memchr(buf + p, '\n', n - p));
      if (nl == nullptr) {
        if (n - p >= max_line) {
          // No newline within the limit: keep the head for the record, skip to the newline.
          h.skipping = true;
          h.long_start = h.read_offset + p;
          h.long_line.assign(buf + p, max_line);
          p = n;
        }
        break;
      }
      const size_t len = static_cast<size_t>(nl - (buf + p));
      std::string_view line(buf + p, len);
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      const bool truncated = line.size() > max_line;
      if (truncated) {
        line = line.substr(0, max_line);
      }
      const uint64_t start = h.read_offset + p;
      p += len + 1;
      full = !on_line(h, line, start, h.read_offset + p, truncated, now, sink);
    }
    h.read_offset += p;
    consumed += p;
    if (n < cap) {
      eof = !full;
      break;
    }
  }
  if (consumed > 0) {
    h.last_activity = now;
  }
  if (!eof || full) {
    return consumed;
  }
  // At the end of what is there: decide whether held bytes are complete records by now.
  fresh_size(h.fd, h.size);
  const bool idle_rotated = h.rotated && now - h.last_activity >= input_.rotate_wait;
  const bool done = final || h.draining || idle_rotated;
  if (h.has_pending && (done || now - h.pending_since >= parser_.multiline_timeout)) {
    flush_pending(h, sink);
  }
  if (done && (h.skipping || h.read_offset < h.size)) {
    // The file will not grow any more: its last line has no newline but is still a record.
    std::string tail;
    uint64_t start = h.read_offset;
    bool truncated = false;
    if (h.skipping) {
      tail = std::move(h.long_line);
      start = h.long_start;
      truncated = true;
      h.skipping = false;
    } else {
      const uint64_t len = std::min<uint64_t>(h.size - h.read_offset, max_line);
      tail.resize(len);
      const ssize_t got = ::pread(h.fd, tail.data(), len, static_cast<off_t>(h.read_offset));
      tail.resize(got > 0 ? static_cast<size_t>(got) : 0);
      truncated = h.size - h.read_offset > max_line;
    }
    consumed += h.size - h.read_offset;
    h.read_offset = h.size;
    flush_pending(h, sink);
    on_line(h, tail, start, h.size, truncated, now, sink);
    flush_pending(h, sink);
  }
  if (h.draining) {
    if (h.committed < h.emitted_end) {
      wants_flush_ = true;
      return consumed;
    }
    ::close(h.fd);
    h.fd = h.origin_fd;
    h.origin_fd = -1;
    h.draining = false;
    spdlog::info("logs: copy of {} drained; reading the file from the start", h.path);
    start_over(h);
  }
  return consumed;
}

void Tailer::commit(uint64_t handle, uint64_t end) {
  const auto it = handles_.find(handle);
  if (it != handles_.end() && end > it->second->committed) {
    it->second->committed = end;
  }
}

void Tailer::close_finished(Clock::time_point now) {
  for (auto it = handles_.begin(); it != handles_.end();) {
    Handle& h = *it->second;
    if (h.rotated && !h.draining && !h.has_pending && !h.skipping &&
        now - h.last_activity >= input_.rotate_wait && fresh_size(h.fd, h.size) &&
        h.read_offset >= h.size && h.committed >= h.emitted_end) {
      spdlog::info("logs: done with rotated {}", h.path);
      ::close(h.fd);
      delete it->second;
      it = handles_.erase(it);
      continue;
    }
    ++it;
  }
  metrics_.files_open = handles_.size();
}

std::vector<FileState> Tailer::states() const {
  std::vector<FileState> out;
  for (const auto& [key, s] : restored_) {
    out.push_back(s);
  }
  for (const auto& [id, h] : handles_) {
    out.push_back(FileState{h->dev, h->ino, h->fingerprint, h->has_fingerprint, h->generation,
                            h->committed, h->path});
  }
  return out;
}

uint64_t Tailer::lag_bytes() const {
  uint64_t lag = 0;
  for (const auto& [id, h] : handles_) {
    if (h->size > h->committed) {
      lag += h->size - h->committed;
    }
  }
  return lag;
}

}  // namespace pillion::logs
