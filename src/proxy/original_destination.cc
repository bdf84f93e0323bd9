#include "proxy/original_destination.h"

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace pillion::proxy {

std::optional<boost::asio::ip::tcp::endpoint> original_destination(
    boost::asio::ip::tcp::socket& socket, std::string& error) {
  boost::system::error_code ec;
  auto local = socket.local_endpoint(ec);
  if (ec) {
    error = ec.message();
    return std::nullopt;
  }
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  bool v6 = local.address().is_v6() && !local.address().to_v6().is_v4_mapped();
  int result =
      v6 ? ::getsockopt(socket.native_handle(), SOL_IPV6, IP6T_SO_ORIGINAL_DST, &storage, &length)
         : ::getsockopt(socket.native_handle(), SOL_IP, SO_ORIGINAL_DST, &storage, &length);
  if (result != 0) {
    error = errno == ENOENT ? std::string("no NAT record: the connection was not redirected")
                            : std::string(std::strerror(errno));
    return std::nullopt;
  }
  // The kernel fills the address but leaves `length` as given: size it by family.
  if (storage.ss_family == AF_INET) {
    length = sizeof(sockaddr_in);
  } else if (storage.ss_family == AF_INET6) {
    length = sizeof(sockaddr_in6);
  } else {
    error = "original destination of an unknown address family";
    return std::nullopt;
  }
  boost::asio::ip::tcp::endpoint original;
  std::memcpy(original.data(), &storage, length);
  original.resize(length);
  return original;
}

}  // namespace pillion::proxy
