#pragma once
// Watches the config file for content changes, on the main thread's io_context.
//
// Kubernetes mounts a ConfigMap as `DIR/pillion.yaml -> ..data/pillion.yaml` with
// `..data -> ..2026_11_30_...`, and updates it by renaming a new `..data_tmp` symlink over
// `..data`: the file's own inode never changes, so a watch on the file misses the update. The
// watcher therefore watches the directory holding the path (it sees `..data` replaced) and the
// directory the path resolves to (an in-place edit behind a symlink), re-reads the file on every
// event, and also polls (inotify does not work on every filesystem). A change is reported only
// when the content differs from the last content reported or noted, after a quiet period, so an
// editor's write-rename-chmod burst is one reload and a rewrite with the same bytes is none.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace pillion::proxy {

struct ConfigWatcherOptions {
  std::chrono::milliseconds poll_interval{2000};  // 0: no polling
  std::chrono::milliseconds debounce{100};        // quiet time after the last event
  bool use_inotify = true;
};

class ConfigWatcher {
 public:
  // Called on the io_context's thread with the new content of the file.
  using OnChange = std::function<void(std::string content)>;

  ConfigWatcher(boost::asio::io_context& context, std::string path, OnChange on_change,
                ConfigWatcherOptions options = {});
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Takes the file's current content as the baseline and starts watching. Without inotify
  // (unavailable, or the directory cannot be watched) it still polls; false if it can do
  // neither.
  bool start();
  void stop();

  // The content now in force (a reload by SIGHUP read it): no callback until it changes again.
  void note_content(std::string_view content);

  bool inotify_active() const;
  static uint64_t content_hash(std::string_view content);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with pending handlers
};

}  // namespace pillion::proxy
