#pragma once
// Human and machine-readable reports of bench results.
#include <string>
#include <vector>

#include "bench/load.h"

namespace pillion::bench {

struct Percentile {
  const char* name;  // "p50", ..., "max"
  double value;      // percent; 100 means the maximum
};
inline constexpr Percentile kPercentiles[] = {
    {"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}, {"max", 100}};

// "85us", "1.23ms", "2.50s"; a leading sign when `signed_value` (for differences).
std::string format_latency(double nanos, bool signed_value = false);

std::string text_report(const LoadOptions& options, int rounds,
                        const std::vector<LoadResult>& results);
// One JSON object: the options, each target's counts, errors and latency in microseconds, and,
// with two targets, "added_us": target 2 minus target 1 per percentile.
std::string json_report(const LoadOptions& options, int rounds,
                        const std::vector<LoadResult>& results);

}  // namespace pillion::bench
