#include "http/ids.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace pillion::http {
namespace {

TEST(IdGenerator, MakesDistinctVersion4Uuids) {
  IdGenerator ids;
  std::regex uuid_v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    std::string id(36, '?');
    ids.uuid_v4(id.data());
    ASSERT_TRUE(std::regex_match(id, uuid_v4)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 2000u);
}

TEST(Traceparent, ParsesValidAndRejectsInvalid) {
  auto parsed = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(std::string(parsed->trace_id.data(), 32), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(parsed->flags, 1);
  for (const char* bad : {
           "00-00000000000000000000000000000000-b7ad6b7169203331-01",        // zero trace id
           "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",        // zero parent
           "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",        // forbidden version
           "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",        // uppercase
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  // v00 length
           "garbage",
       }) {
    EXPECT_FALSE(parse_traceparent(bad).has_value()) << bad;
  }
  // A future version may carry more fields.
  EXPECT_TRUE(parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")
                  .has_value());
}

TEST(Traceparent, NextHopKeepsTraceAndMakesNewSpan) {
  IdGenerator ids;
  auto incoming = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  auto next = next_hop(incoming, 0.0, ids);
  std::string out(kTraceparentLength, '?');
  format_traceparent(next, out.data());
  EXPECT_EQ(out.substr(0, 36), "00-0af7651916cd43dd8448eb211c80319c-");
  EXPECT_NE(out.substr(36, 16), "b7ad6b7169203331");
  EXPECT_EQ(out.substr(52), "-01");
  EXPECT_TRUE(parse_traceparent(out).has_value());
}

TEST(Traceparent, StartsNewTracesSampledByRatio) {
  IdGenerator ids;
  int sampled = 0;
  for (int i = 0; i < 10000; ++i) {
    auto next = next_hop(std::nullopt, 0.25, ids);
    sampled += next.flags & 1;
    std::string out(kTraceparentLength, '?');
    format_traceparent(next, out.data());
    ASSERT_TRUE(parse_traceparent(out).has_value()) << out;
  }
  EXPECT_NEAR(sampled, 2500, 250);
  EXPECT_EQ(next_hop(std::nullopt, 0.0, ids).flags, 0);
  EXPECT_EQ(next_hop(std::nullopt, 1.0, ids).flags, 1);
}

}  // namespace
}  // namespace pillion::http
