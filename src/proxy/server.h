#pragma once
// The proxy process: N workers, the access-log writer, the admin server and signal handling
// on the main thread. run() returns the exit code once the proxy has stopped.
#include <chrono>
#include <functional>
#include <string>

#include "proxy/runtime.h"

namespace pillion::proxy {

struct ServerOptions {
  int workers = 0;  // 0: from config, else the cgroup CPU quota
  // Called once everything is bound and serving (tests and the demo use it to print ports).
  std::function<void()> on_ready;

  // Config reload (docs/config.md, "Reloading the config"). The file the config came from;
  // empty (flags or zero-config): nothing to reload, SIGHUP only reopens the access log.
  std::string config_path;
  // Besides SIGHUP, reload when the file's content changes (inotify, and polling).
  bool watch_config = true;
  std::chrono::milliseconds config_poll_interval{2000};  // 0: inotify only
  // The command-line overrides applied to the file at startup, applied again on each reload.
  std::function<bool(config::Snapshot&, std::string& error)> config_overrides;
};

int run_server(RuntimePtr runtime, const ServerOptions& options);

}  // namespace pillion::proxy
