#include "core/file_watcher.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

namespace pillion::core {

namespace asio = boost::asio;

namespace {

constexpr uint32_t kDirectoryEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                      IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                      IN_MODIFY;

std::filesystem::path directory_of(const std::filesystem::path& path) {
  auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

}  // namespace

struct FileWatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& context, std::vector<std::string> paths, OnCheck on_check,
       FileWatcherOptions options)
      : paths(std::move(paths)),
        on_check(std::move(on_check)),
        options(std::move(options)),
        events(context),
        debounce_timer(context),
        poll_timer(context) {}

  std::vector<std::string> paths;
  OnCheck on_check;
  FileWatcherOptions options;
  asio::posix::stream_descriptor events;
  asio::steady_timer debounce_timer;
  asio::steady_timer poll_timer;
  int inotify_fd = -1;
  std::map<std::string, int> watches;  // canonical directory -> watch descriptor
  bool stopped = false;
  alignas(inotify_event) std::array<char, 8192> buffer;

  bool start_inotify() {
    inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd < 0) {
      spdlog::warn("{} watch: inotify unavailable ({}); polling every {} ms", options.name,
                   std::strerror(errno), options.poll_interval.count());
      return false;
    }
    events.assign(inotify_fd);
    refresh_watches();
    if (watches.empty()) {
      spdlog::warn("{} watch: cannot watch the directory of {}; polling every {} ms", options.name,
                   paths.empty() ? std::string("-") : paths.front(), options.poll_interval.count());
      boost::system::error_code ignored;
      events.close(ignored);
      inotify_fd = -1;
      return false;
    }
    read_events();
    return true;
  }

  // The directory of each path and the directory each path resolves to; targets that moved
  // (a swap pointed `..data` at a new timestamped directory) are followed.
  void refresh_watches() {
    if (inotify_fd < 0) {
      return;
    }
    std::set<std::string> wanted;
    for (const auto& path : paths) {
      std::error_code ec;
      auto own = std::filesystem::canonical(directory_of(path), ec);
      if (!ec) {
        wanted.insert(own.string());
      }
      auto target = std::filesystem::canonical(path, ec);
      if (!ec) {
        wanted.insert(directory_of(target).string());
      }  // else missing for now: its directory's watch sees it come back
    }
    for (auto it = watches.begin(); it != watches.end();) {
      if (wanted.count(it->first) == 0) {
        ::inotify_rm_watch(inotify_fd, it->second);  // EINVAL if the directory is gone: fine
        it = watches.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& directory : wanted) {
      if (watches.count(directory) != 0) {
        continue;
      }
      int watch = ::inotify_add_watch(inotify_fd, directory.c_str(), kDirectoryEvents);
      if (watch >= 0) {
        watches.emplace(directory, watch);
      }
    }
  }

  void read_events() {
    events.async_read_some(asio::buffer(buffer), [self = shared_from_this()](
                                                     const boost::system::error_code& ec, size_t) {
      if (ec == asio::error::operation_aborted || self->stopped) {
        return;
      }
      if (ec) {
        spdlog::warn("{} watch: inotify failed ({}); polling only", self->options.name,
                     ec.message());
        return;
      }
      // Which entry changed does not matter: any event means "look again once quiet".
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
    refresh_watches();
    on_check();
  }

  void stop() {
    stopped = true;
    debounce_timer.cancel();
    poll_timer.cancel();
    boost::system::error_code ignored;
    events.close(ignored);  // closes the inotify fd, with its watches
    inotify_fd = -1;
    watches.clear();
  }
};

FileWatcher::FileWatcher(asio::io_context& context, std::vector<std::string> paths,
                         OnCheck on_check, FileWatcherOptions options)
    : impl_(std::make_shared<Impl>(context, std::move(paths), std::move(on_check),
                                   std::move(options))) {}

FileWatcher::~FileWatcher() {
  stop();
}

bool FileWatcher::start() {
  impl_->stopped = false;
  bool watching = impl_->options.use_inotify && impl_->start_inotify();
  impl_->poll();
  return watching || impl_->options.poll_interval.count() > 0;
}

void FileWatcher::stop() {
  if (impl_ && !impl_->stopped) {
    impl_->stop();
  }
}

bool FileWatcher::inotify_active() const {
  return impl_->inotify_fd >= 0;
}

std::optional<std::string> read_whole_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  std::string text;
  struct stat status {};
  if (::fstat(fd, &status) == 0 && status.st_size > 0) {
    // One allocation: growing would leave copies of a key in freed memory.
    text.reserve(static_cast<size_t>(status.st_size) + 1);
  }
  std::array<char, 16 * 1024> buffer;
  bool ok = true;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    text.append(buffer.data(), static_cast<size_t>(n));
  }
  ::explicit_bzero(buffer.data(), buffer.size());
  ::close(fd);
  if (!ok) {
    ::explicit_bzero(text.data(), text.size());
    return std::nullopt;
  }
  return text;
}

uint64_t content_hash(std::string_view content, uint64_t seed) {
  uint64_t hash = seed;
  for (unsigned char c : content) {
    hash = (hash ^ c) * 1099511628211ull;
  }
  return hash;
}

}  // namespace pillion::core
