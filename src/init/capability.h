#pragma once
// Whether this process may change netfilter rules, checked before running iptables so the user
// reads "CAP_NET_ADMIN is missing" instead of a netlink error.
#include <string_view>

namespace pillion::init {

// `proc_status` is the text of /proc/self/status; `capability` a CAP_* number.
bool has_effective_capability(std::string_view proc_status, int capability);

// CAP_NET_ADMIN in the effective set. In a user namespace this can be true while the network
// namespace still refuses us; iptables' own "Permission denied" is translated for that case.
bool has_net_admin();

}  // namespace pillion::init
