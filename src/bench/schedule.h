#pragma once
// Open-loop schedule: request i (0-based, over all connections) is due at start + i / rate,
// whatever happened to earlier requests. Requests are dealt round-robin to connections, so
// connection c sends requests c, c + C, c + 2C, ... (the wrk2 model). A request's latency is
// measured from its due time, so time spent waiting for a busy connection counts
// (no coordinated omission).
#include <chrono>
#include <cstdint>

namespace pillion::bench {

using Nanos = std::chrono::nanoseconds;

class Schedule {
 public:
  // rate in requests per second (> 0); connections >= 1.
  Schedule(double rate, uint32_t connections);

  // Offset of request `index` from the start of the run.
  Nanos offset(uint64_t index) const;
  // The smallest index whose offset is >= t: requests [index_at(a), index_at(b)) are due in [a, b).
  uint64_t index_at(Nanos t) const;
  // Global index of the k-th request of connection c.
  uint64_t index_of(uint32_t connection, uint64_t k) const { return k * connections_ + connection; }
  // First k of connection c whose global index is >= index.
  uint64_t first_k_at_or_after(uint32_t connection, uint64_t index) const;

  double rate() const { return rate_; }
  uint32_t connections() const { return connections_; }

 private:
  double rate_;
  uint32_t connections_;
};

}  // namespace pillion::bench
