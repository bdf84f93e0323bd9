#include "core/address.h"

#include <charconv>

namespace pillion::core {

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc{} || end != port.data() + port.size() ||
      value > 65535) {
    return std::nullopt;
  }
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

std::optional<HostPort> parse_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  if (url.ends_with('/')) {
    url.remove_suffix(1);
  }
  if (url.empty() || url.find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  bool has_port = url.starts_with('[') ? url.find("]:") != std::string_view::npos
                                       : url.find(':') != std::string_view::npos;
  if (has_port) {
    return parse_host_port(url);
  }
  if (url.starts_with('[') && url.ends_with(']')) {
    url = url.substr(1, url.size() - 2);
  }
  return HostPort{std::string(url), 80};
}

}  // namespace pillion::core
