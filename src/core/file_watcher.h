#pragma once
// Tells its owner when any of a few files may have changed, on an io_context's thread.
//
// Kubernetes mounts ConfigMaps and Secrets as `DIR/name -> ..data/name` with `..data ->
// ..2026_11_30_...`, and updates them by renaming a new `..data_tmp` symlink over `..data`: the
// files' own inodes never change, so a watch on a file misses the update. The watcher therefore
// watches the directory holding each path (it sees `..data` replaced) and the directory each path
// resolves to (an in-place edit behind a symlink happens there), follows those targets when a swap
// moves them, and also polls (inotify does not work on every filesystem). It reports "look again"
// after a quiet period (an editor's write-rename-chmod burst is one report); deciding whether the
// content really changed is the owner's job (see content_hash).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace pillion::core {

struct FileWatcherOptions {
  std::chrono::milliseconds poll_interval{2000};  // 0: no polling
  std::chrono::milliseconds debounce{100};        // quiet time after the last inotify event
  bool use_inotify = true;
  std::string name = "file";  // in log lines: "config watch: ..."
};

class FileWatcher {
 public:
  using OnCheck = std::function<void()>;

  FileWatcher(boost::asio::io_context& context, std::vector<std::string> paths, OnCheck on_check,
              FileWatcherOptions options = {});
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Starts watching. Without inotify (unavailable, or no directory can be watched) it still
  // polls; false if it can do neither.
  bool start();
  void stop();
  bool inotify_active() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with pending handlers
};

// The whole file through the symlinks, or nothing (missing, or half-way through a swap). The
// read buffer is wiped afterwards: callers read private keys with it.
std::optional<std::string> read_whole_file(const std::string& path);

// FNV-1a, 64 bit: enough to tell "the same bytes again" from a change; not for adversaries.
uint64_t content_hash(std::string_view content, uint64_t seed = 14695981039346656037ull);

}  // namespace pillion::core
