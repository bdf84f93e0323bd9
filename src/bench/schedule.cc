#include "bench/schedule.h"

#include <cmath>

namespace pillion::bench {

Schedule::Schedule(double rate, uint32_t connections)
    : rate_(rate > 0 ? rate : 1.0), connections_(connections > 0 ? connections : 1) {}

Nanos Schedule::offset(uint64_t index) const {
  // Computed from the index, not accumulated, so rounding never drifts over a long run.
  return Nanos(std::llround(static_cast<double>(index) * 1e9 / rate_));
}

uint64_t Schedule::index_at(Nanos t) const {
  if (t.count() <= 0) {
    return 0;
  }
  auto guess = static_cast<uint64_t>(std::ceil(static_cast<double>(t.count()) * rate_ / 1e9));
  // Fix up floating-point rounding at the boundary.
  while (guess > 0 && offset(guess - 1) >= t) {
    --guess;
  }
  while (offset(guess) < t) {
    ++guess;
  }
  return guess;
}

uint64_t Schedule::first_k_at_or_after(uint32_t connection, uint64_t index) const {
  if (index <= connection) {
    return 0;
  }
  return (index - connection + connections_ - 1) / connections_;
}

}  // namespace pillion::bench
