#pragma once
// The nat-table rules of `pillion init`, as iptables-restore input. Pure functions: the same
// options and the same current state always give the same text, so tests pin it exactly.
#include <string>

#include "init/nat_state.h"
#include "init/options.h"

namespace pillion::init {

inline constexpr std::string_view kInboundChain = "PILLION_INBOUND";
inline constexpr std::string_view kInRedirectChain = "PILLION_IN_REDIRECT";
inline constexpr std::string_view kOutputChain = "PILLION_OUTPUT";
inline constexpr std::string_view kRedirectChain = "PILLION_REDIRECT";

// Input for `iptables-restore --noflush` (or ip6tables-restore for kIPv6) that leaves exactly one
// copy of our chains and jumps, whatever `current` (parsed from iptables-save) already holds.
std::string render_install(const Options& options, Family family, const NatState& current);

// Input that removes everything `current` holds of ours; "" when there is nothing to remove.
std::string render_cleanup(Family family, const NatState& current);

}  // namespace pillion::init
