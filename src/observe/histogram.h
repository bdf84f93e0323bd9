#pragma once
// A latency histogram with fixed buckets, one per worker shard (single writer, like Counter);
// shards are summed into a HistogramSnapshot at scrape time.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include "observe/counter.h"

namespace pillion::observe {

// Upper bounds in microseconds, 0.5 ms .. 10 s: a sidecar hop is sub-millisecond, an app call
// milliseconds to seconds. Fixed so series stay comparable across pods.
inline constexpr std::array<int64_t, 14> kBucketBoundsUs = {
    500,     1'000,   2'500,   5'000,     10'000,    25'000,    50'000,
    100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};
// The same bounds as Prometheus `le` values, in seconds.
inline constexpr std::array<std::string_view, 14> kBucketLe = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
inline constexpr size_t kBuckets = kBucketBoundsUs.size() + 1;  // the last one is +Inf

struct HistogramSnapshot {
  std::array<uint64_t, kBuckets> counts{};  // per bucket, not cumulative
  uint64_t sum_us = 0;

  uint64_t count() const {
    uint64_t total = 0;
    for (auto c : counts) {
      total += c;
    }
    return total;
  }
};

class Histogram {
 public:
  // One bucket search, two single-writer stores.
  void observe_us(int64_t us) {
    us = std::max<int64_t>(us, 0);
    auto bucket = std::lower_bound(kBucketBoundsUs.begin(), kBucketBoundsUs.end(), us) -
                  kBucketBoundsUs.begin();
    counts_[static_cast<size_t>(bucket)].add();
    sum_us_.add(static_cast<uint64_t>(us));
  }

  void add_to(HistogramSnapshot& out) const {
    for (size_t i = 0; i < kBuckets; ++i) {
      out.counts[i] += counts_[i].get();
    }
    out.sum_us += sum_us_.get();
  }

 private:
  std::array<Counter, kBuckets> counts_;
  Counter sum_us_;
};

}  // namespace pillion::observe
