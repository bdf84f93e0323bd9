#include "tls/identity_watcher.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace pillion::tls {

namespace asio = boost::asio;

namespace {

constexpr uint32_t kDirectoryEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                      IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                      IN_MODIFY;

// The whole file through the symlinks, or nothing (missing, or half-way through a swap).
std::optional<std::string> read_quietly(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  std::string text;
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
  OPENSSL_cleanse(buffer.data(), buffer.size());
  ::close(fd);
  if (!ok) {
    OPENSSL_cleanse(text.data(), text.size());
    return std::nullopt;
  }
  return text;
}

void hash_into(uint64_t& hash, std::string_view text) {
  for (unsigned char c : text) {
    hash = (hash ^ c) * 1099511628211ull;  // FNV-1a, 64 bit
  }
  hash = (hash ^ 0xff) * 1099511628211ull;  // separator: "ab"+"c" differs from "a"+"bc"
}

std::filesystem::path directory_of(const std::filesystem::path& path) {
  auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

// "3d4h", "5h12m", "14m20s", "42s".
std::string human_duration(std::chrono::seconds left) {
  auto total = left.count() < 0 ? 0 : left.count();
  auto days = total / 86400;
  auto hours = (total % 86400) / 3600;
  auto minutes = (total % 3600) / 60;
  auto seconds = total % 60;
  if (days > 0) {
    return std::to_string(days) + "d" + std::to_string(hours) + "h";
  }
  if (hours > 0) {
    return std::to_string(hours) + "h" + std::to_string(minutes) + "m";
  }
  if (minutes > 0) {
    return std::to_string(minutes) + "m" + std::to_string(seconds) + "s";
  }
  return std::to_string(seconds) + "s";
}

}  // namespace

struct IdentityWatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& context, IdentityFiles files, IdentityWatcherOptions options)
      : files(std::move(files)),
        options(options),
        events(context),
        debounce_timer(context),
        poll_timer(context),
        expiry_timer(context) {}

  IdentityFiles files;
  IdentityWatcherOptions options;
  OnRotate on_rotate;
  asio::posix::stream_descriptor events;
  asio::steady_timer debounce_timer;
  asio::steady_timer poll_timer;
  asio::steady_timer expiry_timer;
  int inotify_fd = -1;
  std::map<std::string, int> watches;  // canonical directory -> watch descriptor
  std::optional<uint64_t> last_hash;   // of the last content seen (published or rejected)
  bool stopped = false;
  alignas(inotify_event) std::array<char, 8192> buffer;

  // Read from any thread.
  mutable std::mutex mutex;
  IdentityPtr identity;    // guarded by mutex
  std::string last_error;  // guarded by mutex
  std::atomic<uint64_t> version{0};
  std::atomic<uint64_t> rotations_ok{0};
  std::atomic<uint64_t> rotations_failed{0};

  IdentityPtr current() const {
    std::lock_guard lock(mutex);
    return identity;
  }

  void publish(IdentityPtr next) {
    {
      std::lock_guard lock(mutex);
      identity = std::move(next);
    }
    version.fetch_add(1, std::memory_order_release);
  }

  void set_error(std::string error) {
    std::lock_guard lock(mutex);
    last_error = std::move(error);
  }

  // The three files' contents and their combined hash; nullopt while one is missing.
  std::optional<uint64_t> read_all(IdentityPem& pem) {
    auto cert = read_quietly(files.cert);
    auto key = read_quietly(files.key);
    auto ca = read_quietly(files.ca);
    if (!cert || !key || !ca) {
      if (key) {
        OPENSSL_cleanse(key->data(), key->size());
      }
      return std::nullopt;
    }
    pem.cert = std::move(*cert);
    pem.key = std::move(*key);
    pem.ca = std::move(*ca);
    uint64_t hash = 14695981039346656037ull;
    hash_into(hash, pem.cert);
    hash_into(hash, pem.key);
    hash_into(hash, pem.ca);
    return hash;
  }

  bool start_inotify() {
    inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd < 0) {
      spdlog::warn("identity watch: inotify unavailable ({}); polling every {} ms",
                   std::strerror(errno), options.poll_interval.count());
      return false;
    }
    events.assign(inotify_fd);
    refresh_watches();
    if (watches.empty()) {
      spdlog::warn("identity watch: cannot watch the directories of {}; polling every {} ms",
                   files.cert, options.poll_interval.count());
      boost::system::error_code ignored;
      events.close(ignored);
      inotify_fd = -1;
      return false;
    }
    read_events();
    return true;
  }

  // Watches the directory of each path and the directory each path resolves to (an in-place edit
  // behind a symlink happens there); follows the targets when a swap moves them.
  void refresh_watches() {
    if (inotify_fd < 0) {
      return;
    }
    std::set<std::string> wanted;
    for (const auto* path : {&files.cert, &files.key, &files.ca}) {
      std::error_code ec;
      auto own = std::filesystem::canonical(directory_of(*path), ec);
      if (!ec) {
        wanted.insert(own.string());
      }
      auto target = std::filesystem::canonical(*path, ec);
      if (!ec) {
        wanted.insert(directory_of(target).string());
      }
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
        spdlog::warn("identity watch: inotify failed ({}); polling only", ec.message());
        return;
      }
      self->debounce();  // which entry changed does not matter: re-read all once quiet
      self->read_events();
    });
  }

  void debounce() {
    debounce_timer.expires_after(options.debounce);
    debounce_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) {
        return;
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

  void schedule_expiry_check() {
    if (options.expiry_check_interval.count() <= 0) {
      return;
    }
    expiry_timer.expires_after(options.expiry_check_interval);
    expiry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) {
        return;
      }
      self->check_expiry();
      self->schedule_expiry_check();
    });
  }

  void check_expiry() {
    auto identity = current();
    if (!identity) {
      return;
    }
    auto now = Identity::Clock::now();
    if (identity->not_after() <= now) {
      spdlog::error("workload certificate {} expired at {}: rotation is failing",
                    identity->spiffe_id(), format_time(identity->not_after()));
    } else if (identity->expiring(now, options.expiry_warning_fraction)) {
      auto left = std::chrono::duration_cast<std::chrono::seconds>(identity->not_after() - now);
      spdlog::warn("workload certificate expires at {} (in {}): rotation may be failing",
                   format_time(identity->not_after()), human_duration(left));
    }
  }

  // Re-reads the files; publishes a new identity when the content changed and validates.
  bool check() {
    refresh_watches();
    IdentityPem pem;
    auto hash = read_all(pem);
    if (!hash || (last_hash && *last_hash == *hash)) {
      OPENSSL_cleanse(pem.key.data(), pem.key.size());
      return false;  // a swap in progress, or nothing new
    }
    last_hash = hash;
    std::string error;
    auto next = Identity::parse(pem, files, error);
    OPENSSL_cleanse(pem.key.data(), pem.key.size());
    if (!next) {
      rotations_failed.fetch_add(1, std::memory_order_relaxed);
      auto old = current();
      spdlog::warn("workload certificate not rotated: {}; keeping {} (serial {})", error,
                   old ? old->spiffe_id() : std::string("none"),
                   old ? old->serial() : std::string("-"));
      set_error(std::move(error));
      return false;
    }
    publish(next);
    rotations_ok.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("workload certificate rotated: {}, serial {}, expires {}", next->spiffe_id(),
                 next->serial(), format_time(next->not_after()));
    check_expiry();
    if (on_rotate) {
      on_rotate(next);
    }
    return true;
  }

  void stop() {
    stopped = true;
    debounce_timer.cancel();
    poll_timer.cancel();
    expiry_timer.cancel();
    boost::system::error_code ignored;
    events.close(ignored);  // closes the inotify fd, with its watches
    inotify_fd = -1;
    watches.clear();
  }
};

