#include "proxy/router.h"

#include "http/head.h"

namespace pillion::proxy {
namespace {

std::string_view strip_port(std::string_view host) {
  if (host.starts_with('[')) {
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

}  // namespace

bool host_matches(std::string_view pattern, std::string_view host) {
  if (pattern.empty()) {
    return true;
  }
  host = strip_port(host);
  if (pattern.starts_with("*.")) {
    auto suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() &&
           http::iequals(host.substr(host.size() - suffix.size()), suffix);
  }
  return http::iequals(pattern, host);
}

const RouteRuntime* match_route(const ListenerRuntime& listener, std::string_view host,
                                std::string_view target) {
  auto path = target.substr(0, target.find('?'));
  for (const auto& route : listener.routes) {
    const auto& match = route.config->match;
    if (!host_matches(match.host, host)) {
      continue;
    }
    if (!match.path.empty() && path != match.path) {
      continue;
    }
    if (!match.path_prefix.empty() && !path.starts_with(match.path_prefix)) {
      continue;
    }
    return &route;
  }
  return nullptr;
}

bool split_absolute_target(std::string_view target, std::string_view& authority,
                           std::string_view& path) {
  constexpr std::string_view kScheme = "http://";
  if (target.size() < kScheme.size() || !http::iequals(target.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  auto rest = target.substr(kScheme.size());
  auto slash = rest.find_first_of("/?");
  authority = rest.substr(0, slash);
  path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  return !authority.empty();
}

}  // namespace pillion::proxy
