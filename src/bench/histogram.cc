#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace pillion::bench {
namespace {

// Buckets for 64-bit values: kSubCount exact ones, then kHalfCount per remaining power of two.
constexpr size_t kBucketCount =
    Histogram::kSubCount + (64 - Histogram::kSubBits) * Histogram::kHalfCount;

}  // namespace

Histogram::Histogram() : counts_(kBucketCount, 0) {}

size_t Histogram::bucket_of(uint64_t value) {
  if (value < kSubCount) {
    return static_cast<size_t>(value);
  }
  int msb = 63 - std::countl_zero(value);
  int shift = msb - kSubBits + 1;      // >= 1
  uint64_t mantissa = value >> shift;  // in [kHalfCount, kSubCount)
  return static_cast<size_t>(kSubCount + (shift - 1) * kHalfCount + (mantissa - kHalfCount));
}

uint64_t Histogram::bucket_low(size_t bucket) {
  if (bucket < kSubCount) {
    return bucket;
  }
  size_t shift = (bucket - kSubCount) / kHalfCount + 1;
  uint64_t mantissa = (bucket - kSubCount) % kHalfCount + kHalfCount;
  return mantissa << shift;
}

uint64_t Histogram::bucket_high(size_t bucket) {
  if (bucket < kSubCount) {
    return bucket;
  }
  size_t shift = (bucket - kSubCount) / kHalfCount + 1;
  return bucket_low(bucket) + ((uint64_t{1} << shift) - 1);
}

void Histogram::record(uint64_t value) {
  ++counts_[bucket_of(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
}

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += other.counts_[i];
  }
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double Histogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / count_);
}

uint64_t Histogram::percentile(double percentile) const {
  if (count_ == 0) {
    return 0;
  }
  percentile = std::clamp(percentile, 0.0, 100.0);
  // Rank of the wanted value, 1-based; at least the first value. The small slack keeps
  // 99.9% of 1000 at rank 999 despite floating-point error.
  double exact = percentile / 100.0 * static_cast<double>(count_);
  auto rank = static_cast<uint64_t>(std::ceil(exact * (1 - 1e-12)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::clamp(bucket_high(i), min(), max_);
    }
  }
  return max_;
}

}  // namespace pillion::bench
