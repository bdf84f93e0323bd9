#pragma once
// How many CPUs this process may use: the container's cgroup CPU quota, not the node's cores.
#include <optional>
#include <string_view>

namespace pillion::core {

// Parses cgroup v2 `cpu.max` ("max 100000" or "150000 100000"); nullopt when unlimited or bad.
std::optional<double> parse_cpu_max(std::string_view text);
// Parses cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us; nullopt when unlimited (-1) or bad.
std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period);

// Worker threads to start by default: the CPU quota rounded up (at least 1), else the number of
// CPUs in this process's affinity mask. `root` is where cgroup files are looked up (for tests).
int default_worker_count(std::string_view cgroup_root = "/sys/fs/cgroup");

}  // namespace pillion::core