IdentityWatcher::IdentityWatcher(asio::io_context& context, IdentityFiles files,
                                 IdentityWatcherOptions options)
    : impl_(std::make_shared<Impl>(context, std::move(files), options)) {}

IdentityWatcher::~IdentityWatcher() {
  stop();
}

bool IdentityWatcher::load(std::string& error) {
  IdentityPem pem;
  auto hash = impl_->read_all(pem);
  if (!hash) {
    // Say which file: Identity::load names it.
    auto identity = Identity::load(impl_->files, error);
    if (!identity) {
      return false;
    }
    impl_->publish(std::move(identity));
  } else {
    auto identity = Identity::parse(pem, impl_->files, error);
    OPENSSL_cleanse(pem.key.data(), pem.key.size());
    if (!identity) {
      return false;
    }
    impl_->last_hash = hash;
    impl_->publish(std::move(identity));
  }
  auto identity = impl_->current();
  spdlog::info("workload certificate loaded: {}, serial {}, expires {}", identity->spiffe_id(),
               identity->serial(), format_time(identity->not_after()));
  impl_->check_expiry();
  return true;
}

bool IdentityWatcher::start() {
  impl_->stopped = false;
  bool watching = impl_->options.use_inotify && impl_->start_inotify();
  impl_->poll();
  impl_->schedule_expiry_check();
  return watching || impl_->options.poll_interval.count() > 0;
}

void IdentityWatcher::stop() {
  if (impl_ && !impl_->stopped) {
    impl_->stop();
  }
}

void IdentityWatcher::set_on_rotate(OnRotate on_rotate) {
  impl_->on_rotate = std::move(on_rotate);
}

bool IdentityWatcher::check_now() {
  return impl_->check();
}

IdentityPtr IdentityWatcher::current() const {
  return impl_->current();
}

uint64_t IdentityWatcher::version() const {
  return impl_->version.load(std::memory_order_acquire);
}

uint64_t IdentityWatcher::rotations_ok() const {
  return impl_->rotations_ok.load(std::memory_order_relaxed);
}

uint64_t IdentityWatcher::rotations_failed() const {
  return impl_->rotations_failed.load(std::memory_order_relaxed);
}

std::string IdentityWatcher::last_error() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->last_error;
}

bool IdentityWatcher::inotify_active() const {
  return impl_->inotify_fd >= 0;
}

nlohmann::json IdentityWatcher::certs_json() const {
  nlohmann::json out = nlohmann::json::object();
  auto identity = current();
  if (identity) {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(identity->not_after() -
                                                                 Identity::Clock::now());
    out["spiffe_id"] = identity->spiffe_id();
    out["trust_domain"] = identity->trust_domain();
    out["serial"] = identity->serial();
    out["not_before"] = format_time(identity->not_before());
    out["not_after"] = format_time(identity->not_after());
    out["seconds_left"] = left.count();
    out["ca_subject"] = identity->ca_subject();
    out["ca_not_after"] = format_time(identity->ca_not_after());
  }
  out["version"] = version();
  out["rotations_ok"] = rotations_ok();
  out["rotations_failed"] = rotations_failed();
  auto error = last_error();
  out["last_error"] = error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error);
  out["files"] = {{"cert", impl_->files.cert}, {"key", impl_->files.key}, {"ca", impl_->files.ca}};
  return out;
}

}  // namespace pillion::tls
