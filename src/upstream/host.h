#pragma once
// An upstream endpoint as every worker sees it: its address and weight, and its health as the
// active health checker and the outlier detector judge it. Shared by all workers: the health
// fields are atomics written rarely (a check result, an ejection) and read with relaxed loads
// on the request path. Active requests are counted per worker (single writer each, no shared
// read-modify-write); /clusters sums them.
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pillion::upstream {

using Clock = std::chrono::steady_clock;

class Host {
 public:
  // Hosts that are never pooled (a captured connection's own destination) use this id.
  static constexpr uint64_t kNotPooled = 0;

  // `workers`: how many per-worker active-request slots to keep.
  Host(boost::asio::ip::tcp::endpoint address, std::string authority, uint32_t weight,
       size_t workers, bool pooled = true);
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const boost::asio::ip::tcp::endpoint& address() const { return address_; }
  const std::string& label() const { return label_; }          // "10.0.0.1:80", "[::1]:80"
  const std::string& authority() const { return authority_; }  // as configured, for Host
  uint32_t weight() const { return weight_; }
  uint64_t id() const { return id_; }  // unique in the process: the key of pooled connections
  // Bind here before connecting (transparent inbound: the app sees this source).
  std::optional<boost::asio::ip::address> source;

  // Health. Available = not failing active checks and not ejected.
  bool available(Clock::time_point now) const {
    return !failed_active_check.load(std::memory_order_relaxed) && !ejected(now);
  }
  bool ejected(Clock::time_point now) const {
    return ejected_until.load(std::memory_order_relaxed) > now.time_since_epoch().count();
  }
  std::atomic<bool> failed_active_check{false};  // written by the health checker
  std::atomic<int64_t> ejected_until{0};         // Clock ticks; written by the outlier detector
  std::atomic<uint32_t> consecutive_failures{0};
  std::atomic<uint32_t> times_ejected{0};

  // Requests in flight on this host from worker `worker` (only that worker writes its slot).
  int64_t active(size_t worker) const {
    return active_[worker].value.load(std::memory_order_relaxed);
  }
  void add_active(size_t worker, int64_t delta) {
    auto& slot = active_[worker].value;
    slot.store(slot.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  int64_t total_active() const;  // any thread; for /clusters

 private:
  struct alignas(64) PerWorker {
    std::atomic<int64_t> value{0};
  };
  boost::asio::ip::tcp::endpoint address_;
  std::string label_;
  std::string authority_;
  uint32_t weight_;
  uint64_t id_;
  std::unique_ptr<PerWorker[]> active_;
  size_t workers_;
};

using HostPtr = std::shared_ptr<Host>;

// The endpoints of a cluster at one moment. Immutable once published; DNS refreshes publish
// a new set that keeps the Host objects whose address did not change (their health and pooled
// connections survive).
struct HostSet {
  std::vector<HostPtr> hosts;
  uint64_t version = 0;
};

using HostSetPtr = std::shared_ptr<const HostSet>;

// "10.0.0.1:80" or "[::1]:80".
std::string endpoint_label(const boost::asio::ip::tcp::endpoint& address);

}  // namespace pillion::upstream
