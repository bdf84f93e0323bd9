#include "tls/authorization.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::tls {
namespace {

IdPattern pattern(std::string_view text) {
  std::string error;
  auto parsed = IdPattern::parse(text, error);
  EXPECT_TRUE(parsed) << text << ": " << error;
  return parsed ? *parsed : *IdPattern::parse("*", error);
}

TEST(IdPattern, Kinds) {
  EXPECT_EQ(pattern("spiffe://cluster.local/ns/prod/sa/web").kind(), IdPattern::Kind::kExact);
  EXPECT_EQ(pattern("spiffe://cluster.local").kind(), IdPattern::Kind::kExact);
  EXPECT_EQ(pattern("spiffe://cluster.local/ns/prod/*").kind(), IdPattern::Kind::kPrefix);
  EXPECT_EQ(pattern("spiffe://cluster.local/*").kind(), IdPattern::Kind::kTrustDomain);
  EXPECT_EQ(pattern("*").kind(), IdPattern::Kind::kAny);
  EXPECT_EQ(pattern("spiffe://cluster.local/ns/prod/*").text(), "spiffe://cluster.local/ns/prod/*");
}

TEST(IdPattern, RejectsBadPatterns) {
  for (const char* text : {
           "",
           "**",
           "spiffe://*",
           "spiffe://td/ns/*/sa/x",
           "spiffe://td/ns/prod*",
           "spiffe://td/ns/prod/*/",
           "spiffe://td/ns/prod/**",
           "spiffe://td//*",
           "spiffe://td/*/*",
           "spiffe://TD/*",
           "spiffe://td/a/../*",
           "spiffe://td/x/",
           "/*",
           "td/*",
           "https://td/*",
       }) {
    std::string error;
    EXPECT_FALSE(IdPattern::parse(text, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

TEST(IdPattern, ErrorNamesTheProblem) {
  std::string error;
  EXPECT_FALSE(IdPattern::parse("spiffe://td/ns/*/sa", error));
  EXPECT_NE(error.find("'*'"), std::string::npos) << error;
  EXPECT_FALSE(IdPattern::parse("spiffe://td:1/ns/*", error));
  EXPECT_NE(error.find("port"), std::string::npos) << error;
  EXPECT_NE(error.find("spiffe://td:1/ns/*"), std::string::npos) << error;
}

TEST(IdPattern, ExactMatch) {
  auto p = pattern("spiffe://cluster.local/ns/prod/sa/web");
  EXPECT_TRUE(p.matches("spiffe://cluster.local/ns/prod/sa/web"));
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod/sa/web2"));
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod/sa/web/x"));
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod/sa"));
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod/sa/Web"));
  EXPECT_FALSE(p.matches(""));
}

TEST(IdPattern, PrefixMatchesAtASegmentBoundary) {
  auto p = pattern("spiffe://cluster.local/ns/prod/*");
  EXPECT_TRUE(p.matches("spiffe://cluster.local/ns/prod/sa/x"));
  EXPECT_TRUE(p.matches("spiffe://cluster.local/ns/prod/a"));
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod"));  // strictly under
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/production/sa/x"));
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod/"));                 // invalid ID
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod//x"));               // invalid ID
  EXPECT_FALSE(p.matches("spiffe://cluster.local/ns/prod/../staging/sa/x"));  // invalid ID
  EXPECT_FALSE(p.matches("spiffe://other.local/ns/prod/sa/x"));
  EXPECT_FALSE(p.matches("spiffe://cluster.localx/ns/prod/sa/x"));
}

TEST(IdPattern, TrustDomainMatchesEveryIdOfIt) {
  auto p = pattern("spiffe://cluster.local/*");
  EXPECT_TRUE(p.matches("spiffe://cluster.local"));
  EXPECT_TRUE(p.matches("spiffe://cluster.local/a"));
  EXPECT_TRUE(p.matches("spiffe://cluster.local/ns/prod/sa/x"));
  EXPECT_FALSE(p.matches("spiffe://cluster.localhost/a"));
  EXPECT_FALSE(p.matches("spiffe://cluster.loca/a"));
  EXPECT_FALSE(p.matches("spiffe://other/a"));
}

TEST(IdPattern, AnyMatchesAnyValidId) {
  auto p = pattern("*");
  EXPECT_TRUE(p.matches("spiffe://a/b"));
  EXPECT_TRUE(p.matches("spiffe://other.td"));
  EXPECT_FALSE(p.matches(""));
  EXPECT_FALSE(p.matches("not an id"));
}

TEST(IdPattern, TextReparsesToAnEqualPattern) {
  for (const char* text : {"*", "spiffe://td/*", "spiffe://td/a/*", "spiffe://td/a/b"}) {
    auto p = pattern(text);
    EXPECT_EQ(pattern(p.text()), p) << text;
  }
}

Authorization policy(std::initializer_list<const char*> allow,
                     std::initializer_list<const char*> deny) {
  Authorization out;
  for (const char* text : allow) {
    out.allow.push_back(pattern(text));
  }
  for (const char* text : deny) {
    out.deny.push_back(pattern(text));
  }
  return out;
}

TEST(Authorization, EmptyPolicyAllowsEveryone) {
  Authorization none;
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.allows(""));
  EXPECT_TRUE(none.allows("spiffe://td/x"));
}

TEST(Authorization, AllowList) {
  auto p =
      policy({"spiffe://cluster.local/ns/prod/*", "spiffe://cluster.local/ns/ops/sa/admin"}, {});
  EXPECT_TRUE(p.allows("spiffe://cluster.local/ns/prod/sa/web"));
  EXPECT_TRUE(p.allows("spiffe://cluster.local/ns/ops/sa/admin"));
  EXPECT_FALSE(p.allows("spiffe://cluster.local/ns/ops/sa/other"));
  EXPECT_FALSE(p.allows("spiffe://cluster.local/ns/production/sa/web"));
  EXPECT_FALSE(p.allows(""));  // plaintext
}

TEST(Authorization, DenyWins) {
  auto p = policy({"spiffe://cluster.local/*"}, {"spiffe://cluster.local/ns/dev/*"});
  EXPECT_TRUE(p.allows("spiffe://cluster.local/ns/prod/sa/web"));
  EXPECT_FALSE(p.allows("spiffe://cluster.local/ns/dev/sa/web"));
  auto exact = policy({"spiffe://td/a"}, {"spiffe://td/a"});
  EXPECT_FALSE(exact.allows("spiffe://td/a"));
}

TEST(Authorization, DenyOnlyAllowsEveryOtherAuthenticatedPeer) {
  auto p = policy({}, {"spiffe://cluster.local/ns/dev/*"});
  EXPECT_TRUE(p.allows("spiffe://cluster.local/ns/prod/sa/web"));
  EXPECT_TRUE(p.allows("spiffe://other.td/x"));
  EXPECT_FALSE(p.allows("spiffe://cluster.local/ns/dev/sa/web"));
  EXPECT_FALSE(p.allows(""));  // plaintext is refused once any policy exists
}

TEST(Authorization, AnyAuthenticatedPeer) {
  auto p = policy({"*"}, {});
  EXPECT_TRUE(p.allows("spiffe://td/x"));
  EXPECT_FALSE(p.allows(""));
  auto deny_all = policy({}, {"*"});
  EXPECT_FALSE(deny_all.allows("spiffe://td/x"));
  EXPECT_FALSE(deny_all.allows(""));
}

TEST(Authorization, InvalidPeerIdIsTreatedAsNoId) {
  auto p = policy({"*"}, {});
  EXPECT_FALSE(p.allows("spiffe://td/a/../b"));
  EXPECT_FALSE(p.allows("SPIFFE://td/a"));
  auto deny_only = policy({}, {"spiffe://td/dev/*"});
  EXPECT_FALSE(deny_only.allows("spiffe://td/dev/../prod"));
}

}  // namespace
}  // namespace pillion::tls
