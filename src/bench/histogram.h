#pragma once
// A small log-linear latency histogram (the HdrHistogram idea; Debian packages no C/C++ one).
// Values are non-negative integers (nanoseconds here). Values below 2^kSubBits are exact; above,
// each power of two is split into 2^(kSubBits-1) linear buckets, so any recorded value is
// reported within 1/128 (0.8%) of itself. Fixed memory, O(1) record, no allocation after start.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pillion::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 8;
  static constexpr uint64_t kSubCount = uint64_t{1} << kSubBits;
  static constexpr uint64_t kHalfCount = kSubCount / 2;

  Histogram();

  void record(uint64_t value);
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const;
  // The smallest value v such that at least `percentile`% of recorded values are <= v, reported as
  // the highest value of its bucket (clamped to min/max). 0 when empty. percentile in [0, 100].
  uint64_t percentile(double percentile) const;

  // Bucket arithmetic, public for tests.
  static size_t bucket_of(uint64_t value);
  static uint64_t bucket_low(size_t bucket);
  static uint64_t bucket_high(size_t bucket);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace pillion::bench
