#include "bench/schedule.h"

#include <gtest/gtest.h>

#include <set>

namespace pillion::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Schedule, OffsetsAreEvenlySpaced) {
  Schedule s(200, 4);
  EXPECT_EQ(s.offset(0), Nanos(0));
  EXPECT_EQ(s.offset(1), milliseconds(5));
  EXPECT_EQ(s.offset(200), seconds(1));
}

TEST(Schedule, NoDriftOverLongRuns) {
  Schedule s(3, 1);  // 333.33.. ms apart: accumulating would drift
  EXPECT_EQ(s.offset(3'000'000), seconds(1'000'000));
}

TEST(Schedule, WindowCountsMatchRateTimesDuration) {
  Schedule s(200, 4);
  // 1 s warmup then 2 s measured: 400 requests, the first at exactly 1 s.
  EXPECT_EQ(s.index_at(seconds(1)), 200u);
  EXPECT_EQ(s.index_at(seconds(3)) - s.index_at(seconds(1)), 400u);
  EXPECT_EQ(s.index_at(Nanos(0)), 0u);
  EXPECT_EQ(s.index_at(Nanos(1)), 1u);
  Schedule odd(7, 1);
  for (int ms = 0; ms < 5000; ms += 37) {
    uint64_t i = odd.index_at(milliseconds(ms));
    EXPECT_GE(odd.offset(i), milliseconds(ms));
    if (i > 0) {
      EXPECT_LT(odd.offset(i - 1), milliseconds(ms));
    }
  }
}

TEST(Schedule, RoundRobinCoversEveryIndexOnce) {
  Schedule s(1000, 3);
  std::set<uint64_t> seen;
  for (uint32_t c = 0; c < 3; ++c) {
    for (uint64_t k = 0; k < 10; ++k) {
      EXPECT_TRUE(seen.insert(s.index_of(c, k)).second);
    }
  }
  EXPECT_EQ(seen.size(), 30u);
  EXPECT_EQ(*seen.rbegin(), 29u);
  EXPECT_EQ(s.first_k_at_or_after(0, 0), 0u);
  EXPECT_EQ(s.first_k_at_or_after(2, 2), 0u);
  EXPECT_EQ(s.first_k_at_or_after(0, 4), 2u);  // index 6
  EXPECT_EQ(s.first_k_at_or_after(1, 4), 1u);  // index 4
}

}  // namespace
}  // namespace pillion::bench
