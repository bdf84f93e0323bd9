#include "proxy/router.h"

#include "http/head.h"

#include <re2/re2.h>

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

bool header_matches(const HeaderMatcher& matcher, const http::Head& request) {
  using Kind = config::HeaderMatch::Kind;
  auto value = request.find(matcher.config->name);
  switch (matcher.config->kind) {
    case Kind::kPresent:
      return value.has_value();
    case Kind::kAbsent:
      return !value.has_value();
    case Kind::kExact:
      return value && *value == matcher.config->value;
    case Kind::kPrefix:
      return value && value->starts_with(matcher.config->value);
    case Kind::kRegex:
      return value &&
             re2::RE2::FullMatch(re2::StringPiece(value->data(), value->size()), *matcher.regex);
  }
  return false;
}

// Common methods as bits, so a route's method list is one AND; 0 for any other method.
uint16_t method_bit(std::string_view method) {
  static constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                  "OPTIONS", "CONNECT", "TRACE", "PATCH"};
  for (size_t i = 0; i < std::size(kMethods); ++i) {
    if (method == kMethods[i]) {
      return static_cast<uint16_t>(1u << i);
    }
  }
  return 0;
}

bool method_matches(const std::vector<std::string>& methods, std::string_view method) {
  if (methods.empty()) {
    return true;
  }
  for (const auto& allowed : methods) {
    if (allowed == method) {
      return true;
    }
  }
  return false;
}

}  // namespace

void compile_route_match(const config::Route& route, RouteRuntime& out) {
  out.config = &route;
  const auto& match = route.match;
  RouteKey key;
  key.host_suffix = match.host.starts_with("*.");
  key.host =
      key.host_suffix ? std::string_view(match.host).substr(1) : std::string_view(match.host);
  key.path = match.path;
  key.prefix = match.path_prefix;
  key.slow_checks = !match.path_regex.empty() || !match.headers.empty();
  for (const auto& method : match.methods) {
    uint16_t bit = method_bit(method);
    key.methods |= bit;
    key.slow_checks |= bit == 0;
  }
  out.key = key;
  // Anchored: a route's regex describes the whole path or header value, as in Envoy.
  out.path_regex = route.match.path_regex.empty()
                       ? nullptr
                       : std::make_shared<const re2::RE2>(route.match.path_regex);
  out.headers.clear();
  for (const auto& header : route.match.headers) {
    HeaderMatcher matcher{&header, nullptr};
    if (header.kind == config::HeaderMatch::Kind::kRegex) {
      matcher.regex = std::make_shared<const re2::RE2>(header.value);
    }
    out.headers.push_back(std::move(matcher));
  }
}

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

// The common checks read only the routes' inline keys, in order; the rest (regexes, headers,
// uncommon methods) only for a route that passed them.
const RouteRuntime* match_route(const ListenerRuntime& listener, std::string_view host,
                                std::string_view target, const http::Head& request) {
  auto path = target.substr(0, target.find('?'));
  host = strip_port(host);
  uint16_t method = method_bit(request.method);
  for (const auto& route : listener.routes) {
    const RouteKey& key = route.key;
    if (!key.host.empty()) {
      if (key.host_suffix ? !(host.size() > key.host.size() &&
                              http::iequals(host.substr(host.size() - key.host.size()), key.host))
                          : !http::iequals(key.host, host)) {
        continue;
      }
    }
    if ((!key.path.empty() && path != key.path) ||
        (!key.prefix.empty() && !path.starts_with(key.prefix))) {
      continue;
    }
    if (key.methods != 0 && (key.methods & method) == 0 && !key.slow_checks) {
      continue;
    }
    if (key.slow_checks) {
      const auto& match = route.config->match;
      if (route.path_regex &&
          !re2::RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *route.path_regex)) {
        continue;
      }
      if (!method_matches(match.methods, request.method)) {
        continue;
      }
      bool headers_match = true;
      for (const auto& header : route.headers) {
        if (!header_matches(header, request)) {
          headers_match = false;
          break;
        }
      }
      if (!headers_match) {
        continue;
      }
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
