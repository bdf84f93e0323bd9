#include "bench/load.h"

#include <strings.h>
#include <sys/prctl.h>
#include <boost/asio.hpp>

#include <memory>

#include "bench/response_framer.h"

namespace pillion::bench {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::optional<Target> parse_target(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    return std::nullopt;
  }
  auto slash = url.find('/', kScheme.size());
  std::string_view authority = url.substr(0, slash);
  auto address = core::parse_http_url(authority);
  if (!address) {
    return std::nullopt;
  }
  Target target{std::string(url), *address, "/"};
  if (slash != std::string_view::npos) {
    target.path = std::string(url.substr(slash));
  }
  return target;
}

double LoadResult::achieved_rate() const {
  auto seconds = std::chrono::duration<double>(duration).count();
  return seconds > 0 ? static_cast<double>(completed) / seconds : 0.0;
}

void LoadResult::merge(const LoadResult& other) {
  scheduled += other.scheduled;
  sent += other.sent;
  completed += other.completed;
  errors.connect += other.errors.connect;
  errors.read += other.errors.read;
  errors.timeout += other.errors.timeout;
  errors.status += other.errors.status;
  duration += other.duration;
  latency.merge(other.latency);
  send_delay.merge(other.send_delay);
}

std::string build_request(const Target& target, const LoadOptions& options) {
  std::string request = options.method + " " + target.path + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& header : options.headers) {
    if (header.size() >= 5 && strncasecmp(header.c_str(), "host:", 5) == 0) {
      has_host = true;
    }
  }
  if (!has_host) {
    // Port only when it is not the default, as browsers and curl do.
    std::string host = target.address.port == 80 ? target.address.host : target.address.to_string();
    if (target.address.port == 80 && host.find(':') != std::string::npos) {
      host = "[" + host + "]";
    }
    request += "Host: " + host + "\r\n";
  }
  for (const auto& header : options.headers) {
    request += header + "\r\n";
  }
  request += "User-Agent: pillion-bench\r\n\r\n";
  return request;
}

namespace {

// State shared by the connections of one run. Single-threaded: plain counters suffice.
struct Run {
  Run(const Target& target, const LoadOptions& options)
      : options(options),
        schedule(options.rate, options.connections),
        request(build_request(target, options)),
        head(options.method == "HEAD") {
    result.url = target.url;
  }

