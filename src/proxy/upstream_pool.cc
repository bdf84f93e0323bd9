#include "proxy/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace pillion::proxy {

UpstreamPool::UpstreamPool(std::vector<Clock::duration> idle_timeouts, observe::WorkerStats& stats)
    : slots_(idle_timeouts.size()), idle_timeouts_(std::move(idle_timeouts)), stats_(stats) {}

UpstreamPool::~UpstreamPool() {
  close_all();
}

bool connection_looks_open(boost::asio::ip::tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::optional<boost::asio::ip::tcp::socket> UpstreamPool::acquire(size_t endpoint,
                                                                  Clock::time_point now,
                                                                  bool check_always) {
  auto& slot = slots_[endpoint];
  auto idle_timeout = idle_timeouts_[endpoint];
  while (!slot.empty()) {
    Idle idle = std::move(slot.back());
    slot.pop_back();
    auto idle_for = now - idle.since;
    if (idle_for >= idle_timeout || ((check_always || idle_for > std::chrono::seconds(1)) &&
                                     !connection_looks_open(idle.socket))) {
      discard(idle.socket);
      continue;
    }
    return std::move(idle.socket);
  }
  return std::nullopt;
}

void UpstreamPool::release(size_t endpoint, boost::asio::ip::tcp::socket socket,
                           Clock::time_point now, size_t max_idle) {
  auto& slot = slots_[endpoint];
  if (slot.size() >= max_idle) {
    discard(socket);
    return;
  }
  slot.push_back(Idle{std::move(socket), now});
}

void UpstreamPool::discard(boost::asio::ip::tcp::socket& socket) {
  if (socket.is_open()) {
    boost::system::error_code ignored;
    socket.close(ignored);
    stats_.upstream_cx_active.sub();
  }
}

void UpstreamPool::expire(Clock::time_point now) {
  for (size_t endpoint = 0; endpoint < slots_.size(); ++endpoint) {
    auto& slot = slots_[endpoint];
    auto idle_timeout = idle_timeouts_[endpoint];
    // Oldest first: LIFO order means expired connections sit at the front.
    size_t expired = 0;
    while (expired < slot.size() && now - slot[expired].since >= idle_timeout) {
      discard(slot[expired].socket);
      ++expired;
    }
    slot.erase(slot.begin(), slot.begin() + static_cast<std::ptrdiff_t>(expired));
  }
}

void UpstreamPool::close_all() {
  for (auto& slot : slots_) {
    for (auto& idle : slot) {
      discard(idle.socket);
    }
    slot.clear();
  }
}

}  // namespace pillion::proxy
