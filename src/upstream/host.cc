#include "upstream/host.h"

#include <fmt/format.h>

namespace pillion::upstream {

namespace {
std::atomic<uint64_t> next_host_id{1};  // 0 is kNotPooled
}

std::string endpoint_label(const boost::asio::ip::tcp::endpoint& address) {
  auto ip = address.address();
  return ip.is_v6() ? fmt::format("[{}]:{}", ip.to_string(), address.port())
                    : fmt::format("{}:{}", ip.to_string(), address.port());
}

Host::Host(boost::asio::ip::tcp::endpoint address, std::string authority, uint32_t weight,
           size_t workers, bool pooled)
    : address_(address),
      label_(endpoint_label(address)),
      authority_(std::move(authority)),
      weight_(weight == 0 ? 1 : weight),
      id_(pooled ? next_host_id.fetch_add(1, std::memory_order_relaxed) : kNotPooled),
      active_(std::make_unique<PerWorker[]>(workers == 0 ? 1 : workers)),
      workers_(workers == 0 ? 1 : workers) {}

int64_t Host::total_active() const {
  int64_t total = 0;
  for (size_t i = 0; i < workers_; ++i) {
    total += active(i);
  }
  return total;
}

}  // namespace pillion::upstream
