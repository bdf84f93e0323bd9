#include "proxy/router.h"

#include <gtest/gtest.h>

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

TEST(MatchRoute, FirstMatchWinsOnHostAndPath) {
  config::Route exact{{"", "/health", ""}, "a", std::chrono::seconds(1)};
  config::Route prefix{{"api.local", "", "/v1/"}, "b", std::chrono::seconds(1)};
  config::Route fallback{{"", "", ""}, "c", std::chrono::seconds(1)};
  ListenerRuntime listener;
  listener.routes = {{&exact, 0}, {&prefix, 1}, {&fallback, 2}};
  EXPECT_EQ(match_route(listener, "x", "/health?full=1")->cluster, 0u);
  EXPECT_EQ(match_route(listener, "x", "/healthz")->cluster, 2u);
  EXPECT_EQ(match_route(listener, "api.local:7000", "/v1/pay")->cluster, 1u);
  EXPECT_EQ(match_route(listener, "other", "/v1/pay")->cluster, 2u);
  listener.routes.pop_back();
  EXPECT_EQ(match_route(listener, "other", "/v1/pay"), nullptr);
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