  const LoadOptions& options;
  Schedule schedule;
  std::string request;
  bool head;
  tcp::endpoint endpoint;
  Clock::time_point start;
  Clock::time_point hard_stop;  // nothing is sent after this; in-flight requests time out by it
  uint64_t first_measured = 0;
  uint64_t end_index = 0;
  LoadResult result;
};

// Per-connection state that the timeout handler may touch after the coroutine moved on, so it is
// shared, and every request bumps `generation` so a stale timer cannot close a later request.
struct Conn {
  explicit Conn(const asio::any_io_executor& executor)
      : socket(executor), watchdog(executor), pacer(executor) {}
  tcp::socket socket;
  asio::steady_timer watchdog;
  asio::steady_timer pacer;
  uint64_t generation = 0;
  bool timed_out = false;
  std::vector<char> buffer = std::vector<char>(16 * 1024);
  size_t begin = 0;
  size_t end = 0;
  ResponseFramer framer;
};

void arm_watchdog(const std::shared_ptr<Conn>& conn, Clock::time_point deadline) {
  uint64_t generation = ++conn->generation;
  conn->timed_out = false;
  conn->watchdog.expires_at(deadline);
  conn->watchdog.async_wait([conn, generation](boost::system::error_code ec) {
    if (!ec && conn->generation == generation) {
      conn->timed_out = true;
      boost::system::error_code ignored;
      conn->socket.close(ignored);
    }
  });
}

void disarm_watchdog(Conn& conn) {
  ++conn.generation;
  conn.watchdog.cancel();
}

enum class Outcome { kOk, kConnect, kRead, kTimeout };

asio::awaitable<Outcome> connect(Run& run, const std::shared_ptr<Conn>& conn) {
  conn->begin = conn->end = 0;
  auto [ec] =
      co_await conn->socket.async_connect(run.endpoint, asio::as_tuple(asio::use_awaitable));
  if (ec) {
    boost::system::error_code ignored;
    conn->socket.close(ignored);
    // A connect that timed out is still a connect error: the request never reached the target.
    co_return Outcome::kConnect;
  }
  conn->socket.set_option(tcp::no_delay(true), ec);
  co_return Outcome::kOk;
}

// Writes the request and reads one complete response.
asio::awaitable<Outcome> exchange(Run& run, const std::shared_ptr<Conn>& conn, bool measured) {
  auto [wec, written] = co_await asio::async_write(conn->socket, asio::buffer(run.request),
                                                   asio::as_tuple(asio::use_awaitable));
  if (wec) {
    co_return conn->timed_out ? Outcome::kTimeout : Outcome::kRead;
  }
  if (measured) {
    ++run.result.sent;
  }
  auto& framer = conn->framer;
  framer.start(run.head);
  for (;;) {
    if (conn->begin < conn->end) {
      auto fed =
          framer.feed(std::string_view(conn->buffer.data() + conn->begin, conn->end - conn->begin));
      conn->begin += fed.consumed;
      if (fed.state == ResponseFramer::State::kDone) {
        co_return Outcome::kOk;
      }
      if (fed.state == ResponseFramer::State::kError) {
        co_return Outcome::kRead;
      }
    }
    // Keep unparsed bytes (a partial header block) at the front; grow only for huge headers.
    if (conn->begin > 0) {
      std::copy(conn->buffer.begin() + conn->begin, conn->buffer.begin() + conn->end,
                conn->buffer.begin());
      conn->end -= conn->begin;
      conn->begin = 0;
    }
    if (conn->end == conn->buffer.size()) {
      conn->buffer.resize(conn->buffer.size() * 2);
    }
    auto [rec, n] = co_await conn->socket.async_read_some(
        asio::buffer(conn->buffer.data() + conn->end, conn->buffer.size() - conn->end),
        asio::as_tuple(asio::use_awaitable));
    if (rec) {
      if (conn->timed_out) {
        co_return Outcome::kTimeout;
      }
      if (rec == asio::error::eof && framer.feed_eof() == ResponseFramer::State::kDone) {
        co_return Outcome::kOk;
      }
      co_return Outcome::kRead;
    }
    conn->end += n;
  }
}

asio::awaitable<void> connection_loop(Run& run, uint32_t index) {
  auto conn = std::make_shared<Conn>(co_await asio::this_coro::executor);
  auto close = [&conn] {
    boost::system::error_code ignored;
    conn->socket.close(ignored);
  };
  // Connect ahead of the first due time so the first requests do not pay the handshake.
  arm_watchdog(conn, std::min(Clock::now() + run.options.timeout, run.hard_stop));
  co_await connect(run, conn);
  disarm_watchdog(*conn);

  auto& result = run.result;
  for (uint64_t k = 0;; ++k) {
    uint64_t i = run.schedule.index_of(index, k);
    if (i >= run.end_index) {
      break;
    }
    auto due = run.start + run.schedule.offset(i);
    bool measured = i >= run.first_measured;
    if (Clock::now() >= run.hard_stop) {
      // A stuck target: whatever is still queued would never get an answer in time.
      if (measured) {
        ++result.errors.timeout;
      }
      continue;
    }
    if (Clock::now() < due) {
      conn->pacer.expires_at(due);
      co_await conn->pacer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    auto started = Clock::now();
    if (measured) {
      result.send_delay.record(
          static_cast<uint64_t>(std::max(Nanos(started - due).count(), Nanos::rep{0})));
    }
    arm_watchdog(conn, std::min(started + run.options.timeout, run.hard_stop));
    Outcome outcome = Outcome::kOk;
    if (!conn->socket.is_open()) {
      outcome = co_await connect(run, conn);
    }
    if (outcome == Outcome::kOk) {
      outcome = co_await exchange(run, conn, measured);
    }
    disarm_watchdog(*conn);
    auto done = Clock::now();
    if (outcome != Outcome::kOk) {
      close();
      if (measured) {
        if (outcome == Outcome::kConnect) {
          ++result.errors.connect;
        } else if (outcome == Outcome::kTimeout) {
          ++result.errors.timeout;
        } else {
          ++result.errors.read;
        }
      }
      continue;
    }
    if (measured) {
      ++result.completed;
      result.latency.record(static_cast<uint64_t>(Nanos(done - due).count()));
      int status = conn->framer.status();
      if (status < 200 || status >= 300) {
        ++result.errors.status;
      }
    }
    if (!conn->framer.keep_alive()) {
      close();
    }
  }
  close();
  conn->watchdog.cancel();
  conn->pacer.cancel();
}

std::optional<tcp::endpoint> resolve(asio::io_context& io, const core::HostPort& address) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.host, ec);
  if (!ec) {
    return tcp::endpoint(ip, address.port);
  }
  tcp::resolver resolver(io);
  auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
  if (ec || results.empty()) {
    return std::nullopt;
  }
  return results.begin()->endpoint();
}

}  // namespace

LoadResult run_load(const Target& target, const LoadOptions& options) {
  asio::io_context io(1);
  Run run(target, options);
  run.first_measured = run.schedule.index_at(options.warmup);
  run.end_index = run.schedule.index_at(options.warmup + options.duration);
  run.result.scheduled = run.end_index - run.first_measured;
  run.result.duration = options.duration;
  auto endpoint = resolve(io, target.address);
  if (!endpoint) {
    // An unresolvable name fails every request the same way a refused connect does.
    run.result.errors.connect = run.result.scheduled;
    return std::move(run.result);
  }
  run.endpoint = *endpoint;
  // Linux lets a timer fire up to 50 us late by default; that lateness would count as latency.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  // A short lead time lets every connection finish its handshake before the first due time.
  run.start = Clock::now() + std::chrono::milliseconds(20);
  run.hard_stop = run.start + options.warmup + options.duration + options.timeout;
  for (uint32_t c = 0; c < run.schedule.connections(); ++c) {
    asio::co_spawn(io, connection_loop(run, c), asio::detached);
  }
  io.run();
  return std::move(run.result);
}

std::vector<LoadResult> run_rounds(const std::vector<Target>& targets, const LoadOptions& options,
                                   int rounds) {
  std::vector<LoadResult> merged(targets.size());
  for (size_t t = 0; t < targets.size(); ++t) {
    merged[t].url = targets[t].url;
  }
  for (int round = 0; round < std::max(rounds, 1); ++round) {
    for (size_t t = 0; t < targets.size(); ++t) {
      merged[t].merge(run_load(targets[t], options));
    }
  }
  return merged;
}

}  // namespace pillion::bench
