#include "init/options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>

namespace pillion::init {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits "a, b,c" into trimmed entries; "" is the empty list, but an empty entry is a typo.
std::vector<std::string> split_list(const std::string& flag, const std::string& text) {
  std::vector<std::string> items;
  if (trim(text).empty()) {
    return items;
  }
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const auto item = trim(rest.substr(0, comma));
    if (item.empty()) {
      throw OptionError(flag + ": empty entry in '" + text + "'");
    }
    items.emplace_back(item);
    if (comma == std::string_view::npos) {
      return items;
    }
    rest.remove_prefix(comma + 1);
  }
}

// Digits only: std::from_chars alone would accept "80abc" as 80 if we did not check the end.
std::optional<uint64_t> parse_unsigned(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.size() > 19) {
    return std::nullopt;
  }
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

template <typename T>
void append_unique(std::vector<T>& list, T value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) {
    list.push_back(std::move(value));
  }
}

}  // namespace

uint16_t parse_port(const std::string& flag, const std::string& text) {
  const auto value = parse_unsigned(text);
  if (!value || *value == 0 || *value > 65535) {
    throw OptionError(flag + ": '" + text + "' is not a TCP port (1-65535)");
  }
  return static_cast<uint16_t>(*value);
}

std::vector<uint16_t> parse_port_list(const std::string& flag, const std::string& text) {
  std::vector<uint16_t> ports;
  for (const auto& item : split_list(flag, text)) {
    append_unique(ports, parse_port(flag, item));
  }
  return ports;
}

uint32_t parse_id(const std::string& flag, const std::string& text) {
  // 4294967295 is (uid_t)-1, "no user" to the kernel, so it cannot own a socket.
  const auto value = parse_unsigned(text);
  if (!value || *value >= 4294967295u) {
    throw OptionError(flag + ": '" + text + "' is not a numeric id (0-4294967294)");
  }
  return static_cast<uint32_t>(*value);
}

Cidr parse_cidr(const std::string& flag, const std::string& text) {
  const std::string_view whole = trim(text);
  const auto slash = whole.find('/');
  const std::string address(whole.substr(0, slash));
  std::array<unsigned char, 16> bytes{};
  Cidr cidr;
  int max_prefix = 32;
  if (inet_pton(AF_INET, address.c_str(), bytes.data()) == 1) {
    cidr.family = Family::kIPv4;
  } else if (inet_pton(AF_INET6, address.c_str(), bytes.data()) == 1) {
    cidr.family = Family::kIPv6;
    max_prefix = 128;
  } else {
    throw OptionError(flag + ": '" + text + "' is not an IP address or CIDR (e.g. 10.0.0.0/8)");
  }
  uint64_t prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const auto parsed = parse_unsigned(whole.substr(slash + 1));
    if (!parsed || *parsed > static_cast<uint64_t>(max_prefix)) {
      throw OptionError(flag + ": '" + text + "' has a bad prefix length (0-" +
                        std::to_string(max_prefix) + ")");
    }
    prefix = *parsed;
  }
  // Clear the host bits, as iptables does, so what we print is what iptables-save shows.
  for (int bit = static_cast<int>(prefix); bit < max_prefix; ++bit) {
    bytes[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  }
  std::array<char, INET6_ADDRSTRLEN> out{};
  inet_ntop(cidr.family == Family::kIPv4 ? AF_INET : AF_INET6, bytes.data(), out.data(),
            out.size());
  cidr.text = std::string(out.data()) + "/" + std::to_string(prefix);
  return cidr;
}

std::vector<Cidr> parse_cidr_list(const std::string& flag, const std::string& text) {
  std::vector<Cidr> cidrs;
  for (const auto& item : split_list(flag, text)) {
    append_unique(cidrs, parse_cidr(flag, item));
  }
  return cidrs;
}

Options parse_options(const InitFlags& flags) {
  Options o;
  o.inbound_port = parse_port("--inbound-port", flags.inbound_port);
  o.outbound_port = parse_port("--outbound-port", flags.outbound_port);
  o.proxy_uid = parse_id("--proxy-uid", flags.proxy_uid);
  o.proxy_gid = parse_id("--proxy-gid", flags.proxy_gid);
  if (trim(flags.include_inbound_ports) == "*") {
    o.include_inbound_ports.reset();
  } else {
    o.include_inbound_ports =
        parse_port_list("--include-inbound-ports", flags.include_inbound_ports);
  }
  o.exclude_inbound_ports = parse_port_list("--exclude-inbound-ports", flags.exclude_inbound_ports);
  o.exclude_outbound_ports =
      parse_port_list("--exclude-outbound-ports", flags.exclude_outbound_ports);
  o.exclude_outbound_cidrs =
      parse_cidr_list("--exclude-outbound-cidrs", flags.exclude_outbound_cidrs);
  if (trim(flags.include_outbound_cidrs) == "*") {
    o.include_outbound_cidrs.reset();
  } else {
    o.include_outbound_cidrs =
        parse_cidr_list("--include-outbound-cidrs", flags.include_outbound_cidrs);
  }
  if (o.inbound_port == o.outbound_port) {
    throw OptionError("--inbound-port and --outbound-port must differ (both " +
                      std::to_string(o.inbound_port) + ")");
  }
  return o;
}

}  // namespace pillion::init
