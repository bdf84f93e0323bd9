#include "init/run.h"

#include <string>
#include <vector>

#include "init/capability.h"
#include "init/iptables.h"
#include "init/nat_state.h"
#include "init/rules.h"

namespace pillion::init {
namespace {

constexpr const char* kPrefix = "pillion init: ";

struct Plan {
  Family family;
  std::string name;
  std::string text;  // restore input; "" when there is nothing to do
};

std::string render(const Options& options, Action action, Family family, const NatState& state) {
  return action == Action::kInstall ? render_install(options, family, state)
                                    : render_cleanup(family, state);
}

// A dry run needs no privilege: when the table cannot be read it shows the input for an empty
// table and says so, rather than failing.
int dry_run(const Options& options, Action action, std::ostream& out, std::ostream& err) {
  for (auto family : {Family::kIPv4, Family::kIPv6}) {
    const std::string name = family == Family::kIPv4 ? "IPv4" : "IPv6";
    NatState state;
    if (family == Family::kIPv6 && !ipv6_available()) {
      err << kPrefix << "IPv6 is disabled in this kernel; init would skip the IPv6 rules\n";
    } else {
      try {
        state = parse_nat_state(read_nat(family));
      } catch (const IptablesError& e) {
        err << kPrefix << name << ": cannot read the nat table (" << e.what()
            << "); showing the input for a table without pillion rules\n";
      }
    }
    const auto text = render(options, action, family, state);
    out << (text.empty() ? "# pillion init: " + name + ": nothing to remove\n" : text);
  }
  return 0;
}

}  // namespace

int run_init(const Options& options, Action action, bool dry, std::ostream& out,
             std::ostream& err) {
  if (dry) {
    return dry_run(options, action, out, err);
  }
  if (!has_net_admin()) {
    err << kPrefix
        << "CAP_NET_ADMIN is missing: changing iptables rules needs it (run as root, or give "
           "the init container the NET_ADMIN capability)\n";
    return 1;
  }
  // Read and render both families before changing anything, so a failure to read leaves both
  // tables as they were.
  std::vector<Plan> plans;
  try {
    const NatState v4 = parse_nat_state(read_nat(Family::kIPv4));
    plans.push_back({Family::kIPv4, "IPv4", render(options, action, Family::kIPv4, v4)});
  } catch (const IptablesError& e) {
    err << kPrefix << e.what() << "\n";
    return 1;
  }
  if (!ipv6_available()) {
    err << kPrefix << "IPv6 is disabled in this kernel; continuing with IPv4 only\n";
  } else {
    try {
      const NatState v6 = parse_nat_state(read_nat(Family::kIPv6));
      plans.push_back({Family::kIPv6, "IPv6", render(options, action, Family::kIPv6, v6)});
    } catch (const IptablesError& e) {
      err << kPrefix << "IPv6 unusable here (" << e.what() << "); continuing with IPv4 only\n";
    }
  }
  for (const auto& plan : plans) {
    if (plan.text.empty()) {
      err << kPrefix << plan.name << ": no pillion rules to remove\n";
      continue;
    }
    try {
      restore_nat(plan.family, plan.text);
    } catch (const IptablesError& e) {
      err << kPrefix << e.what() << "\n";
      return 1;
    }
    err << kPrefix << plan.name << ": "
        << (action == Action::kInstall ? "rules installed" : "rules removed") << "\n";
  }
  return 0;
}

}  // namespace pillion::init
