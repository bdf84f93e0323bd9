#pragma once
// Passes a captured connection that is not HTTP through as bytes, both ways, to where it was
// going. Half-closes are propagated (a client's FIN reaches the server and the reply still
// flows back), bytes are counted, and one connection-level access-log line is written.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "observe/flags.h"
#include "proxy/worker.h"
#include "upstream/host.h"

namespace pillion::proxy {

struct TcpDestination {
  boost::asio::ip::tcp::endpoint address;
  std::optional<boost::asio::ip::address> source;  // bind before connecting (127.0.0.6 inbound)
  std::string protocol;                            // what detection saw: "tcp", "tls", "h2c"
};

class TcpRelay final : public Connection {
 public:
  // `accepted`: when the connection was accepted, so its duration includes protocol detection.
  TcpRelay(Worker& worker, boost::asio::ip::tcp::socket downstream, const ListenerRuntime& listener,
           TcpDestination destination, std::string first_bytes, Clock::time_point accepted);
  ~TcpRelay() override;

  boost::asio::awaitable<void> run();

  void on_tick(Clock::time_point now) override;
  void on_drain() override {}  // opaque bytes have no place to say "go away"; drain time ends it
  void abort() override;
  void close_now() override { close_both(); }

 private:
  using tcp = boost::asio::ip::tcp;

  boost::asio::awaitable<bool> connect();
  boost::asio::awaitable<void> copy(tcp::socket& from, tcp::socket& to, uint64_t& counter);
  void close_both();
  void log_connection();

  Worker& worker_;
  tcp::socket downstream_;
  tcp::socket upstream_;
  const ListenerRuntime& listener_;
  TcpDestination destination_;
  std::string first_bytes_;  // read during detection; the upstream gets them first
  std::string client_address_;
  std::string upstream_label_;
  std::chrono::system_clock::time_point start_wall_;
  Clock::time_point start_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool connecting_ = false;
  uint64_t bytes_from_client_ = 0;
  uint64_t bytes_to_client_ = 0;
  observe::Flags flags_ = 0;
};

// "1.2.3.4:80" or "[::1]:80".
using upstream::endpoint_label;

}  // namespace pillion::proxy
