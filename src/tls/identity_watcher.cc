#include "tls/identity_watcher.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/file_watcher.h"

namespace pillion::tls {

namespace asio = boost::asio;

namespace {

void hash_into(uint64_t& hash, std::string_view text) {
  hash = core::content_hash(text, hash);
  hash = core::content_hash("\xff", hash);  // separator: "ab"+"c" differs from "a"+"bc"
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
      : files(std::move(files)), options(options), expiry_timer(context) {}

  IdentityFiles files;
  IdentityWatcherOptions options;
  OnRotate on_rotate;
  std::unique_ptr<core::FileWatcher> watcher;  // calls check(); made by IdentityWatcher
  asio::steady_timer expiry_timer;
  std::optional<uint64_t> last_hash;  // of the last content seen (published or rejected)
  bool stopped = false;

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
    auto cert = core::read_whole_file(files.cert);
    auto key = core::read_whole_file(files.key);
    auto ca = core::read_whole_file(files.ca);
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
    watcher->stop();
    expiry_timer.cancel();
  }
};

IdentityWatcher::IdentityWatcher(asio::io_context& context, IdentityFiles files,
                                 IdentityWatcherOptions options)
    : impl_(std::make_shared<Impl>(context, std::move(files), options)) {
  core::FileWatcherOptions watch;
  watch.poll_interval = options.poll_interval;
  watch.debounce = options.debounce;
  watch.use_inotify = options.use_inotify;
  watch.name = "identity";
  // A weak reference: the Impl owns the file watcher, so a strong one would keep both alive.
  impl_->watcher = std::make_unique<core::FileWatcher>(
      context, std::vector<std::string>{impl_->files.cert, impl_->files.key, impl_->files.ca},
      [weak = std::weak_ptr<Impl>(impl_)] {
        if (auto self = weak.lock()) {
          self->check();
        }
      },
      watch);
}

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
  bool watching = impl_->watcher->start();
  impl_->schedule_expiry_check();
  return watching;
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
  return impl_->watcher->inotify_active();
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
