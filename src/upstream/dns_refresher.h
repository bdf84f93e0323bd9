#pragma once
// A cluster's endpoints as addresses: resolved once, synchronously, when a config is loaded
// (resolve_hosts), then again every `dns_refresh` in the background (DnsRefresher) when some
// endpoint is a DNS name. A name may stand for several addresses: each becomes a Host. Hosts
// whose address and authority did not change are kept (the same object), so their health and
// pooled connections survive a refresh or a reload.
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/schema.h"
#include "upstream/cluster_state.h"
#include "upstream/host.h"

namespace pillion::upstream {

// Every endpoint of `cluster`, resolved now (blocking: for startup and config loads only). An
// IP literal needs no lookup. Each Host gets its endpoint's weight and, as authority, the
// endpoint as configured ("payments:8080"). A Host of `previous` with the same address and
// authority is reused. Nullopt with `error` = "cluster <name>: cannot resolve <host:port>:
// <reason>" when a name cannot be resolved (or resolves to no address).
std::optional<std::vector<HostPtr>> resolve_hosts(const config::Cluster& cluster, size_t workers,
                                                  const std::vector<HostPtr>& previous,
                                                  std::string& error);

// True when some endpoint of `cluster` is a DNS name rather than an IP literal.
bool has_dns_names(const config::Cluster& cluster);

class DnsRefresher : public std::enable_shared_from_this<DnsRefresher> {
 public:
  // The object must be owned by a shared_ptr; `context` must be run by a single thread.
  DnsRefresher(boost::asio::io_context& context, ClusterStatePtr state);
  ~DnsRefresher();
  DnsRefresher(const DnsRefresher&) = delete;
  DnsRefresher& operator=(const DnsRefresher&) = delete;

  // Any thread (both post into the context). Every `dns_refresh` after start() the names are
  // resolved again; a changed address set is published to the cluster state. A failed lookup
  // keeps the current set. After stop() nothing is published and no handler outlives the
  // object (a lookup in flight finishes in the resolver's thread and is then ignored).
  void start();
  void stop();

  const ClusterStatePtr& state() const { return state_; }

 private:
  friend struct DnsRefreshLoop;  // the coroutine, in the .cc
  struct Parts;                  // timer and resolver

  void stop_now();

  boost::asio::io_context& context_;
  ClusterStatePtr state_;
  std::unique_ptr<Parts> parts_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace pillion::upstream
