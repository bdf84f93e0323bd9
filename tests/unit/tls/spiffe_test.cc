#include "tls/spiffe.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::tls {
namespace {

TEST(ParseSpiffeId, AcceptsValidIds) {
  auto id = parse_spiffe_id("spiffe://cluster.local/ns/prod/sa/payments");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->trust_domain, "cluster.local");
  EXPECT_EQ(id->path, "/ns/prod/sa/payments");
  EXPECT_EQ(id->text(), "spiffe://cluster.local/ns/prod/sa/payments");

  for (const char* text : {
           "spiffe://example.org",
           "spiffe://example.org/a",
           "spiffe://td/A-Z_a.z-0.9",
           "spiffe://my_domain-1.example.org/9eebccd2-12bf-40a6-b262-65fe0487d453",
           "spiffe://a/.../..a/.b/b./x..y",  // dots are fine unless the segment is . or ..
           "spiffe://1.2.3.4/ip-like",
           "spiffe://_/x",
       }) {
    std::string error;
    auto parsed = parse_spiffe_id(text, &error);
    ASSERT_TRUE(parsed) << text << ": " << error;
    EXPECT_EQ(parsed->text(), text);
  }
}

TEST(ParseSpiffeId, TrustDomainOnly) {
  auto id = parse_spiffe_id("spiffe://cluster.local");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->trust_domain, "cluster.local");
  EXPECT_EQ(id->path, "");
}

struct Rejected {
  const char* text;
  const char* why;  // a substring of the error
};

TEST(ParseSpiffeId, RejectsInvalidIdsWithAReason) {
  for (const auto& [text, why] : std::initializer_list<Rejected>{
           {"", "empty"},
           {"cluster.local/ns/prod", "must start with 'spiffe://'"},
           {"spiffe:/td/x", "must start with 'spiffe://'"},
           {"spiffe:td", "must start with 'spiffe://'"},
           {"SPIFFE://td/x", "lowercase 'spiffe'"},
           {"Spiffe://td/x", "lowercase 'spiffe'"},
           {"https://td/x", "scheme must be 'spiffe'"},
           {"spiffe://", "trust domain is empty"},
           {"spiffe:///x", "trust domain is empty"},
           {"spiffe://Cluster.local/x", "lowercase"},
           {"spiffe://td:8080/x", "port"},
           {"spiffe://td:/x", "port"},
           {"spiffe://user@td/x", "userinfo"},
           {"spiffe://t%41/x", "percent-encoding"},
           {"spiffe://td!/x", "'!'"},
           {"spiffe://td/x/", "must not end with '/'"},
           {"spiffe://td/", "must not end with '/'"},
           {"spiffe://td//x", "empty segment"},
           {"spiffe://td/a//b", "empty segment"},
           {"spiffe://td/.", "'.' segment"},
           {"spiffe://td/a/./b", "'.' segment"},
           {"spiffe://td/..", "'..' segment"},
           {"spiffe://td/a/../b", "'..' segment"},
           {"spiffe://td/a?b=c", "query"},
           {"spiffe://td?x", "query"},
           {"spiffe://td/a#frag", "fragment"},
           {"spiffe://td#frag", "fragment"},
           {"spiffe://td/a%2Fb", "percent-encoding"},
           {"spiffe://td/a b", "byte 0x20"},
           {"spiffe://td/a*", "'*'"},
           {"spiffe://td/caf\xc3\xa9", "byte 0xc3"},
           {"spiffe://td/a\nb", "byte 0x0a"},
           {" spiffe://td/a", "scheme must be 'spiffe'"},
       }) {
    std::string error;
    EXPECT_FALSE(parse_spiffe_id(text, &error)) << text;
    EXPECT_NE(error.find(why), std::string::npos) << text << " -> " << error;
  }
}

TEST(ParseSpiffeId, RejectsEmbeddedNul) {
  std::string text("spiffe://td/a\0b", 15);
  std::string error;
  EXPECT_FALSE(parse_spiffe_id(text, &error));
  EXPECT_NE(error.find("byte 0x00"), std::string::npos) << error;
}

TEST(ParseSpiffeId, LengthLimits) {
  std::string prefix = "spiffe://td/";
  std::string at_limit = prefix + std::string(kMaxSpiffeIdLength - prefix.size(), 'a');
  EXPECT_TRUE(parse_spiffe_id(at_limit));
  std::string error;
  EXPECT_FALSE(parse_spiffe_id(at_limit + "a", &error));
  EXPECT_NE(error.find("2048"), std::string::npos);

  std::string domain(kMaxTrustDomainLength, 'd');
  EXPECT_TRUE(parse_spiffe_id("spiffe://" + domain + "/x"));
  EXPECT_FALSE(parse_spiffe_id("spiffe://" + domain + "d/x", &error));
  EXPECT_NE(error.find("255"), std::string::npos);
}

TEST(ParseSpiffeId, ErrorIsOptional) {
  EXPECT_FALSE(parse_spiffe_id("nope"));
  EXPECT_FALSE(parse_spiffe_id("spiffe://td/x/"));
}

TEST(IsValidTrustDomain, Checks) {
  EXPECT_TRUE(is_valid_trust_domain("cluster.local"));
  EXPECT_TRUE(is_valid_trust_domain("a-b_c.9"));
  EXPECT_FALSE(is_valid_trust_domain(""));
  EXPECT_FALSE(is_valid_trust_domain("Cluster"));
  EXPECT_FALSE(is_valid_trust_domain("td/x"));
  EXPECT_FALSE(is_valid_trust_domain("td:1"));
}

}  // namespace
}  // namespace pillion::tls
