#include "proxy/worker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/ids.h"
#include "proxy/capture.h"
#include "proxy/session.h"

namespace pillion::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

asio::awaitable<void> run_session(std::unique_ptr<Session> session) {
  try {
    co_await session->run();
  } catch (const std::exception& error) {
    // Sessions report I/O failures as values; reaching here is a bug, not a client's doing.
    spdlog::error("bug: session ended by exception: {}", error.what());
  }
}

}  // namespace

Worker::Worker(int index, RuntimePtr runtime, observe::WorkerStats& stats,
               observe::AccessLogWriter* access_log, observe::tracing::SpanExporter* spans)
    : index_(index),
      runtime_(std::move(runtime)),
      // One thread runs this loop and owns its sockets: no reactor I/O locking needed; the
      // scheduler stays locked because other threads post drain and stop.
      context_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
      stats_(stats),
      access_log_(access_log, runtime_->config->access_log.format),
      spans_(spans),
      tracing_enabled_(spans != nullptr),
      pool_(stats),
      ticker_(context_),
      final_close_(context_),
      now_(Clock::now()) {}

Worker::~Worker() {
  join();
}

uint16_t Worker::bind(const ListenerRuntime& listener, uint16_t port, std::string& error) {
  const auto& address = listener.config->address;
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.host, ec);
  if (ec) {
    error =
        fmt::format("listener {}: {} is not an IP address", listener.config->name, address.host);
    return 0;
  }
  tcp::endpoint endpoint(ip, port);
  auto acceptor = std::make_unique<tcp::acceptor>(context_);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor->set_option(ReusePort(true), ec);
  }
  if (!ec && ip.is_v6()) {
    acceptor->set_option(asio::ip::v6_only(true), ec);
  }
  if (!ec) {
    acceptor->bind(endpoint, ec);
  }
  if (!ec) {
    acceptor->listen(1024, ec);
  }
  if (ec) {
    error = fmt::format("listener {}: cannot listen on {}: {}", listener.config->name,
                        address.to_string(), ec.message());
    return 0;
  }
  uint16_t bound = acceptor->local_endpoint(ec).port();
  auto listener_index = static_cast<size_t>(&listener - runtime_->listeners.data());
  listening_.push_back({listener_index, std::move(acceptor)});
  return bound;
}

void Worker::start() {
  for (auto& listening : listening_) {
    accept_loop(listening);
  }
  tick();
  thread_ = std::thread([this] {
    try {
      context_.run();
    } catch (const std::exception& error) {
      spdlog::critical("worker {}: event loop failed: {}", index_, error.what());
      std::abort();
    }
    access_log_.flush();
    spans_.flush();
  });
}

void Worker::accept_loop(Listening& listening) {
  asio::co_spawn(
      context_,
      [this, &listening]() -> asio::awaitable<void> {
        constexpr auto use = asio::as_tuple(asio::use_awaitable);
        asio::steady_timer backoff(context_);
        while (listening.acceptor->is_open()) {
          auto [ec, socket] = co_await listening.acceptor->async_accept(use);
          if (ec == asio::error::operation_aborted || !listening.acceptor->is_open()) {
            break;
          }
          if (ec) {
            // Out of file descriptors or memory: pause instead of spinning.
            spdlog::warn("worker {}: accept failed: {}", index_, ec.message());
            backoff.expires_after(std::chrono::milliseconds(100));
            co_await backoff.async_wait(use);
            continue;
          }
          const ListenerRuntime& listener = runtime_->listeners[listening.listener];
          if (listener.config->mode == config::ListenerMode::kHttp) {
            asio::co_spawn(
                context_,
                run_session(std::make_unique<Session>(*this, std::move(socket), listener)),
                asio::detached);
          } else {
            asio::co_spawn(context_, run_captured(*this, std::move(socket), listening.listener),
                           asio::detached);
          }
        }
      },
      asio::detached);
}

void Worker::tick() {
  now_ = Clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    // on_tick may end a session's I/O but never destroys it synchronously.
    auto& session = *it++;
    session.on_tick(now_);
  }
  if (++ticks_ % 20 == 0) {
    pool_.expire(now_);
    access_log_.flush();
    spans_.flush();
  } else if (ticks_ % 2 == 0) {
    access_log_.flush();
  }
  if (stopped_) {
    return;
  }
  ticker_.expires_after(kTick);
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      tick();
    }
  });
}

void Worker::update_runtime(RuntimePtr runtime) {
  asio::post(context_, [this, runtime = std::move(runtime)]() mutable {
    runtime_ = std::move(runtime);
    // Slots of clusters the new runtime dropped go; a request still on one makes it again.
    std::erase_if(cluster_slots_, [this](const auto& entry) {
      for (const auto& cluster : runtime_->clusters) {
        if (cluster.state.get() == entry.first) {
          return false;
        }
      }
      return true;
    });
  });
}

Worker::ClusterSlot& Worker::cluster_slot(upstream::ClusterState& cluster) {
  auto it = cluster_slots_.find(&cluster);
  if (it == cluster_slots_.end()) {
    uint64_t seed = http::thread_id_generator().next();
    it =
        cluster_slots_
            .emplace(&cluster, ClusterSlot{nullptr, upstream::LoadBalancer(
                                                        cluster.config().lb_policy, index(), seed)})
            .first;
  }
  auto& slot = it->second;
  if (!slot.hosts || slot.hosts->version != cluster.hosts_version()) {
    slot.hosts = cluster.hosts();
  }
  return slot;
}

void Worker::link(Connection& connection) {
  sessions_.push_back(connection);
}

void Worker::begin_drain() {
  asio::post(context_, [this] { draining_ = true; });
}

void Worker::stop_accepting() {
  asio::post(context_, [this] {
    draining_ = true;
    for (auto& listening : listening_) {
      boost::system::error_code ignored;
      listening.acceptor->close(ignored);
    }
    for (auto& session : sessions_) {
      session.on_drain();
    }
  });
}

void Worker::stop() {
  asio::post(context_, [this] {
    draining_ = true;
    stopped_ = true;
    for (auto& listening : listening_) {
      boost::system::error_code ignored;
      listening.acceptor->close(ignored);
    }
    for (auto& session : sessions_) {
      session.abort();
    }
    pool_.close_all();
    ticker_.cancel();
    close_remaining(Clock::now() + std::chrono::milliseconds(500));
  });
}

// Polls instead of one long timer: the loop must finish as soon as the last connection has.
void Worker::close_remaining(Clock::time_point deadline) {
  if (sessions_.empty()) {
    return;
  }
  if (Clock::now() >= deadline) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      (it++)->close_now();
    }
    return;
  }
  final_close_.expires_after(std::chrono::milliseconds(10));
  final_close_.async_wait([this, deadline](const boost::system::error_code& ec) {
    if (!ec) {
      close_remaining(deadline);
    }
  });
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace pillion::proxy
