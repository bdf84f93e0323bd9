#include "logs/timestamp.h"

#include <gtest/gtest.h>

namespace pillion::logs {
namespace {

std::string normalize(std::string_view layout, std::string_view zone, std::string_view text,
                      size_t* consumed = nullptr) {
  std::string error;
  auto parser = TimeParser::create(layout, zone, error);
  EXPECT_TRUE(parser) << error;
  Timestamp ts;
  const size_t n = parser->parse(text, ts);
  if (consumed != nullptr) {
    *consumed = n;
  }
  if (n == 0) {
    return "no match";
  }
  std::string out;
  append_rfc3339(out, ts);
  return out;
}

TEST(Timestamp, SeedLayoutInUtc) {
  size_t n = 0;
  EXPECT_EQ(normalize("%Y-%m-%d %H:%M:%S", "UTC", "2024-01-15 14:32:01 INFO", &n),
            "2024-01-15T14:32:01Z");
  EXPECT_EQ(n, 19u);
}

TEST(Timestamp, FractionKeepsItsPrecision) {
  EXPECT_EQ(normalize("%Y-%m-%d %H:%M:%S", "UTC", "2024-01-15 14:32:01.5"),
            "2024-01-15T14:32:01.5Z");
  EXPECT_EQ(normalize("%Y-%m-%d %H:%M:%S", "UTC", "2024-01-15 14:32:01,123456"),
            "2024-01-15T14:32:01.123456Z");
}

TEST(Timestamp, FixedOffsetZone) {
  EXPECT_EQ(normalize("%Y-%m-%d %H:%M:%S", "+05:30", "2024-01-01 02:00:00"),
            "2023-12-31T20:30:00Z");
}

TEST(Timestamp, NamedZoneFollowsDaylightSaving) {
  EXPECT_EQ(normalize("%F %T", "Europe/Berlin", "2024-01-15 14:32:01"), "2024-01-15T13:32:01Z");
  EXPECT_EQ(normalize("%F %T", "Europe/Berlin", "2024-07-15 14:32:01"), "2024-07-15T12:32:01Z");
}

TEST(Timestamp, OffsetInTheInputWins) {
  EXPECT_EQ(normalize("rfc3339", "Europe/Berlin", "2024-01-15T14:32:01.250-05:00"),
            "2024-01-15T19:32:01.250Z");
  EXPECT_EQ(normalize("rfc3339", "UTC", "2024-01-15T14:32:01Z"), "2024-01-15T14:32:01Z");
}

TEST(Timestamp, MonthNamesAndPaddedDays) {
  EXPECT_EQ(normalize("%b %e %H:%M:%S", "UTC", "Jan  5 14:32:01"), "1970-01-05T14:32:01Z");
  EXPECT_EQ(normalize("%d/%b/%Y:%H:%M:%S", "UTC", "15/Jan/2024:14:32:01"), "2024-01-15T14:32:01Z");
}

TEST(Timestamp, RejectsWhatDoesNotMatch) {
  EXPECT_EQ(normalize("%Y-%m-%d %H:%M:%S", "UTC", "2024-13-15 14:32:01"), "no match");
  EXPECT_EQ(normalize("%Y-%m-%d %H:%M:%S", "UTC", "garbage"), "no match");
  EXPECT_EQ(normalize("%Y-%m-%d %H:%M:%S", "UTC", "2024-01-15"), "no match");
}

TEST(Timestamp, BadLayoutOrZoneIsAnError) {
  std::string error;
  EXPECT_FALSE(TimeParser::create("%Q", "UTC", error));
  EXPECT_NE(error.find("%Q"), std::string::npos);
  EXPECT_FALSE(TimeParser::create("%Y", "Mars/Olympus", error));
  EXPECT_NE(error.find("Mars/Olympus"), std::string::npos);
  EXPECT_FALSE(TimeParser::create("%Y", "+25:00", error));
}

TEST(Timestamp, LeapYearsAndEpoch) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(normalize("%F %T", "UTC", "2024-02-29 23:59:59"), "2024-02-29T23:59:59Z");
  EXPECT_EQ(normalize("%F %T", "UTC", "2000-03-01 00:00:00"), "2000-03-01T00:00:00Z");
}

}  // namespace
}  // namespace pillion::logs
