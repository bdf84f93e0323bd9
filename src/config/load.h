#pragma once
// Builds a validated Snapshot from YAML text or from the simple command-line form.
#include <string>
#include <string_view>

#include "config/schema.h"

namespace pillion::config {

struct LoadResult {
  SnapshotPtr snapshot;  // null on error
  std::string error;     // "file:line:col: key.path: what is wrong"
  explicit operator bool() const { return snapshot != nullptr; }
};

LoadResult load_yaml(std::string_view text, std::string_view file_name);
LoadResult load_file(const std::string& path);

// `pillion proxy --listen ADDR --upstream URL`: one HTTP listener, one route, one cluster.
LoadResult from_flags(std::string_view listen, std::string_view upstream_url);

// `pillion proxy` with nothing else: the transparent sidecar on the ports of DESIGN.md §1
// (outbound 15001, inbound 15006, metrics 15090, readiness 15021, admin 127.0.0.1:9901), with
// IPv6 capture listeners beside the IPv4 ones when the host has IPv6.
Snapshot transparent_sidecar(bool ipv6);

}  // namespace pillion::config
