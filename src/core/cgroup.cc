#include "core/cgroup.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace pillion::core {
namespace {

std::optional<long long> parse_integer(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::optional<double> quota_ratio(std::optional<long long> quota, std::optional<long long> period) {
  if (!quota || !period || *quota <= 0 || *period <= 0) {
    return std::nullopt;
  }
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

}  // namespace

std::optional<double> parse_cpu_max(std::string_view text) {
  auto space = text.find(' ');
  if (space == std::string_view::npos) {
    return std::nullopt;
  }
  auto quota = text.substr(0, space);
  if (quota == "max") {
    return std::nullopt;
  }
  return quota_ratio(parse_integer(quota), parse_integer(text.substr(space + 1)));
}

std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period) {
  return quota_ratio(parse_integer(quota), parse_integer(period));
}

int default_worker_count(std::string_view cgroup_root) {
  std::string root(cgroup_root);
  std::optional<double> cpus;
  if (auto v2 = read_file(root + "/cpu.max")) {
    cpus = parse_cpu_max(*v2);
  } else if (auto quota = read_file(root + "/cpu/cpu.cfs_quota_us")) {
    if (auto period = read_file(root + "/cpu/cpu.cfs_period_us")) {
      cpus = parse_cfs_quota(*quota, *period);
    }
  }
  int available = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    available = CPU_COUNT(&set);
  }
  if (available <= 0) {
    available = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  if (cpus) {
    return std::clamp(static_cast<int>(std::ceil(*cpus)), 1, available);
  }
  return available;
}

}  // namespace pillion::core
