#pragma once
// Hot rotation of the workload identity: watches the cert, key and bundle files and publishes a
// new Identity when their content changes and validates; a half-written or mismatched set is
// rejected (warning, counter) and the current identity stays in force.
//
// Kubernetes Secret volumes (and cert-manager's csi driver) present `DIR/cert.pem ->
// ..data/cert.pem` and rotate by renaming a new `..data` symlink over the old one: the files' own
// inodes never change. So the watcher uses inotify on the directories holding the paths and on
// the directories they resolve to, re-reads all three files after a quiet period (debounce), and
// also polls (inotify does not work on every filesystem), acting only when the combined content
// hash differs from the last one seen.
//
// Runs on the main io_context. current()/version() are safe from any thread: a worker keeps the
// identity it last fetched and compares version() (one atomic load) before each new handshake;
// IdentityReader below does exactly that.
#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tls/identity.h"

namespace boost::asio {
class io_context;
}

namespace pillion::tls {

struct IdentityWatcherOptions {
  std::chrono::milliseconds poll_interval{1000};  // 0: no polling
  std::chrono::milliseconds debounce{100};        // quiet time after the last inotify event
  std::chrono::milliseconds expiry_check_interval{std::chrono::hours(1)};
  double expiry_warning_fraction = 0.25;  // warn when less than this much lifetime is left
  bool use_inotify = true;
};

class IdentityWatcher {
 public:
  // Called on the io_context's thread after a new identity is published.
  using OnRotate = std::function<void(const IdentityPtr&)>;

  IdentityWatcher(boost::asio::io_context& context, IdentityFiles files,
                  IdentityWatcherOptions options = {});
  ~IdentityWatcher();
  IdentityWatcher(const IdentityWatcher&) = delete;
  IdentityWatcher& operator=(const IdentityWatcher&) = delete;

  // The first load (call before start()); false and `error` set when the files do not make an
  // identity: the proxy should refuse to start.
  bool load(std::string& error);
  // Starts watching and the periodic expiry check. False when it can neither use inotify nor
  // poll.
  bool start();
  void stop();
  void set_on_rotate(OnRotate on_rotate);

  // Re-reads the files now (what an event does after the debounce); true when a new identity
  // was published.
  bool check_now();

  // Thread-safe.
  IdentityPtr current() const;
  uint64_t version() const;  // 0 before load(); +1 for each identity published
  uint64_t rotations_ok() const;
  uint64_t rotations_failed() const;
  std::string last_error() const;  // the last rejected set's reason; empty if none
  bool inotify_active() const;

  // For the admin /certs endpoint: spiffe_id, trust_domain, serial, not_before, not_after,
  // seconds_left, ca_subject, ca_not_after, version, rotations_ok, rotations_failed,
  // last_error (null if none), files.
  nlohmann::json certs_json() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with pending handlers
};

// A worker's view of the current identity: fetches a new one only when the version changed.
// Not thread-safe itself; one per worker.
class IdentityReader {
 public:
  explicit IdentityReader(const IdentityWatcher& watcher) : watcher_(&watcher) {}
  const IdentityPtr& get() {
    uint64_t version = watcher_->version();
    if (version != version_) {
      identity_ = watcher_->current();
      version_ = version;
    }
    return identity_;
  }

 private:
  const IdentityWatcher* watcher_;
  uint64_t version_ = 0;
  IdentityPtr identity_;
};

}  // namespace pillion::tls
