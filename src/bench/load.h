#pragma once
// The open-loop load generator: one single-threaded event loop, C keep-alive HTTP/1.1
// connections, requests due at a fixed rate (see schedule.h), latency from each due time.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.h"
#include "bench/schedule.h"
#include "core/address.h"

namespace pillion::bench {

struct Target {
  std::string url;  // as the user wrote it
  core::HostPort address;
  std::string path = "/";
};

// Accepts http://host[:port][/path[?query]]; nothing else.
std::optional<Target> parse_target(std::string_view url);

struct LoadOptions {
  double rate = 100;  // requests per second, all connections together
  uint32_t connections = 8;
  Nanos duration = std::chrono::seconds(10);  // measured window, per target and round
  Nanos warmup = Nanos(0);                    // sent before the window, not recorded
  Nanos timeout = std::chrono::seconds(2);    // per request, from when it is written
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value", sent as given
};

struct Errors {
  uint64_t connect = 0;  // could not connect (refused, unreachable, connect timed out)
  uint64_t read = 0;     // reset, closed mid-response, malformed response, write failed
  uint64_t timeout = 0;  // no complete response within the timeout
  uint64_t status = 0;   // a complete response whose status is not 2xx
  uint64_t total() const { return connect + read + timeout + status; }
};

struct LoadResult {
  std::string url;
  uint64_t scheduled = 0;  // due inside the measured window
  uint64_t sent = 0;       // of those, written to a connection
  uint64_t completed = 0;  // of those, answered with a complete response (any status)
  Errors errors;
  Nanos duration{0};  // measured window (summed over rounds)
  Histogram latency;  // nanoseconds from due time to the last byte of the response
  // Nanoseconds from due time until the request could be started (connection free, timer fired):
  // the generator's own lateness plus queueing on a busy connection; part of `latency`.
  Histogram send_delay;

  double achieved_rate() const;
  void merge(const LoadResult& other);
};

// The request bytes sent for every request to `target`.
std::string build_request(const Target& target, const LoadOptions& options);

// Runs the load against one target and returns when every request has completed or failed.
LoadResult run_load(const Target& target, const LoadOptions& options);

// Runs `rounds` rounds; each round runs the full load against every target in turn, so slow
// drift of the machine affects all targets alike. Results are merged per target.
std::vector<LoadResult> run_rounds(const std::vector<Target>& targets, const LoadOptions& options,
                                   int rounds);

}  // namespace pillion::bench
