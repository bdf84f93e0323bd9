#pragma once
// Entry point for connections accepted on a transparent listener: find where they were going,
// detect what they speak, then hand them to an HTTP session or a TCP relay.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/worker.h"

namespace pillion::proxy {

// `listener`: the index of its listener in the worker's runtime. The coroutine holds the runtime
// current when it starts: a config reload while it detects must not free what it reads.
boost::asio::awaitable<void> run_captured(Worker& worker, boost::asio::ip::tcp::socket socket,
                                          size_t listener);

}  // namespace pillion::proxy
