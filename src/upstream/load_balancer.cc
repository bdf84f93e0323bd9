#include "upstream/load_balancer.h"

#include <algorithm>

namespace pillion::upstream {

LoadBalancer::LoadBalancer(config::LbPolicy policy, size_t worker, uint64_t seed)
    : policy_(policy), worker_(worker), random_state_(seed) {}

// splitmix64: one add and three mixes per draw, good enough to spread load.
uint64_t LoadBalancer::next_random() {
  uint64_t z = (random_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Pick LoadBalancer::pick(const HostSet& set, Clock::time_point now, uint32_t panic_threshold,
                        const Host* avoid) {
  const auto& hosts = set.hosts;
  candidates_.clear();
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i]->available(now)) {
      candidates_.push_back(i);
    }
  }
  // Too few healthy hosts would take the whole load and fall over too: spread it over all.
  bool panic = !hosts.empty() && uint64_t{candidates_.size()} * 100 <
                                     uint64_t{panic_threshold} * uint64_t{hosts.size()};
  if (panic) {
    candidates_.clear();
    for (size_t i = 0; i < hosts.size(); ++i) {
      candidates_.push_back(i);
    }
  }
  if (avoid != nullptr && candidates_.size() > 1) {
    std::erase_if(candidates_, [&](size_t i) { return hosts[i].get() == avoid; });
  }
  if (candidates_.empty()) {
    return Pick{};
  }
  size_t chosen = candidates_.front();
  if (candidates_.size() > 1) {
    switch (policy_) {
      case config::LbPolicy::kLeastRequest:
        chosen = least_request(set);
        break;
      case config::LbPolicy::kRoundRobin:
        chosen = round_robin(set);
        break;
      case config::LbPolicy::kRandom:
        chosen = weighted_random(set);
        break;
    }
  }
  return Pick{.host = hosts[chosen].get(), .panic = panic};
}

size_t LoadBalancer::weighted_random(const HostSet& set) {
  uint64_t total = 0;
  for (size_t i : candidates_) {
    total += set.hosts[i]->weight();
  }
  auto point = std::min(static_cast<uint64_t>(next_unit() * static_cast<double>(total)), total - 1);
  for (size_t i : candidates_) {
    uint64_t weight = set.hosts[i]->weight();
    if (point < weight) {
      return i;
    }
    point -= weight;
  }
  return candidates_.back();
}

size_t LoadBalancer::least_request(const HostSet& set) {
  size_t first = weighted_random(set);
  size_t second = weighted_random(set);
  const Host& a = *set.hosts[first];
  const Host& b = *set.hosts[second];
  // active/weight compared without division: a.active × b.weight vs b.active × a.weight.
  int64_t a_load = a.active(worker_) * int64_t{b.weight()};
  int64_t b_load = b.active(worker_) * int64_t{a.weight()};
  return b_load < a_load ? second : first;
}

// nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a, not a a a a a b c.
size_t LoadBalancer::round_robin(const HostSet& set) {
  if (set.version != set_version_ || current_weights_.size() != set.hosts.size()) {
    set_version_ = set.version;
    current_weights_.assign(set.hosts.size(), 0);
  }
  int64_t total = 0;
  size_t best = candidates_.front();
  bool have_best = false;
  for (size_t i : candidates_) {
    int64_t weight = set.hosts[i]->weight();
    current_weights_[i] += weight;
    total += weight;
    if (!have_best || current_weights_[i] > current_weights_[best]) {
      best = i;
      have_best = true;
    }
  }
  current_weights_[best] -= total;
  return best;
}

}  // namespace pillion::upstream
