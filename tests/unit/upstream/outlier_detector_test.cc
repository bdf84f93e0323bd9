#include "upstream/outlier_detector.h"

#include <gtest/gtest.h>

namespace pillion::upstream {
namespace {

using namespace std::chrono_literals;

constexpr auto kStart = Clock::time_point(1h);

HostSet make_set(size_t hosts) {
  HostSet set;
  set.version = 1;
  for (size_t i = 0; i < hosts; ++i) {
    boost::asio::ip::tcp::endpoint address(boost::asio::ip::make_address("10.0.0.1"),
                                           static_cast<uint16_t>(8000 + i));
    set.hosts.push_back(std::make_shared<Host>(address, "svc", 1, 1));
  }
  return set;
}

config::OutlierDetection detection(uint32_t failures, core::Duration base, core::Duration max,
                                   uint32_t percent) {
  config::OutlierDetection config;
  config.consecutive_failures = failures;
  config.base_ejection_time = base;
  config.max_ejection_time = max;
  config.max_ejection_percent = percent;
  return config;
}

// Fails `host` until it is ejected; returns the number of failures that took.
int fail_until_ejected(OutlierDetector& detector, Host& host, const HostSet& set,
                       Clock::time_point now) {
  for (int i = 1; i <= 100; ++i) {
    if (detector.report_failure(host, set, now)) {
      return i;
    }
  }
  return -1;
}

TEST(OutlierDetector, EjectsAfterConsecutiveFailures) {
  OutlierDetector detector(detection(3, 10s, 100s, 100));
  auto set = make_set(2);
  Host& host = *set.hosts[0];
  EXPECT_FALSE(detector.report_failure(host, set, kStart));
  EXPECT_FALSE(detector.report_failure(host, set, kStart));
  EXPECT_TRUE(host.available(kStart));
  EXPECT_TRUE(detector.report_failure(host, set, kStart));
  EXPECT_FALSE(host.available(kStart));
  EXPECT_EQ(host.times_ejected.load(), 1u);
  EXPECT_EQ(host.consecutive_failures.load(), 0u);
  EXPECT_EQ(detector.ejections_total(), 1u);
  EXPECT_TRUE(set.hosts[1]->available(kStart));
}

TEST(OutlierDetector, SuccessEndsTheRun) {
  OutlierDetector detector(detection(3, 10s, 100s, 100));
  auto set = make_set(1);
  Host& host = *set.hosts[0];
  EXPECT_FALSE(detector.report_failure(host, set, kStart));
  EXPECT_FALSE(detector.report_failure(host, set, kStart));
  detector.report_success(host);
  EXPECT_EQ(host.consecutive_failures.load(), 0u);
  EXPECT_FALSE(detector.report_failure(host, set, kStart));
  EXPECT_FALSE(detector.report_failure(host, set, kStart));
  EXPECT_TRUE(host.available(kStart));
  EXPECT_TRUE(detector.report_failure(host, set, kStart));
}

TEST(OutlierDetector, ReturnsWhenItsTimeIsUp) {
  OutlierDetector detector(detection(1, 10s, 100s, 100));
  auto set = make_set(1);
  Host& host = *set.hosts[0];
  ASSERT_TRUE(detector.report_failure(host, set, kStart));
  EXPECT_FALSE(host.available(kStart + 9999ms));
  EXPECT_TRUE(host.available(kStart + 10s));
}

TEST(OutlierDetector, FailuresWhileEjectedDoNotExtendIt) {
  OutlierDetector detector(detection(1, 10s, 100s, 100));
  auto set = make_set(1);
  Host& host = *set.hosts[0];
  ASSERT_TRUE(detector.report_failure(host, set, kStart));
  EXPECT_FALSE(detector.report_failure(host, set, kStart + 5s));
  EXPECT_EQ(detector.ejections_total(), 1u);
  EXPECT_TRUE(host.available(kStart + 10s));
}

TEST(OutlierDetector, EjectionTimeGrowsAndIsCapped) {
  OutlierDetector detector(detection(2, 10s, 25s, 100));
  auto set = make_set(1);
  Host& host = *set.hosts[0];
  auto now = kStart;
  for (auto expected : {10s, 20s, 25s, 25s}) {
    ASSERT_EQ(fail_until_ejected(detector, host, set, now), 2);
    EXPECT_FALSE(host.available(now + expected - 1ms)) << expected.count();
    EXPECT_TRUE(host.available(now + expected)) << expected.count();
    now += expected;
  }
  EXPECT_EQ(host.times_ejected.load(), 4u);
}

TEST(OutlierDetector, MaxEjectionPercentIsRespected) {
  OutlierDetector detector(detection(1, 10s, 100s, 20));
  auto set = make_set(10);
  int ejected = 0;
  for (auto& host : set.hosts) {
    ejected += detector.report_failure(*host, set, kStart) ? 1 : 0;
  }
  EXPECT_EQ(ejected, 2);
  EXPECT_EQ(detector.ejections_total(), 2u);
  EXPECT_EQ(detector.ejections_overflow(), 8u);
  // Once the first two return, a host still failing may be ejected.
  EXPECT_TRUE(detector.report_failure(*set.hosts[5], set, kStart + 10s));
}

TEST(OutlierDetector, OneHostMayAlwaysBeEjected) {
  OutlierDetector detector(detection(1, 10s, 100s, 10));
  auto set = make_set(2);  // 10% of 2 is less than one host
  EXPECT_TRUE(detector.report_failure(*set.hosts[0], set, kStart));
  EXPECT_FALSE(detector.report_failure(*set.hosts[1], set, kStart));
  EXPECT_EQ(detector.ejections_overflow(), 1u);
}

}  // namespace
}  // namespace pillion::upstream
