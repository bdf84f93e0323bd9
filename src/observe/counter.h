#pragma once
// A counter written by one thread only: a relaxed load and store instead of a read-modify-write,
// so the data path never pays for a locked instruction. Readers on other threads sum shards.
#include <atomic>
#include <cstdint>

namespace pillion::observe {

class Counter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace pillion::observe
