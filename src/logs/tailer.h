#pragma once
// Follows the files that match the input globs: finds new ones, reads complete lines from the
// last acknowledged offset, follows rename+create rotation (the old file stays open until it is
// drained) and copytruncate (the copy next to the file is drained first, then the file is read
// again from 0 under a new generation), assembles multi-line records and cuts over-long ones.
#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "logs/checkpoint.h"
#include "logs/config.h"
#include "logs/metrics.h"

namespace pillion::logs {

using Clock = std::chrono::steady_clock;

// Where one record came from; `id` is derived from file identity and offset so a resend of the
// same record always carries the same document id.
struct RecordOrigin {
  uint64_t handle = 0;
  uint64_t start = 0;  // offset of the record's first byte
  uint64_t end = 0;    // offset after its last line; acknowledged -> checkpointed
  uint64_t id_base = 0;
  bool truncated = false;
};

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // Takes one record (the bytes are only valid during the call); returns false when there is no
  // room for more (the tailer stops reading and resumes at the next record).
  virtual bool add(std::string_view text, const RecordOrigin& origin) = 0;
};

class Tailer {
 public:
  Tailer(const InputConfig& input, const ParserConfig& parser, Metrics& metrics);
  ~Tailer();
  Tailer(const Tailer&) = delete;
  Tailer& operator=(const Tailer&) = delete;

  // States from the checkpoint; call before the first scan.
  void restore(const std::vector<FileState>& states);
  // Expands the globs: opens new files, notices files that were renamed away or deleted.
  void scan(Clock::time_point now);
  // Reads what is available into `sink`; returns the bytes consumed (0: nothing new anywhere).
  // With `final` set, a record waiting for continuation lines is emitted at once.
  size_t poll(Clock::time_point now, RecordSink& sink, bool final = false);
  // A record up to `end` of `handle` was acknowledged.
  void commit(uint64_t handle, uint64_t end);
  // True when a file waits for its records to be acknowledged before it can go on (truncation).
  bool wants_flush() const { return wants_flush_; }
  // Closes rotated or deleted files that are fully read and acknowledged.
  void close_finished(Clock::time_point now);

  std::vector<FileState> states() const;
  uint64_t lag_bytes() const;
  size_t open_files() const { return handles_.size(); }
  // Paths that matched but could not be opened, with the reason (for a clear startup error).
  const std::map<std::string, std::string>& open_errors() const { return open_errors_; }

  static uint64_t id_base(uint64_t dev, uint64_t ino, uint64_t fingerprint, uint64_t generation);

 private:
  struct Handle;

  void open_file(const std::string& path, const struct ::stat& st, bool rotated,
                 Clock::time_point now);
  size_t poll_handle(Handle& h, Clock::time_point now, RecordSink& sink, bool final);
  bool check_truncation(Handle& h);
  // After reading n bytes at read_offset: the file still holds the content they came from.
  bool still_same_content(Handle& h, size_t n);
  void start_over(Handle& h);
  void drain_copy(Handle& h, int copy, int64_t mtime, uint64_t fingerprint);
  bool emit(Handle& h, std::string_view text, uint64_t start, uint64_t end, bool truncated,
            RecordSink& sink);
  bool on_line(Handle& h, std::string_view line, uint64_t start, uint64_t end, bool truncated,
               Clock::time_point now, RecordSink& sink);
  bool flush_pending(Handle& h, RecordSink& sink);
  // A copy of the file's content (copytruncate) in its directory, opened; -1 if none. Without
  // `intermediate`: the copy of the content being read. With it: the oldest copy of a
  // generation truncated away unseen (see Handle::last_copy_mtime). Sets mtime/fingerprint.
  int find_copy(const Handle& h, bool intermediate, const uint64_t* live_fp, int64_t& mtime,
                uint64_t& fingerprint) const;

  InputConfig input_;
  ParserConfig parser_;
  Metrics& metrics_;
  std::map<uint64_t, Handle*> handles_;
  std::map<std::pair<uint64_t, uint64_t>, FileState> restored_;
  std::map<std::string, std::string> open_errors_;
  std::set<std::string> reported_;  // paths whose open error was already logged
  std::vector<char> buffer_;
  uint64_t next_handle_ = 1;
  bool first_scan_ = true;
  bool wants_flush_ = false;
};

// A 64-bit FNV-1a hash; stable across builds and versions (document ids depend on it).
uint64_t fnv1a(std::string_view bytes, uint64_t seed = 14695981039346656037ull);

// Hash of the first line (at most 256 bytes) of the file; nullopt-like false while the file
// does not have a complete first line yet.
bool file_fingerprint(int fd, uint64_t& fingerprint);

}  // namespace pillion::logs
