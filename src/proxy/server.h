#pragma once
// The proxy process: N workers, the access-log writer, the admin server and signal handling
// on the main thread. run() returns the exit code once the proxy has stopped.
#include <functional>
#include <string>

#include "proxy/runtime.h"

namespace pillion::proxy {

struct ServerOptions {
  int workers = 0;  // 0: from config, else the cgroup CPU quota
  // Called once everything is bound and serving (tests and the demo use it to print ports).
  std::function<void()> on_ready;
};

int run_server(RuntimePtr runtime, const ServerOptions& options);

}  // namespace pillion::proxy
