#include "observe/histogram.h"

#include <gtest/gtest.h>

#include <array>

#include "observe/exposition.h"

namespace pillion::observe {
namespace {

HistogramSnapshot snapshot_of(const Histogram& histogram) {
  HistogramSnapshot out;
  histogram.add_to(out);
  return out;
}

TEST(Histogram, BucketUpperBoundsAreInclusive) {
  Histogram h;
  h.observe_us(0);           // le 0.0005
  h.observe_us(500);         // le 0.0005: on the bound
  h.observe_us(501);         // le 0.001
  h.observe_us(10'000'000);  // le 10
  h.observe_us(10'000'001);  // +Inf
  h.observe_us(-5);          // clock oddity: counted as 0
  auto s = snapshot_of(h);
  EXPECT_EQ(s.counts[0], 3u);
  EXPECT_EQ(s.counts[1], 1u);
  EXPECT_EQ(s.counts[kBuckets - 2], 1u);
  EXPECT_EQ(s.counts[kBuckets - 1], 1u);
  EXPECT_EQ(s.count(), 6u);
  EXPECT_EQ(s.sum_us, 500u + 501 + 10'000'000 + 10'000'001);
}

TEST(Histogram, BoundsAndLeLabelsAgree) {
  for (size_t i = 0; i < kBucketBoundsUs.size(); ++i) {
    EXPECT_DOUBLE_EQ(std::stod(std::string(kBucketLe[i])),
                     static_cast<double>(kBucketBoundsUs[i]) / 1e6);
    if (i > 0) {
      EXPECT_LT(kBucketBoundsUs[i - 1], kBucketBoundsUs[i]);
    }
  }
}

TEST(Histogram, ShardsMergeBySum) {
  Histogram a;
  Histogram b;
  a.observe_us(700);
  b.observe_us(700);
  b.observe_us(3'000'000);
  HistogramSnapshot merged;
  a.add_to(merged);
  b.add_to(merged);
  EXPECT_EQ(merged.counts[1], 2u);
  EXPECT_EQ(merged.counts[12], 1u);  // le 5
  EXPECT_EQ(merged.count(), 3u);
  EXPECT_EQ(merged.sum_us, 3'001'400u);
}

TEST(Exposition, HistogramIsCumulativeWithSumInSeconds) {
  Histogram h;
  h.observe_us(400);
  h.observe_us(2'000);
  h.observe_us(20'000'000);
  Exposition out;
  std::array<Label, 1> labels{{{"cluster", "a"}}};
  out.histogram("x_seconds", labels, snapshot_of(h));
  const auto& text = out.text();
  EXPECT_NE(text.find("x_seconds_bucket{cluster=\"a\",le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{cluster=\"a\",le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{cluster=\"a\",le=\"0.0025\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{cluster=\"a\",le=\"10\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{cluster=\"a\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_sum{cluster=\"a\"} 20.0024\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_count{cluster=\"a\"} 3\n"), std::string::npos);
}

TEST(Exposition, EscapesLabelValuesAndHelp) {
  std::string value;
  append_label_value(value, "a\\b\"c\nd");
  EXPECT_EQ(value, "a\\\\b\\\"c\\nd");
  std::string help;
  append_help(help, "x\\y\"z\nw");
  EXPECT_EQ(help, "x\\\\y\"z\\nw");  // HELP keeps quotes as they are
  Exposition out;
  out.family("m_total", "counter", "line one\nline two");
  std::array<Label, 2> labels{{{"a", "1"}, {"b", "q\""}}};
  out.sample("m_total", labels, uint64_t{5});
  EXPECT_EQ(out.text(),
            "# HELP m_total line one\\nline two\n# TYPE m_total counter\n"
            "m_total{a=\"1\",b=\"q\\\"\"} 5\n");
}

TEST(Exposition, UnlabelledSamples) {
  Exposition out;
  out.sample("g", uint64_t{3});
  out.sample("h", {}, 1.5);
  EXPECT_EQ(out.text(), "g 3\nh 1.5\n");
}

}  // namespace
}  // namespace pillion::observe
