#pragma once
// Picks the route for a request: first match wins over host (exact or "*.suffix", port and
// case ignored), path (exact, prefix or a whole-path RE2 regex; query ignored), method and
// header conditions.
#include <string_view>

#include "http/head.h"
#include "proxy/runtime.h"

namespace pillion::proxy {

bool host_matches(std::string_view pattern, std::string_view host);

// Compiles `route`'s match conditions into `out` (config pointer, path regex, header matchers);
// the cluster, traffic split, rate limit and authorization are left to the caller.
void compile_route_match(const config::Route& route, RouteRuntime& out);

const RouteRuntime* match_route(const ListenerRuntime& listener, std::string_view host,
                                std::string_view target, const http::Head& request);

// The authority and origin-form path of an absolute-form target ("http://h:1/p?q");
// returns false when `target` is not absolute-form.
bool split_absolute_target(std::string_view target, std::string_view& authority,
                           std::string_view& path);

}  // namespace pillion::proxy
