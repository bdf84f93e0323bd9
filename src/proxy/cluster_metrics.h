#pragma once
// Prometheus families for what each cluster's shared state knows: endpoints by state, circuit
// breakers, ejections, health-check results, DNS refreshes. Read at scrape time from atomics
// the data path writes only when such an event happens.
#include <string>

#include "proxy/runtime.h"
#include "tls/identity_watcher.h"

namespace pillion::proxy {

// Appends the families to `out` (text exposition format 0.0.4).
void render_cluster_metrics(const Runtime& runtime, std::string& out);

// The workload certificate: expiry times and rotations.
void render_tls_metrics(const tls::IdentityWatcher& identity, std::string& out);

}  // namespace pillion::proxy
