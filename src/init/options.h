#pragma once
// What `pillion init` redirects, as typed and validated values. The flags arrive as text
// (InitFlags) so that every bad value is rejected here with a message naming the flag.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pillion::init {

enum class Family { kIPv4, kIPv6 };

struct Cidr {
  Family family = Family::kIPv4;
  std::string text;  // canonical network/prefix, host bits cleared: "10.0.0.0/8", "fd00::/8"
  bool operator==(const Cidr&) const = default;
};

// The flags exactly as the user wrote them; the defaults are the documented ones.
struct InitFlags {
  std::string inbound_port = "15006";
  std::string outbound_port = "15001";
  std::string proxy_uid = "1337";
  std::string proxy_gid = "1337";
  std::string include_inbound_ports = "*";
  // Metrics (15090), readiness (15021) and the merged-stats port (15020) are never captured, so
  // kubelet probes and scrapes reach the proxy itself rather than being redirected to 15006.
  std::string exclude_inbound_ports = "15090,15021,15020";
  std::string exclude_outbound_ports;
  std::string exclude_outbound_cidrs;
  std::string include_outbound_cidrs = "*";
};

struct Options {
  uint16_t inbound_port = 15006;
  uint16_t outbound_port = 15001;
  uint32_t proxy_uid = 1337;
  uint32_t proxy_gid = 1337;
  std::optional<std::vector<uint16_t>> include_inbound_ports;  // nullopt: every port ('*')
  std::vector<uint16_t> exclude_inbound_ports{15090, 15021, 15020};
  std::vector<uint16_t> exclude_outbound_ports;
  std::vector<Cidr> exclude_outbound_cidrs;
  std::optional<std::vector<Cidr>> include_outbound_cidrs;  // nullopt: every address ('*')
};

class OptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws OptionError naming the flag and the bad value.
Options parse_options(const InitFlags& flags);

// The pieces, exposed for tests. `flag` only names the flag in error messages.
uint16_t parse_port(const std::string& flag, const std::string& text);
std::vector<uint16_t> parse_port_list(const std::string& flag, const std::string& text);
uint32_t parse_id(const std::string& flag, const std::string& text);
Cidr parse_cidr(const std::string& flag, const std::string& text);
std::vector<Cidr> parse_cidr_list(const std::string& flag, const std::string& text);

}  // namespace pillion::init
