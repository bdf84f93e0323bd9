#include "upstream/backoff.h"

#include <gtest/gtest.h>

namespace pillion::upstream {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;
using core::Duration;

TEST(Backoff, FullJitterBelowTheExponentialCeiling) {
  for (uint32_t retry = 0; retry < 4; ++retry) {
    Duration ceiling = 25ms * (1 << retry);  // 25, 50, 100, 200 ms: all under the cap
    EXPECT_EQ(backoff_delay(retry, 25ms, 250ms, 0.0), 0us) << retry;
    Duration high = backoff_delay(retry, 25ms, 250ms, 0.999);
    EXPECT_LT(high, ceiling) << retry;
    EXPECT_GE(high, ceiling * 999 / 1000 - 1us) << retry;
    Duration half = backoff_delay(retry, 25ms, 250ms, 0.5);
    EXPECT_EQ(half, ceiling / 2) << retry;
  }
}

TEST(Backoff, CappedAtMax) {
  EXPECT_EQ(backoff_delay(4, 25ms, 250ms, 0.5), 125ms);  // 400 ms capped to 250 ms
  EXPECT_LT(backoff_delay(4, 25ms, 250ms, 0.999), 250ms);
  EXPECT_GE(backoff_delay(4, 25ms, 250ms, 0.999), 249ms);
}

TEST(Backoff, HugeRetryNumbersDoNotOverflow) {
  for (uint32_t retry : {40u, 62u, 63u, 64u, 1000u, UINT32_MAX}) {
    Duration delay = backoff_delay(retry, 25ms, 250ms, 0.5);
    EXPECT_EQ(delay, 125ms) << retry;
  }
  EXPECT_EQ(backoff_delay(70, Duration::max(), Duration::max(), 0.0), 0us);
}

TEST(Backoff, OutOfRangeRandomStaysInRange) {
  EXPECT_LT(backoff_delay(0, 25ms, 250ms, 1.0), 25ms);
  EXPECT_GE(backoff_delay(0, 25ms, 250ms, -1.0), 0us);
  EXPECT_EQ(backoff_delay(0, 0ms, 250ms, 0.5), 0us);
}

// 2015-10-21 07:27:30 UTC.
const system_clock::time_point kNow = sys_days{2015y / October / 21} + 7h + 27min + 30s;

TEST(RetryAfter, DelaySeconds) {
  EXPECT_EQ(parse_retry_after("120", kNow), 120s);
  EXPECT_EQ(parse_retry_after("0", kNow), 0s);
  EXPECT_EQ(parse_retry_after(" 5 ", kNow), 5s);
}

TEST(RetryAfter, HugeDelayIsCappedNotWrapped) {
  auto delay = parse_retry_after("99999999999999999999999999", kNow);
  ASSERT_TRUE(delay);
  EXPECT_GE(*delay, hours(24 * 365));
  EXPECT_LT(*delay, hours(24 * 366));
}

TEST(RetryAfter, GarbageIsNullopt) {
  for (std::string_view bad :
       {"", "  ", "-1", "+5", "1.5", "abc", "12abc", "Wed, 21 Oct 2015",
        "Wed, 21 Oct 2015 07:28:00 UTC", "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 30 Feb 2015 07:28:00 GMT", "Wed, 21 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 24:00:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT x"}) {
    EXPECT_FALSE(parse_retry_after(bad, kNow)) << bad;
  }
}

TEST(RetryAfter, ImfFixdate) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", kNow), 30s);
  EXPECT_EQ(parse_retry_after("Thu, 22 Oct 2015 07:27:30 GMT", kNow), 24h);
}

TEST(RetryAfter, PastDateIsZero) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", kNow), 0s);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kNow), 0s);
}

TEST(RetryAfter, ObsoleteDateForms) {
  EXPECT_EQ(parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", kNow), 30s);
  EXPECT_EQ(parse_retry_after("Wed Oct 21 07:28:00 2015", kNow), 30s);
  auto early_month = sys_days{2015y / November / 6} + 8h + 49min + 37s;
  EXPECT_EQ(parse_retry_after("Fri Nov  6 08:49:40 2015", early_month), 3s);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", kNow), 0s);  // 1994, not 2094
}

TEST(RetryAfter, SubsecondNowIsExact) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", kNow + 250ms), 29750ms);
}

}  // namespace
}  // namespace pillion::upstream
