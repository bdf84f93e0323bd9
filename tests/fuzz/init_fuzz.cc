// Fuzzes `pillion init`'s parsers: the first lines of the input fill its flags, the rest is
// read as `iptables-save -t nat` output; then the rules are built from whatever parsed. Bad
// flags must throw OptionError, nothing else, and every rule set built must be one
// iptables-restore transaction.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "init/options.h"
#include "init/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pillion::init;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Fields separated by '\n' fill the flags in order; missing ones keep their defaults.
  InitFlags flags;
  std::string* fields[] = {&flags.inbound_port,
                           &flags.outbound_port,
                           &flags.proxy_uid,
                           &flags.proxy_gid,
                           &flags.include_inbound_ports,
                           &flags.exclude_inbound_ports,
                           &flags.exclude_outbound_ports,
                           &flags.exclude_outbound_cidrs,
                           &flags.include_outbound_cidrs};
  for (std::string* field : fields) {
    if (input.empty()) {
      break;
    }
    auto end = input.find('\n');
    *field = std::string(input.substr(0, end));
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
  }
  NatState current = parse_nat_state(input);
  for (Family family : {Family::kIPv4, Family::kIPv6}) {
    std::string cleanup = render_cleanup(family, current);
    if (!cleanup.empty() && cleanup.find("COMMIT\n") == std::string::npos) {
      __builtin_trap();
    }
  }
  Options options;
  try {
    options = parse_options(flags);
  } catch (const OptionError&) {
    return 0;
  }
  for (Family family : {Family::kIPv4, Family::kIPv6}) {
    std::string rules = render_install(options, family, current);
    if (rules.find("*nat\n") == std::string::npos || rules.find("COMMIT\n") == std::string::npos) {
      __builtin_trap();
    }
  }
  return 0;
}
