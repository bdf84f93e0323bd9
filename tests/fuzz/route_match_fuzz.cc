// A config and a request through route matching: "<YAML config>\n====\n<HTTP request head>"
// (without the marker, the whole input is the config and a fixed request is matched). The
// config goes through the loader; each listener's routes are compiled as build_runtime does
// (compile_route_match; no clusters needed); the request through the HTTP parser, then
// split_absolute_target and match_route as the session calls them. Invariants: the match is
// null or one of the listener's routes, matching is deterministic, and a first route without
// conditions (or only `path_prefix: /`) takes every request whose path starts with '/'.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/load.h"
#include "http/parser.h"
#include "proxy/router.h"

#include <re2/re2.h>

namespace {

using pillion::proxy::ListenerRuntime;
using pillion::proxy::RouteRuntime;

constexpr std::string_view kMarker = "\n====\n";
constexpr std::string_view kDefaultRequest = "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n";

void check(bool condition) {
  if (!condition) {
    std::abort();
  }
}

// Lets seeds and mutations use bare "\n" line ends, and closes an unterminated head.
std::string normalize_head(std::string_view text) {
  std::string head;
  if (text.find('\r') == std::string_view::npos) {
    for (char c : text) {
      if (c == '\n') {
        head += '\r';
      }
      head += c;
    }
  } else {
    head = text;
  }
  if (head.find("\r\n\r\n") == std::string::npos) {
    head += "\r\n\r\n";
  }
  return head;
}

bool catch_all(const pillion::config::RouteMatch& match) {
  return match.host.empty() && match.path.empty() &&
         (match.path_prefix.empty() || match.path_prefix == "/") && match.path_regex.empty() &&
         match.methods.empty() && match.headers.empty();
}

void match_and_check(const ListenerRuntime& listener, std::string_view host,
                     std::string_view target, const pillion::http::Head& head) {
  const RouteRuntime* route = pillion::proxy::match_route(listener, host, target, head);
  if (route != nullptr) {
    check(!listener.routes.empty() && route >= listener.routes.data() &&
          route < listener.routes.data() + listener.routes.size());
  }
  check(pillion::proxy::match_route(listener, host, target, head) == route);
  std::string_view path = target.substr(0, target.find('?'));
  if (!listener.routes.empty() && catch_all(listener.routes.front().config->match) &&
      path.starts_with('/')) {
    check(route == &listener.routes.front());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto marker = input.find(kMarker);
  std::string_view config_text = input.substr(0, marker);
  std::string request = marker == std::string_view::npos
                            ? std::string(kDefaultRequest)
                            : normalize_head(input.substr(marker + kMarker.size()));

  pillion::config::LoadResult loaded = pillion::config::load_yaml(config_text, "fuzz.yaml");
  if (!loaded) {
    return 0;
  }
  pillion::http::RequestParser parser(64 * 1024);
  parser.start();
  if (parser.parse_head(request) != pillion::http::ParseStatus::kDone) {
    return 0;
  }
  const pillion::http::Head& head = parser.head();

  // The session's choice: an absolute-form target's authority and path, else the Host header.
  std::string_view authority;
  std::string_view origin_path;
  bool absolute = pillion::proxy::split_absolute_target(head.target, authority, origin_path);
  if (absolute) {
    check(!authority.empty());
    // Both are views into the target.
    check(authority.data() >= head.target.data() &&
          authority.data() + authority.size() <= head.target.data() + head.target.size());
    check(origin_path == "/" ||
          (origin_path.data() >= head.target.data() &&
           origin_path.data() + origin_path.size() <= head.target.data() + head.target.size()));
  }
  std::string_view host_header = head.find("host").value_or("");

  const pillion::config::Snapshot& snapshot = *loaded.snapshot;
  for (const auto& listener_config : snapshot.listeners) {
    auto table = snapshot.routes.find(listener_config.routes);
    if (table == snapshot.routes.end()) {
      continue;  // transparent listeners may have no table
    }
    ListenerRuntime listener;
    listener.config = &listener_config;
    for (const auto& route : table->second) {
      RouteRuntime route_runtime;
      pillion::proxy::compile_route_match(route, route_runtime);
      check(route_runtime.config == &route);
      // The loader validated every regex: compiling it again cannot fail.
      check(route.match.path_regex.empty() ||
            (route_runtime.path_regex && route_runtime.path_regex->ok()));
      check(route_runtime.headers.size() == route.match.headers.size());
      for (const auto& header : route_runtime.headers) {
        check(header.config->kind != pillion::config::HeaderMatch::Kind::kRegex ||
              (header.regex && header.regex->ok()));
      }
      route_runtime.cluster = 0;
      listener.routes.push_back(std::move(route_runtime));
    }
    if (absolute) {
      match_and_check(listener, authority, origin_path, head);
    } else {
      match_and_check(listener, host_header, head.target, head);
    }
    // Any host and target must be safe too, whatever the session would have done.
    match_and_check(listener, host_header, head.target, head);
  }
  return 0;
}
