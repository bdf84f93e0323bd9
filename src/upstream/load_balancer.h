#pragma once
// Endpoint choice for one worker and one cluster (single-threaded; each worker has its own).
// Policies: least request with power of two choices (the default: the less busy of two
// weighted random picks, busy = this worker's active requests / weight), smooth weighted round
// robin (nginx's algorithm), weighted random. Only available hosts (not ejected, not failing
// health checks) are picked; below `panic_threshold` percent available, all hosts are.
#include <cstdint>
#include <vector>

#include "config/schema.h"
#include "upstream/host.h"

namespace pillion::upstream {

struct Pick {
  Host* host = nullptr;  // null: no host available (the caller answers 503 UH)
  bool panic = false;    // picked among all hosts because too few were available
};

class LoadBalancer {
 public:
  // `worker`: this worker's index (whose active-request counts least request reads).
  // `seed`: for the random draws (tests pass a fixed one).
  LoadBalancer(config::LbPolicy policy, size_t worker, uint64_t seed);

  // `avoid`: a host to skip when another available one exists (a retry's previous host).
  Pick pick(const HostSet& set, Clock::time_point now, uint32_t panic_threshold,
            const Host* avoid = nullptr);

 private:
  uint64_t next_random();
  // Index into set.hosts of a weighted random candidate.
  size_t weighted_random(const HostSet& set);
  size_t least_request(const HostSet& set);
  size_t round_robin(const HostSet& set);
  double next_unit() { return static_cast<double>(next_random() >> 11) * 0x1.0p-53; }

  config::LbPolicy policy_;
  size_t worker_;
  uint64_t random_state_;
  // Smooth weighted round robin: current weight per host of the set with this version.
  uint64_t set_version_ = UINT64_MAX;
  std::vector<int64_t> current_weights_;
  std::vector<size_t> candidates_;  // scratch, reused: indices into the set's hosts
};

}  // namespace pillion::upstream
