#pragma once
// The admin API's endpoints (served by admin::AdminServer on the main thread). Reading
// endpoints answer GET; endpoints that change something need POST, so a stray browser visit or
// a probe cannot drain the proxy.
#include <string_view>

#include "admin/admin_server.h"
#include "observe/stats.h"
#include "proxy/lifecycle.h"
#include "proxy/runtime.h"

namespace pillion::proxy {

struct AdminContext {
  const observe::Stats& stats;
  const Runtime& runtime;
  Lifecycle& lifecycle;
  int workers = 0;
};

admin::AdminResponse handle_admin(std::string_view method, std::string_view path,
                                  std::string_view query, AdminContext& context);

// kubelet's /healthz/ready and the app probes (/app-health/<name>) on the readiness server.
admin::AdminResponse handle_readiness(std::string_view path, const Lifecycle& lifecycle,
                                      const config::Snapshot& config);

}  // namespace pillion::proxy
