#pragma once
// Acknowledged read positions, persisted so a restart resumes where the sink left off. A file
// is known by device+inode; the fingerprint (hash of its first line) tells a truncated or
// replaced file from the one the offset belongs to.
#include <cstdint>
#include <string>
#include <vector>

namespace pillion::logs {

struct FileState {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t fingerprint = 0;
  bool has_fingerprint = false;
  uint64_t generation = 0;  // +1 each time the file was truncated (copytruncate)
  uint64_t offset = 0;      // everything before it was acknowledged by the sink
  std::string path;         // where the file was last seen (to find it again after a rename)
  bool operator==(const FileState&) const = default;
};

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string path) : path_(std::move(path)) {}

  // Reads the file; a missing file is an empty state. Throws std::runtime_error when the file
  // exists but cannot be read or parsed (better to stop than to re-ship or skip data silently).
  std::vector<FileState> load() const;
  // Writes atomically: temporary file, fsync, rename, fsync of the directory. Throws on error.
  void save(const std::vector<FileState>& states) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pillion::logs
