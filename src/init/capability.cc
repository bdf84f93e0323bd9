#include "init/capability.h"

#include <linux/capability.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace pillion::init {

bool has_effective_capability(std::string_view status, int capability) {
  constexpr std::string_view kKey = "\nCapEff:";
  const auto at = status.find(kKey);
  if (at == std::string_view::npos || capability < 0 || capability > 63) {
    return false;
  }
  auto rest = status.substr(at + kKey.size());
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
    rest.remove_prefix(1);
  }
  uint64_t mask = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), mask, 16);
  if (ec != std::errc{} || end == rest.data()) {
    return false;
  }
  return (mask >> capability) & 1u;
}

bool has_net_admin() {
  std::ifstream file("/proc/self/status");
  std::ostringstream text;
  text << "\n" << file.rdbuf();
  return has_effective_capability(text.str(), CAP_NET_ADMIN);
}

}  // namespace pillion::init
