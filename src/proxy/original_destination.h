#pragma once
// The address a redirected connection was sent to before iptables' REDIRECT rewrote it, read
// back from the kernel's connection tracking (SO_ORIGINAL_DST; IP6T_SO_ORIGINAL_DST for IPv6).
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>

namespace pillion::proxy {

// nullopt with `error` set when the connection was not redirected (it was made to the
// listener's own address) or the kernel cannot tell.
std::optional<boost::asio::ip::tcp::endpoint> original_destination(
    boost::asio::ip::tcp::socket& socket, std::string& error);

}  // namespace pillion::proxy
