#pragma once
// The iptables-save / iptables-restore binaries of one family, run without a shell. Errors are
// IptablesError with a message that names what is missing (the binary, CAP_NET_ADMIN).
#include <stdexcept>
#include <string>

#include "init/options.h"
#include "init/process.h"

namespace pillion::init {

class IptablesError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string save_binary(Family family);     // iptables-save | ip6tables-save
std::string restore_binary(Family family);  // iptables-restore | ip6tables-restore

// The output of `<save> -t nat`.
std::string read_nat(Family family);
// Feeds `text` to `<restore> --noflush --wait`: one transaction, the other tables untouched.
void restore_nat(Family family, const std::string& text);

// Turns a failed run into one sentence; exposed for tests.
std::string explain_failure(const std::string& command, const ProcessResult& result);

// False when the kernel has IPv6 off (no /proc/net/if_inet6).
bool ipv6_available();

}  // namespace pillion::init
