#include "proxy/config_watcher.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

namespace pillion::proxy {

namespace asio = boost::asio;

namespace {

constexpr uint32_t kDirectoryEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                      IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                      IN_MODIFY;

// The whole file through the symlinks, or nothing (missing, or half-way through a swap).
std::optional<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  std::string text;
  std::array<char, 64 * 1024> buffer;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) {
      break;
    }
    text.append(buffer.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

std::string directory_of(const std::filesystem::path& path) {
  auto parent = path.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

struct ConfigWatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& context, std::string path, OnChange on_change,
       ConfigWatcherOptions options)
      : path(std::move(path)),
        on_change(std::move(on_change)),
        options(options),
        events(context),
        debounce_timer(context),
        poll_timer(context) {}

  std::string path;
  OnChange on_change;
  ConfigWatcherOptions options;
  asio::posix::stream_descriptor events;
  asio::steady_timer debounce_timer;
  asio::steady_timer poll_timer;
  int inotify_fd = -1;
  int directory_watch = -1;
  int target_watch = -1;  // the directory the path resolves to, when another one
  std::string target_directory;
  std::optional<uint64_t> last_hash;
  bool stopped = false;
  alignas(inotify_event) std::array<char, 8192> buffer;

  bool start_inotify() {
    inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd < 0) {
      spdlog::warn("config watch: inotify unavailable ({}); polling {} every {} ms", path,
                   std::strerror(errno), options.poll_interval.count());
      return false;
    }
    auto directory = directory_of(path);
    directory_watch = ::inotify_add_watch(inotify_fd, directory.c_str(), kDirectoryEvents);
    if (directory_watch < 0) {
      spdlog::warn("config watch: cannot watch {} ({}); polling {} every {} ms", directory,
                   std::strerror(errno), path, options.poll_interval.count());
      ::close(inotify_fd);
      inotify_fd = -1;
      return false;
    }
    events.assign(inotify_fd);
    watch_target();
    read_events();
    return true;
  }

  // An edit in place behind a symlink happens in the target's directory: watch it too, and
  // follow it when the link moves (a ConfigMap swap points it at a new timestamped directory).
  void watch_target() {
    if (inotify_fd < 0) {
      return;
    }
    std::error_code ec;
    auto target = std::filesystem::canonical(path, ec);
    if (ec) {
      return;  // missing for now: the directory watch sees it come back
    }
    auto directory = directory_of(target);
    if (directory == target_directory) {
      return;
    }
    auto own = std::filesystem::canonical(directory_of(path), ec);
    if (target_watch >= 0 && target_watch != directory_watch) {
      ::inotify_rm_watch(inotify_fd, target_watch);  // EINVAL if its directory is gone: fine
    }
    target_watch = -1;
    target_directory = directory;
    if (!ec && own == std::filesystem::path(directory)) {
      return;  // the path's own directory, already watched
    }
    target_watch = ::inotify_add_watch(inotify_fd, directory.c_str(), kDirectoryEvents);
  }

  void read_events() {
    events.async_read_some(asio::buffer(buffer), [self = shared_from_this()](
                                                     const boost::system::error_code& ec, size_t) {
      if (ec == asio::error::operation_aborted || self->stopped) {
        return;
      }
      if (ec) {
        spdlog::warn("config watch: inotify failed ({}); polling {} only", ec.message(),
                     self->path);
        return;
      }
      // Which entry changed does not matter: any event re-reads the file once quiet.
      self->debounce();
      self->read_events();
    });
  }

  void debounce() {
    debounce_timer.expires_after(options.debounce);
    debounce_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) {
        return;  // re-armed by a later event, or stopped
      }
      self->check();
    });
  }

  void poll() {
    if (options.poll_interval.count() <= 0) {
      return;
    }
    poll_timer.expires_after(options.poll_interval);
    poll_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) {
        return;
      }
      self->check();
      self->poll();
    });
  }

  void check() {
    watch_target();
    auto content = read_file(path);
    if (!content) {
      return;  // gone (a swap in progress, or deleted): keep the running config
    }
    auto hash = content_hash(*content);
    if (last_hash && *last_hash == hash) {
      return;
    }
    last_hash = hash;
    spdlog::debug("config watch: {} changed", path);
    on_change(std::move(*content));
  }

  void stop() {
    stopped = true;
    debounce_timer.cancel();
    poll_timer.cancel();
    boost::system::error_code ignored;
    events.close(ignored);  // closes the inotify fd, with its watches
    inotify_fd = -1;
  }
};

ConfigWatcher::ConfigWatcher(asio::io_context& context, std::string path, OnChange on_change,
                             ConfigWatcherOptions options)
    : impl_(std::make_shared<Impl>(context, std::move(path), std::move(on_change), options)) {}

ConfigWatcher::~ConfigWatcher() {
  stop();
}

bool ConfigWatcher::start() {
  if (auto content = read_file(impl_->path)) {
    impl_->last_hash = content_hash(*content);
  }
  bool watching = impl_->options.use_inotify && impl_->start_inotify();
  impl_->poll();
  return watching || impl_->options.poll_interval.count() > 0;
}

void ConfigWatcher::stop() {
  if (impl_ && !impl_->stopped) {
    impl_->stop();
  }
}

void ConfigWatcher::note_content(std::string_view content) {
  impl_->last_hash = content_hash(content);
}

bool ConfigWatcher::inotify_active() const {
  return impl_->inotify_fd >= 0;
}

uint64_t ConfigWatcher::content_hash(std::string_view content) {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bit
  for (unsigned char c : content) {
    hash = (hash ^ c) * 1099511628211ull;
  }
  return hash;
}

}  // namespace pillion::proxy
