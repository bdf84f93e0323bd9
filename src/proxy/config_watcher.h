#pragma once
// Watches the config file for content changes, on the main thread's io_context.
//
// core::FileWatcher sees ConfigMap `..data` swaps, edits behind symlinks and plain writes (and
// polls); this re-reads the file on each of its reports and calls back only when the content
// differs from the last content reported or noted, so an editor's write-rename-chmod burst is one
// reload and a rewrite with the same bytes is none.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace pillion::core {
class FileWatcher;
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
  struct State;
  std::shared_ptr<State> state_;  // shared with the file watcher's callback
  std::unique_ptr<core::FileWatcher> files_;
};

}  // namespace pillion::proxy
