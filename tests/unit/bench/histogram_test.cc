#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <random>

namespace pillion::bench {
namespace {

TEST(Histogram, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) {
    h.record(v);
  }
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(90), 90u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(Histogram, BucketsCoverEveryValueWithBoundedError) {
  for (uint64_t v : {uint64_t{0}, uint64_t{255}, uint64_t{256}, uint64_t{257}, uint64_t{1000},
                     uint64_t{123456789}, uint64_t{1} << 40, UINT64_MAX}) {
    size_t b = Histogram::bucket_of(v);
    EXPECT_LE(Histogram::bucket_low(b), v);
    EXPECT_GE(Histogram::bucket_high(b), v);
    double width = static_cast<double>(Histogram::bucket_high(b) - Histogram::bucket_low(b));
    EXPECT_LE(width, static_cast<double>(v) / 128.0 + 1) << v;
  }
  // Buckets are contiguous and increasing.
  for (size_t b = 1; b < 3000; ++b) {
    EXPECT_EQ(Histogram::bucket_low(b), Histogram::bucket_high(b - 1) + 1) << b;
  }
}

TEST(Histogram, PercentilesOfUniformMicroseconds) {
  Histogram h;
  // 1..100000 us in ns: percentile p must come back within 1% of p * 1000 us.
  for (uint64_t us = 1; us <= 100000; ++us) {
    h.record(us * 1000);
  }
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    double expected = p / 100.0 * 100000.0 * 1000.0;
    EXPECT_NEAR(static_cast<double>(h.percentile(p)), expected, expected * 0.01) << p;
  }
  EXPECT_EQ(h.percentile(100), 100000u * 1000u);
  EXPECT_EQ(h.min(), 1000u);
}

TEST(Histogram, TailIsNotHiddenByTheBulk) {
  Histogram h;
  for (int i = 0; i < 999; ++i) {
    h.record(100'000);
  }
  h.record(50'000'000);
  EXPECT_NEAR(static_cast<double>(h.percentile(99)), 100'000, 1'000);
  EXPECT_NEAR(static_cast<double>(h.percentile(99.9)), 100'000, 1'000);
  EXPECT_EQ(h.percentile(99.95), 50'000'000u);
  EXPECT_EQ(h.max(), 50'000'000u);
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(12, 1);
  for (int i = 0; i < 20000; ++i) {
    auto v = static_cast<uint64_t>(dist(rng));
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {50.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(a.percentile(p), all.percentile(p));
  }
  a.reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.percentile(50), 0u);
}

}  // namespace
}  // namespace pillion::bench
