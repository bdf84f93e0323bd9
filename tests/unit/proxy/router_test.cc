#include "proxy/router.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

namespace pillion::proxy {
namespace {

TEST(HostMatches, ExactSuffixAnyAndPortIgnored) {
  EXPECT_TRUE(host_matches("", "anything"));
  EXPECT_TRUE(host_matches("payments", "Payments:8080"));
  EXPECT_FALSE(host_matches("payments", "payments-v2"));
  EXPECT_TRUE(host_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(host_matches("*.example.com", "example.com"));
  EXPECT_TRUE(host_matches("[::1]", "[::1]:80"));
}

config::Route make_route(std::string host, std::string path, std::string prefix) {
  config::Route route;
  route.match.host = std::move(host);
  route.match.path = std::move(path);
  route.match.path_prefix = std::move(prefix);
  return route;
}

RouteRuntime runtime_for(const config::Route& route, size_t cluster) {
  RouteRuntime runtime;
  compile_route_match(route, runtime);
  runtime.cluster = cluster;
  return runtime;
}

http::Head request(std::string_view method, std::vector<http::Field> fields = {}) {
  http::Head head;
  head.method = method;
  head.fields = std::move(fields);
  return head;
}

TEST(MatchRoute, FirstMatchWinsOnHostAndPath) {
  auto exact = make_route("", "/health", "");
  auto prefix = make_route("api.local", "", "/v1/");
  auto fallback = make_route("", "", "");
  ListenerRuntime listener;
  listener.routes = {runtime_for(exact, 0), runtime_for(prefix, 1), runtime_for(fallback, 2)};
  auto get = request("GET");
  EXPECT_EQ(match_route(listener, "x", "/health?full=1", get)->cluster, 0u);
  EXPECT_EQ(match_route(listener, "x", "/healthz", get)->cluster, 2u);
  EXPECT_EQ(match_route(listener, "api.local:7000", "/v1/pay", get)->cluster, 1u);
  EXPECT_EQ(match_route(listener, "other", "/v1/pay", get)->cluster, 2u);
  listener.routes.pop_back();
  EXPECT_EQ(match_route(listener, "other", "/v1/pay", get), nullptr);
}

TEST(MatchRoute, RegexMethodsAndHeaders) {
  auto regex = make_route("", "", "");
  regex.match.path_regex = "/users/[0-9]+";
  auto writes = make_route("", "", "");
  writes.match.methods = {"POST", "PUT"};
  auto canary = make_route("", "", "");
  canary.match.headers = {{"x-canary", config::HeaderMatch::Kind::kExact, "1"},
                          {"x-user", config::HeaderMatch::Kind::kRegex, "[a-z]+-[0-9]{2}"}};
  auto no_auth = make_route("", "", "");
  no_auth.match.headers = {{"authorization", config::HeaderMatch::Kind::kAbsent, ""}};
  ListenerRuntime listener;
  listener.routes = {runtime_for(regex, 0), runtime_for(writes, 1), runtime_for(canary, 2),
                     runtime_for(no_auth, 3)};
  auto get = request("GET", {{"Authorization", "x"}});
  EXPECT_EQ(match_route(listener, "h", "/users/42?x=1", get)->cluster, 0u);
  // Whole path only: a regex that matches a part is no match.
  EXPECT_EQ(match_route(listener, "h", "/users/42/orders", get), nullptr);
  EXPECT_EQ(match_route(listener, "h", "/x", request("PUT", {{"Authorization", "x"}}))->cluster,
            1u);
  auto canary_request =
      request("GET", {{"X-Canary", "1"}, {"X-User", "ann-07"}, {"Authorization", "x"}});
  EXPECT_EQ(match_route(listener, "h", "/x", canary_request)->cluster, 2u);
  auto wrong_user =
      request("GET", {{"X-Canary", "1"}, {"X-User", "ann-7"}, {"Authorization", "x"}});
  EXPECT_EQ(match_route(listener, "h", "/x", wrong_user), nullptr);
  EXPECT_EQ(match_route(listener, "h", "/x", request("GET"))->cluster, 3u);
}

TEST(SplitAbsoluteTarget, SplitsAuthorityAndPath) {
  std::string_view authority, path;
  ASSERT_TRUE(split_absolute_target("http://svc:8080/a?b", authority, path));
  EXPECT_EQ(authority, "svc:8080");
  EXPECT_EQ(path, "/a?b");
  ASSERT_TRUE(split_absolute_target("HTTP://svc", authority, path));
  EXPECT_EQ(path, "/");
  EXPECT_FALSE(split_absolute_target("/relative", authority, path));
}

}  // namespace
}  // namespace pillion::proxy
