#include "proxy/config_watcher.h"

#include <spdlog/spdlog.h>
#include <optional>

#include "core/file_watcher.h"

namespace pillion::proxy {

struct ConfigWatcher::State {
  std::string path;
  OnChange on_change;
  std::optional<uint64_t> last_hash;
};

namespace {

core::FileWatcherOptions file_options(const ConfigWatcherOptions& options) {
  core::FileWatcherOptions out;
  out.poll_interval = options.poll_interval;
  out.debounce = options.debounce;
  out.use_inotify = options.use_inotify;
  out.name = "config";
  return out;
}

}  // namespace

ConfigWatcher::ConfigWatcher(boost::asio::io_context& context, std::string path, OnChange on_change,
                             ConfigWatcherOptions options)
    : state_(std::make_shared<State>()) {
  state_->path = std::move(path);
  state_->on_change = std::move(on_change);
  // The callback holds the state, not `this`: a check already queued may outlive the watcher.
  files_ = std::make_unique<core::FileWatcher>(
      context, std::vector<std::string>{state_->path},
      [state = state_] {
        auto content = core::read_whole_file(state->path);
        if (!content) {
          return;  // gone (a swap in progress, or deleted): keep the running config
        }
        auto hash = core::content_hash(*content);
        if (state->last_hash && *state->last_hash == hash) {
          return;
        }
        state->last_hash = hash;
        spdlog::debug("config watch: {} changed", state->path);
        state->on_change(std::move(*content));
      },
      file_options(options));
}

ConfigWatcher::~ConfigWatcher() {
  stop();
}

bool ConfigWatcher::start() {
  if (auto content = core::read_whole_file(state_->path)) {
    state_->last_hash = core::content_hash(*content);
  }
  return files_->start();
}

void ConfigWatcher::stop() {
  files_->stop();
}

void ConfigWatcher::note_content(std::string_view content) {
  state_->last_hash = core::content_hash(content);
}

bool ConfigWatcher::inotify_active() const {
  return files_->inotify_active();
}

uint64_t ConfigWatcher::content_hash(std::string_view content) {
  return core::content_hash(content);
}

}  // namespace pillion::proxy
