#pragma once
// A TCP connection in plain text or under TLS. The session reads and writes through this, so
// one code path serves both; the plain case costs one predictable branch per operation. The
// templates return what the socket's own operations return (the same type for both branches
// with the same completion token), so no extra coroutine frame sits between.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <utility>

namespace pillion::proxy {

class Stream {
 public:
  using tcp = boost::asio::ip::tcp;
  using TlsStream = boost::asio::ssl::stream<tcp::socket>;

  explicit Stream(tcp::socket socket) : plain_(std::move(socket)) {}

  // The TCP socket underneath: connect, cancel, close, options, readiness.
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool is_open() { return socket().is_open(); }
  bool secure() const { return tls_.has_value(); }
  TlsStream* tls() { return tls_ ? &*tls_ : nullptr; }

  // From now on the bytes go through TLS (the handshake is the caller's next step).
  TlsStream& start_tls(boost::asio::ssl::context& context) {
    tls_.emplace(std::move(*plain_), context);
    plain_.reset();
    return *tls_;
  }

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    if (tls_) {
      return tls_->async_read_some(buffers, std::forward<Token>(token));
    }
    return plain_->async_read_some(buffers, std::forward<Token>(token));
  }

  template <typename Buffers, typename Token>
  auto async_write(const Buffers& buffers, Token&& token) {
    if (tls_) {
      return boost::asio::async_write(*tls_, buffers, std::forward<Token>(token));
    }
    return boost::asio::async_write(*plain_, buffers, std::forward<Token>(token));
  }

 private:
  std::optional<tcp::socket> plain_;
  std::optional<TlsStream> tls_;
};

}  // namespace pillion::proxy
