#pragma once
// Config reload (SIGHUP, or a change of the config file): load and validate the file, check
// that the listeners are unchanged (they are bound sockets), build the new runtime and hand it
// to every worker. Requests in flight finish on the runtime they started with. A rejected file
// is logged with its file:line:col and counted; the running config stays. Main thread only.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.h"
#include "observe/stats.h"
#include "proxy/runtime.h"

namespace pillion::proxy {

// Gives each cluster of `runtime` its stats slot (stable across reloads, by name) and tells
// `stats` which (listener, cluster) series the runtime can produce and its config version.
// Call before the runtime reaches a worker.
void bind_stats(Runtime& runtime, observe::Stats& stats);

// "" when `next` has the listeners of `running` (name, address, mode, route table, in order);
// else what differs, e.g. "listener changes need a restart: listener 'out' address
// 127.0.0.1:7000 -> 127.0.0.1:7001".
std::string listener_changes(const config::Snapshot& running, const config::Snapshot& next);

// Settings read once at startup (worker count, admin/metrics/readiness servers, access-log
// file, span exporter, drain time, app probes): `next` keeps the running values, so the dump
// shows what is in force. Returns one line per setting that differed.
std::vector<std::string> keep_startup_settings(const config::Snapshot& running,
                                               config::Snapshot& next);

class Reloader {
 public:
  struct Hooks {
    // Builds a runtime from a snapshot; null with `error` set on failure.
    std::function<RuntimePtr(config::SnapshotPtr, std::string& error)> build;
    // Hands the new runtime to the workers and the admin API.
    std::function<void(const RuntimePtr&)> publish;
    // The command-line overrides `pillion proxy` applied to the file at startup; may be empty.
    std::function<bool(config::Snapshot&, std::string& error)> overrides;
  };

  Reloader(std::string path, RuntimePtr running, observe::Stats& stats, Hooks hooks);

  // Applies `text`, the content of the config file. false: rejected (logged and counted).
  bool apply(std::string_view text);
  // SIGHUP: reads the file and applies it. `content` receives what was read (empty if the file
  // could not be read).
  bool reload_file(std::string& content);

  const RuntimePtr& running() const { return running_; }
  const std::string& path() const { return path_; }

 private:
  bool reject(const std::string& error);

  std::string path_;
  RuntimePtr running_;
  observe::Stats& stats_;
  Hooks hooks_;
};

}  // namespace pillion::proxy
