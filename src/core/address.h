#pragma once
// Socket addresses and upstream URLs as users write them: "127.0.0.1:7000", "[::1]:8080",
// "payments:8080", "http://127.0.0.1:8080".
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pillion::core {

struct HostPort {
  std::string host;  // without IPv6 brackets
  uint16_t port = 0;
  std::string to_string() const;  // adds brackets back for IPv6 literals
  bool operator==(const HostPort&) const = default;
};

std::optional<HostPort> parse_host_port(std::string_view text);
// Accepts http://host[:port][/]; the port defaults to 80. Nothing else (no path, no https yet).
std::optional<HostPort> parse_http_url(std::string_view url);

}  // namespace pillion::core
