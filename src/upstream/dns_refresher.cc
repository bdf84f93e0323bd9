#include "upstream/dns_refresher.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <set>

namespace pillion::upstream {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
// Only the families this machine has a (non-loopback) address of: an IPv4-only pod resolving
// "localhost" gets 127.0.0.1 alone, not also a ::1 the app may not listen on.
const auto kResolveFlags = tcp::resolver::address_configured | tcp::resolver::numeric_service;

using Addresses = std::vector<tcp::endpoint>;

std::optional<tcp::endpoint> literal_endpoint(const config::ClusterEndpoint& endpoint) {
  boost::system::error_code error;
  auto ip = asio::ip::make_address(endpoint.address.host, error);
  if (error) {
    return std::nullopt;
  }
  return tcp::endpoint(ip, endpoint.address.port);
}

std::string cannot_resolve(const config::Cluster& cluster, const config::ClusterEndpoint& endpoint,
                           const std::string& reason) {
  return fmt::format("cluster {}: cannot resolve {}: {}", cluster.name,
                     endpoint.address.to_string(), reason);
}

// The addresses of one lookup's results, without duplicates, in the resolver's order. Empty
// with `reason` set when the lookup failed or found nothing.
Addresses collect(const boost::system::error_code& error,
                  const tcp::resolver::results_type& results, std::string& reason) {
  Addresses addresses;
  if (error) {
    reason = error.message();
    return addresses;
  }
  for (const auto& entry : results) {
    auto address = entry.endpoint();
    if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
      addresses.push_back(address);
    }
  }
  if (addresses.empty()) {
    reason = "no address";
  }
  return addresses;
}

// Hosts for `addresses[i]` of endpoint i. A Host of `previous` with the same address,
// authority and weight is reused (once: a duplicate endpoint gets a Host of its own).
std::vector<HostPtr> build_hosts(const config::Cluster& cluster,
                                 const std::vector<Addresses>& addresses, size_t workers,
                                 const std::vector<HostPtr>& previous) {
  std::vector<HostPtr> hosts;
  std::set<const Host*> reused;
  for (size_t i = 0; i < cluster.endpoints.size(); ++i) {
    const config::ClusterEndpoint& endpoint = cluster.endpoints[i];
    std::string authority = endpoint.address.to_string();
    uint32_t weight = endpoint.weight == 0 ? 1 : endpoint.weight;
    for (const tcp::endpoint& address : addresses[i]) {
      auto same = std::find_if(previous.begin(), previous.end(), [&](const HostPtr& host) {
        return host->address() == address && host->authority() == authority &&
               host->weight() == weight && !reused.contains(host.get());
      });
      if (same != previous.end()) {
        reused.insert(same->get());
        hosts.push_back(*same);
      } else {
        hosts.push_back(std::make_shared<Host>(address, authority, weight, workers));
      }
    }
  }
  return hosts;
}

bool same_hosts(const std::vector<HostPtr>& a, const std::vector<HostPtr>& b) {
  std::set<const Host*> left;
  std::set<const Host*> right;
  for (const auto& host : a) {
    left.insert(host.get());
  }
  for (const auto& host : b) {
    right.insert(host.get());
  }
  return left == right;
}

std::string host_labels(const std::vector<HostPtr>& hosts) {
  std::vector<std::string> labels;
  labels.reserve(hosts.size());
  for (const auto& host : hosts) {
    labels.push_back(host->label());
  }
  return fmt::format("[{}]", fmt::join(labels, ", "));
}

void log_unexpected(std::exception_ptr failure) {
  if (!failure) {
    return;
  }
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& error) {
    spdlog::error("bug: DNS refresh ended by exception: {}", error.what());
  } catch (...) {
    spdlog::error("bug: DNS refresh ended by an unknown exception");
  }
}

}  // namespace

bool has_dns_names(const config::Cluster& cluster) {
  for (const auto& endpoint : cluster.endpoints) {
    if (!literal_endpoint(endpoint)) {
      return true;
    }
  }
  return false;
}

std::optional<std::vector<HostPtr>> resolve_hosts(const config::Cluster& cluster, size_t workers,
                                                  const std::vector<HostPtr>& previous,
                                                  std::string& error) {
  std::vector<Addresses> addresses(cluster.endpoints.size());
  std::optional<asio::io_context> context;
  std::optional<tcp::resolver> resolver;
  for (size_t i = 0; i < cluster.endpoints.size(); ++i) {
    const config::ClusterEndpoint& endpoint = cluster.endpoints[i];
    if (auto literal = literal_endpoint(endpoint)) {
      addresses[i].push_back(*literal);
      continue;
    }
    if (!resolver) {
      context.emplace();
      resolver.emplace(*context);
    }
    boost::system::error_code lookup_error;
    auto results = resolver->resolve(endpoint.address.host, std::to_string(endpoint.address.port),
                                     kResolveFlags, lookup_error);
    std::string reason;
    addresses[i] = collect(lookup_error, results, reason);
    if (addresses[i].empty()) {
      error = cannot_resolve(cluster, endpoint, reason);
      return std::nullopt;
    }
  }
  return build_hosts(cluster, addresses, workers, previous);
}

