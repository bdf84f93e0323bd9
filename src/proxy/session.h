#pragma once
// One downstream HTTP/1.1 connection: reads requests (pipelined ones in order), routes each,
// forwards it upstream over a pooled connection and streams the response back. Bodies are
// streamed through fixed per-connection buffers with back-pressure: a read is only issued once
// the previous bytes were written to the other side.
#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/buffer.h"
#include "http/ids.h"
#include "http/parser.h"
#include "http/propagation.h"
#include "observe/flags.h"
#include "proxy/stream.h"
#include "proxy/worker.h"
#include "tls/identity.h"
#include "upstream/host.h"

namespace pillion::proxy {

class Session final : public Connection {
 public:
  Session(Worker& worker, boost::asio::ip::tcp::socket socket, const ListenerRuntime& listener);
  ~Session();

  // A captured connection: the bytes read while detecting its protocol, and where requests
  // that go to the original destination or the local app are sent. Call before run().
  // `terminate_tls`: the first bytes begin a ClientHello this proxy answers (mutual TLS).
  void captured(upstream::HostPtr destination, std::string_view first_bytes,
                bool terminate_tls = false);

  boost::asio::awaitable<void> run();

  void on_tick(Clock::time_point now) override;
  void on_drain() override;
  void abort() override;
  void close_now() override;

 private:
  using tcp = boost::asio::ip::tcp;

  // What the current deadline guards; it decides what a timeout means.
  enum class Phase : uint8_t {
    kIdle,           // waiting for the first byte of a request
    kRequestHead,    // a request head is arriving
    kConnect,        // connecting upstream
    kAwaitResponse,  // request sent, waiting for the response head (route timeout)
    kStreaming,      // bodies moving (stream idle timeout)
  };

  // How one attempt at the upstream ended.
  enum class Outcome : uint8_t {
    kDone,        // response relayed
    kRetryFresh,  // a pooled connection was stale before any response byte: retry
    kRetry,       // the try failed, nothing went downstream, and a retry was granted
    kFailed,      // a local reply was sent, or nothing more can be sent
  };

  boost::asio::awaitable<bool> read_request_head();
  boost::asio::awaitable<bool> handle_request();
  boost::asio::awaitable<bool> enforce_route_policy(const http::Head& head);
  boost::asio::awaitable<bool> forward(const ClusterRuntime& cluster);
  boost::asio::awaitable<Outcome> forward_with_retries(const ClusterRuntime& cluster);
  boost::asio::awaitable<Outcome> forward_once(upstream::Host& host, bool allow_pooled);
  boost::asio::awaitable<std::optional<Outcome>> connect(upstream::Host& host, Stream& upstream);
  boost::asio::awaitable<bool> buffer_request_body(uint64_t limit);
  boost::asio::awaitable<bool> wait_before_retry();
  boost::asio::awaitable<Outcome> fail_try(int status, std::string_view detail, observe::Flag flag,
                                           uint8_t retry_on);
  bool claim_retry(uint8_t retry_on, std::optional<core::Duration> retry_after = {});
  bool retry_for_status(const http::Head& response);
  boost::asio::awaitable<Outcome> response_timeout();
  boost::asio::awaitable<void> send_overflow(std::string_view limit);
  void end_try(upstream::Host& host);
  void adopt_newest_runtime();
  boost::asio::awaitable<bool> accept_tls();
  boost::asio::awaitable<bool> start_tls_if_asked();
  boost::asio::awaitable<std::optional<Outcome>> originate_tls(upstream::Host& host,
                                                               Stream& upstream);
  bool authorized() const;
  boost::asio::awaitable<void> pump_request_body(Stream& upstream);
  boost::asio::awaitable<Outcome> relay_response(Stream& upstream, bool reused);
  boost::asio::awaitable<Outcome> relay_and_stop_pump(Stream& upstream, bool reused);
  boost::asio::awaitable<bool> relay_response_body(Stream& upstream, bool chunk_encode,
                                                   bool dechunk);
  boost::asio::awaitable<void> linger();
  boost::asio::awaitable<void> close_tls();
  boost::asio::awaitable<bool> send_body(std::string_view a = {}, std::string_view b = {},
                                         std::string_view c = {});
  boost::asio::awaitable<bool> read_upstream(Stream& upstream, bool& eof);
  boost::asio::awaitable<bool> read_framed_body(Stream& upstream);
  static void drop_transfer_encoding(std::string& head);
  void reset_exchange();
  bool log_and_stop();
  void ensure_request_id();
  boost::asio::awaitable<void> tunnel(Stream& upstream);
  boost::asio::awaitable<void> copy_bytes(Stream& from, Stream& to, core::Buffer& buffer,
                                          uint64_t& counter);
  boost::asio::awaitable<void> send_local_reply(int status, std::string_view detail,
                                                observe::Flag flag,
                                                std::string_view extra_headers = {});
  boost::asio::awaitable<bool> write_downstream(std::string_view bytes);

