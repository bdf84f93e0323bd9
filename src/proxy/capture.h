#pragma once
// Entry point for connections accepted on a transparent listener: find where they were going,
// detect what they speak, then hand them to an HTTP session or a TCP relay.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/worker.h"

namespace pillion::proxy {

boost::asio::awaitable<void> run_captured(Worker& worker, boost::asio::ip::tcp::socket socket,
                                          const ListenerRuntime& listener);

}  // namespace pillion::proxy