struct DnsRefresher::Parts {
  explicit Parts(asio::io_context& context) : timer(context), resolver(context) {}
  asio::steady_timer timer;
  tcp::resolver resolver;
  std::vector<Addresses> addresses;  // of the refresh in progress, per endpoint
  std::string error;                 // of the refresh in progress; empty: all resolved
  std::string last_error;            // of the previous refresh: a repeated failure logs once
};

// The coroutine; decisions are plain functions (GCC 12 misreports some coroutine locals as
// mismatched new/delete).
struct DnsRefreshLoop {
  static asio::awaitable<void> run(std::shared_ptr<DnsRefresher> self) {
    DnsRefresher::Parts& parts = *self->parts_;
    while (!self->stopped_) {
      parts.timer.expires_after(self->state_->config().dns_refresh);
      co_await parts.timer.async_wait(kUse);
      if (self->stopped_) {
        break;
      }
      co_await refresh(*self);
    }
  }

  static asio::awaitable<void> refresh(DnsRefresher& self) {
    DnsRefresher::Parts& parts = *self.parts_;
    const config::Cluster& cluster = self.state_->config();
    begin(parts, cluster);
    for (size_t i = 0; i < cluster.endpoints.size() && parts.error.empty(); ++i) {
      if (!parts.addresses[i].empty()) {
        continue;  // an IP literal
      }
      const core::HostPort& name = cluster.endpoints[i].address;
      auto [error, results] = co_await parts.resolver.async_resolve(
          name.host, std::to_string(name.port), kResolveFlags, kUse);
      if (self.stopped_) {
        co_return;
      }
      store(parts, cluster, i, error, results);
    }
    apply(self);
  }

  static void begin(DnsRefresher::Parts& parts, const config::Cluster& cluster) {
    parts.error.clear();
    parts.addresses.assign(cluster.endpoints.size(), {});
    for (size_t i = 0; i < cluster.endpoints.size(); ++i) {
      if (auto literal = literal_endpoint(cluster.endpoints[i])) {
        parts.addresses[i].push_back(*literal);
      }
    }
  }

  static void store(DnsRefresher::Parts& parts, const config::Cluster& cluster, size_t i,
                    const boost::system::error_code& error,
                    const tcp::resolver::results_type& results) {
    std::string reason;
    parts.addresses[i] = collect(error, results, reason);
    if (parts.addresses[i].empty()) {
      parts.error = cannot_resolve(cluster, cluster.endpoints[i], reason);
    }
  }

  static void apply(DnsRefresher& self) {
    DnsRefresher::Parts& parts = *self.parts_;
    ClusterState& state = *self.state_;
    HostSetPtr current = state.hosts();
    if (!parts.error.empty()) {
      state.dns_failures.fetch_add(1, std::memory_order_relaxed);
      if (parts.error != parts.last_error) {
        spdlog::warn("{}; keeping endpoints {}", parts.error, host_labels(current->hosts));
      }
      parts.last_error = parts.error;
      return;
    }
    state.dns_refreshes.fetch_add(1, std::memory_order_relaxed);
    if (!parts.last_error.empty()) {
      spdlog::info("cluster {}: DNS resolves again", state.config().name);
      parts.last_error.clear();
    }
    auto hosts = build_hosts(state.config(), parts.addresses, state.workers(), current->hosts);
    if (same_hosts(hosts, current->hosts)) {
      return;
    }
    spdlog::info("cluster {}: endpoints now {}", state.config().name, host_labels(hosts));
    state.publish(std::move(hosts));
  }
};

DnsRefresher::DnsRefresher(asio::io_context& context, ClusterStatePtr state)
    : context_(context), state_(std::move(state)), parts_(std::make_unique<Parts>(context)) {}

DnsRefresher::~DnsRefresher() = default;

void DnsRefresher::start() {
  asio::post(context_, [self = shared_from_this()] {
    if (self->started_ || self->stopped_) {
      return;
    }
    self->started_ = true;
    asio::co_spawn(self->context_, DnsRefreshLoop::run(self), log_unexpected);
  });
}

void DnsRefresher::stop() {
  asio::post(context_, [self = shared_from_this()] { self->stop_now(); });
}

void DnsRefresher::stop_now() {
  stopped_ = true;
  parts_->timer.cancel();
  parts_->resolver.cancel();
}

}  // namespace pillion::upstream
