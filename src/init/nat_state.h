#pragma once
// What `pillion init` finds of its own in the nat table, read from `iptables-save -t nat`.
// Ours is: every chain named PILLION_*, and every rule in PREROUTING or OUTPUT that jumps to one.
#include <string>
#include <string_view>
#include <vector>

namespace pillion::init {

inline constexpr std::string_view kChainPrefix = "PILLION_";

struct NatState {
  std::vector<std::string> chains;      // "PILLION_OUTPUT", in the order iptables-save lists them
  std::vector<std::string> jump_rules;  // "-A OUTPUT -p tcp -j PILLION_OUTPUT", verbatim
  bool empty() const { return chains.empty() && jump_rules.empty(); }
};

NatState parse_nat_state(std::string_view iptables_save_output);

}  // namespace pillion::init
