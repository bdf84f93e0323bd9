#pragma once
// The admin API's endpoints (served by admin::AdminServer on the main thread). Reading
// endpoints answer GET; endpoints that change something need POST, so a stray browser visit or
// a probe cannot drain the proxy.
#include <string_view>

#include "admin/admin_server.h"
#include "observe/stats.h"
#include "proxy/lifecycle.h"
#include "proxy/runtime.h"
#include "tls/identity_watcher.h"

namespace pillion::proxy {

struct AdminContext {
  const observe::Stats& stats;
  RuntimePtr runtime;  // the one in force: a reload replaces it (both on the main thread)
  Lifecycle& lifecycle;
  int workers = 0;
  const tls::IdentityWatcher* identity = nullptr;  // mutual TLS; null when not configured
};

// The Prometheus text: the stats plus each cluster's shared state.
std::string render_metrics(const AdminContext& context);

admin::AdminResponse handle_admin(std::string_view method, std::string_view path,
                                  std::string_view query, AdminContext& context);

// kubelet's /healthz/ready and the app probes (/app-health/<name>) on the readiness server.
admin::AdminResponse handle_readiness(std::string_view path, const Lifecycle& lifecycle,
                                      const config::Snapshot& config);

}  // namespace pillion::proxy