  observe::Flag stream_failure_flag(observe::Flag peer_flag) const;
  void watch_client();
  void on_client_readable();
  void arm(Phase phase, core::Duration timeout);
  void refresh_stream_deadline();
  void disarm();
  void log_request();
  void record_span(const observe::AccessLogEntry& entry);
  bool request_is_idempotent() const;

  Worker& worker_;
  Stream downstream_;                // the client's connection (TLS when terminated here)
  tcp::socket* upstream_ = nullptr;  // the upstream connection in use, for timeouts
  // The config this connection's requests use; between requests it moves to the worker's
  // newest (a reload), so a keep-alive connection sees new routes.
  RuntimePtr runtime_;
  const ListenerRuntime* listener_;
  const config::Snapshot* config_;
  std::string peer_id_;            // the client's SPIFFE ID after a mutual-TLS handshake
  size_t peer_slot_ = SIZE_MAX;    // its metric label slot (observe::PeerIds)
  tls::IdentityPtr tls_identity_;  // the identity whose context this connection's TLS uses
  bool terminate_tls_ = false;     // a captured connection whose ClientHello is ours to answer
  std::string client_ip_;
  std::string client_address_;

  core::Buffer in_;            // from the client
  core::Buffer upstream_in_;   // from the upstream
  std::string out_;            // the upstream request head (kept for a retry)
  std::string response_head_;  // the downstream response head
  std::string decoded_;        // de-chunked payload for HTTP/1.0 clients
  std::string origin_target_;  // an absolute-form target's path when it had to gain a '/'
  std::string replay_body_;    // the request body as framed, read ahead so a try can repeat
  http::RequestParser request_parser_;
  http::ResponseParser response_parser_;

  // Deadline enforced by the ticker.
  Phase phase_ = Phase::kIdle;
  Clock::time_point deadline_ = Clock::time_point::max();
  // The route timeout runs beside the stream-idle deadline: it bounds the wait for the
  // response head, however busy the request body keeps the connection.
  Clock::time_point response_deadline_ = Clock::time_point::max();
  std::optional<Phase> timed_out_;
  bool response_head_pending_ = false;
  bool linger_ = false;   // drain unread client bytes before closing (after an error reply)
  bool aborted_ = false;  // the worker is shutting down
  // Client-abort detection while the request has no body to read: one readiness wait stays
  // pending on the client socket; it is checked only when it fires.
  bool awaiting_upstream_ = false;  // a body-less request waits on the upstream
  bool watching_client_ = false;
  bool client_wait_pending_ = false;
  bool client_gone_ = false;
  std::shared_ptr<Session*> self_;  // lets a late completion see that the session is gone
  // Captured connections: their one destination, and its idle keep-alive connection (a pool
  // of one: the destination is this connection's own).
  upstream::HostPtr captured_destination_;
  std::optional<Stream> captured_idle_;

  // The request in flight.
  struct Exchange {
    std::chrono::system_clock::time_point start_wall;
    Clock::time_point start;
    Clock::time_point upstream_sent;
    std::string method;
    std::string path;
    http::RequestId request_id{};
    std::string_view request_id_view;  // into request_id or method/path storage
    std::string incoming_request_id;   // when the client sent one
    http::TraceHop trace_hop{};
    http::OutgoingTraceHeaders trace_headers;
    const RouteRuntime* route = nullptr;
    size_t cluster = 0;              // the route's cluster, or the one its weighted split picked
    upstream::Host* host = nullptr;  // the current (or last) try's
    upstream::HostSetPtr host_set;   // keeps `host` alive across a DNS refresh; kept by
                                     // reset_exchange() for the connection's next request
    upstream::ClusterState* cluster_state = nullptr;  // null for built-in clusters
    bool replayable = false;        // the request may be sent again (method, body buffered)
    bool holds_retry = false;       // a retry unit of the cluster's budget is taken
    bool try_failed_host = false;   // the current try counts against its host (outliers)
    bool per_try_deadline = false;  // response_deadline_ is the try's, not the route's
    Clock::time_point route_deadline = Clock::time_point::max();
    core::Duration retry_delay{0};
    uint64_t body_remaining = 0;  // Content-Length bytes not yet read from the client
    bool head_request = false;
    bool client_keep_alive = true;
    bool http10 = false;
    bool expect_continue = false;
    http::BodyKind body = http::BodyKind::kNone;
    uint64_t body_length = 0;
    bool body_complete = true;  // the whole request body was read from the client
    bool response_started = false;
    int status = 0;
    int attempts = 0;
    int64_t upstream_us = -1;
    uint64_t bytes_received = 0;
    uint64_t bytes_sent = 0;
    observe::Flags flags = 0;
    bool close_after = false;              // close the downstream connection after this exchange
    bool abort_upstream_for_body = false;  // request body over limit or client gone
    bool upstream_reusable = false;        // the upstream connection may go back to the pool
    bool logged = false;
  } exchange_;
};

}  // namespace pillion::proxy
