#include "proxy/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace pillion::proxy {

using Resource = upstream::ClusterLimits::Resource;

UpstreamPool::UpstreamPool(observe::WorkerStats& stats) : stats_(stats) {}

UpstreamPool::~UpstreamPool() {
  close_all();
}

bool connection_looks_open(boost::asio::ip::tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::optional<Stream> UpstreamPool::acquire(uint64_t host_id, const upstream::ClusterState* cluster,
                                            Clock::time_point now, bool check_always) {
  auto found = slots_.find(host_id);
  if (found == slots_.end()) {
    return std::nullopt;
  }
  auto& slot = found->second;
  while (!slot.empty()) {
    Idle idle = std::move(slot.back());
    slot.pop_back();
    auto idle_for = now - idle.since;
    if (idle.cluster.get() != cluster || expired(idle, now) ||
        ((check_always || idle_for > std::chrono::seconds(1)) &&
         !connection_looks_open(idle.connection.socket()))) {
      discard(idle.connection, idle.cluster.get());
      continue;
    }
    return std::move(idle.connection);
  }
  return std::nullopt;
}

void UpstreamPool::release(uint64_t host_id, Stream connection, Clock::time_point now,
                           const upstream::ClusterStatePtr& cluster) {
  auto& slot = slots_[host_id];
  if (slot.size() >= static_cast<size_t>(cluster->config().max_idle_connections)) {
    discard(connection, cluster.get());
    return;
  }
  slot.push_back(Idle{std::move(connection), now, cluster});
}

void UpstreamPool::discard(Stream& connection, upstream::ClusterState* cluster) {
  auto& socket = connection.socket();
  if (socket.is_open()) {
    boost::system::error_code ignored;
    socket.close(ignored);
    stats_.upstream_cx_active.sub();
    if (cluster != nullptr) {
      cluster->limits().release(Resource::kConnections);
    }
  }
}

bool UpstreamPool::close_one_idle(upstream::ClusterState& cluster) {
  Idle* oldest = nullptr;
  std::vector<Idle>* oldest_slot = nullptr;
  for (auto& [host, slot] : slots_) {
    for (auto& idle : slot) {
      if (idle.cluster.get() == &cluster && (oldest == nullptr || idle.since < oldest->since)) {
        oldest = &idle;
        oldest_slot = &slot;
      }
    }
  }
  if (oldest == nullptr) {
    return false;
  }
  discard(oldest->connection, &cluster);
  oldest_slot->erase(oldest_slot->begin() + (oldest - oldest_slot->data()));
  return true;
}

void UpstreamPool::expire(Clock::time_point now) {
  for (auto it = slots_.begin(); it != slots_.end();) {
    auto& slot = it->second;
    // Oldest first: LIFO order means expired connections sit at the front.
    size_t expired_count = 0;
    while (expired_count < slot.size() && expired(slot[expired_count], now)) {
      discard(slot[expired_count].connection, slot[expired_count].cluster.get());
      ++expired_count;
    }
    slot.erase(slot.begin(), slot.begin() + static_cast<std::ptrdiff_t>(expired_count));
    // Hosts come and go with DNS refreshes and reloads: forget empty slots.
    it = slot.empty() ? slots_.erase(it) : std::next(it);
  }
}

void UpstreamPool::close_all() {
  for (auto& [host, slot] : slots_) {
    for (auto& idle : slot) {
      discard(idle.connection, idle.cluster.get());
    }
  }
  slots_.clear();
}

}  // namespace pillion::proxy
