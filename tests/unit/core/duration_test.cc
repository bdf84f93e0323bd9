#include "core/duration.h"

#include <gtest/gtest.h>

namespace pillion::core {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, Units) {
  EXPECT_EQ(parse_duration("500us"), Duration(500us));
  EXPECT_EQ(parse_duration("250ms"), Duration(250ms));
  EXPECT_EQ(parse_duration("2s"), Duration(2s));
  EXPECT_EQ(parse_duration("1m"), Duration(1min));
  EXPECT_EQ(parse_duration("1h"), Duration(1h));
  EXPECT_EQ(parse_duration("0s"), Duration(0s));
}

TEST(ParseDuration, Rejects) {
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("2"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("1.5s"));
  EXPECT_FALSE(parse_duration("2 s"));
  EXPECT_FALSE(parse_duration("2sec"));
  EXPECT_FALSE(parse_duration("1d"));
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_FALSE(parse_duration("9223372036854775807h"));
  EXPECT_FALSE(parse_duration("99999999999999999999s"));
}

TEST(FormatDuration, PicksTheLargestExactUnit) {
  EXPECT_EQ(format_duration(0s), "0s");
  EXPECT_EQ(format_duration(2s), "2s");
  EXPECT_EQ(format_duration(1min), "60s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(1500us), "1500us");
}

TEST(FormatDuration, RoundTrips) {
  for (const char* text : {"7us", "250ms", "2s"}) {
    auto duration = parse_duration(text);
    ASSERT_TRUE(duration) << text;
    EXPECT_EQ(format_duration(*duration), text);
  }
}

}  // namespace
}  // namespace pillion::core
