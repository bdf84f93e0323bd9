#include "init/iptables.h"

#include <unistd.h>

#include <cstring>

namespace pillion::init {
namespace {

bool permission_denied(const std::string& err) {
  return err.find("Permission denied") != std::string::npos ||
         err.find("Operation not permitted") != std::string::npos ||
         err.find("you must be root") != std::string::npos;
}

// iptables prints usage hints after the error; the first lines carry the reason and the line.
std::string first_lines(const std::string& text, int count) {
  std::string out;
  size_t start = 0;
  while (count-- > 0 && start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    if (!out.empty()) {
      out += "; ";
    }
    out += text.substr(start, end - start);
    start = end + 1;
  }
  return out;
}

ProcessResult run_checked(const std::vector<std::string>& argv, const std::string& input) {
  auto result = run_process(argv, input);
  if (!result.ok()) {
    std::string command;
    for (const auto& arg : argv) {
      command += command.empty() ? arg : " " + arg;
    }
    throw IptablesError(explain_failure(command, result));
  }
  return result;
}

}  // namespace

std::string save_binary(Family family) {
  return family == Family::kIPv4 ? "iptables-save" : "ip6tables-save";
}

std::string restore_binary(Family family) {
  return family == Family::kIPv4 ? "iptables-restore" : "ip6tables-restore";
}

std::string explain_failure(const std::string& command, const ProcessResult& result) {
  const std::string program = command.substr(0, command.find(' '));
  if (result.spawn_errno == ENOENT) {
    return program + " not found in PATH (install the iptables package)";
  }
  if (result.spawn_errno != 0) {
    return "cannot run " + program + ": " + std::strerror(result.spawn_errno);
  }
  if (permission_denied(result.err)) {
    return command +
           ": permission denied: CAP_NET_ADMIN is missing in this network namespace (run as root "
           "or give the init container the NET_ADMIN capability)";
  }
  return command + " failed (exit " + std::to_string(result.exit_code) +
         "): " + first_lines(result.err, 2);
}

std::string read_nat(Family family) {
  return run_checked({save_binary(family), "-t", "nat"}, "").out;
}

void restore_nat(Family family, const std::string& text) {
  // --wait: with the legacy backend another writer may hold the xtables lock for a moment.
  run_checked({restore_binary(family), "--noflush", "--wait"}, text);
}

bool ipv6_available() {
  return access("/proc/net/if_inet6", F_OK) == 0;
}

}  // namespace pillion::init
