#pragma once
// Client-side TLS session cache, one per worker (single-threaded: no locks).
//
// Outbound connections to the same upstream resume the previous session instead of doing a full
// handshake. TLS 1.3 sends its session tickets after the handshake, so sessions are not taken
// from the connection when it completes: the client context's new-session callback (installed by
// make_client_context) stores each ticket under the key that apply() attached to the SSL object.
//
//   cache.apply(stream.native_handle(), "10.0.0.7:8443|payments.prod");  // before the handshake
//   co_await stream.async_handshake(ssl::stream_base::client, ...);
//   cache.resumed(stream.native_handle());                                 // counts a hit
//
// A session is only offered to a connection made with the SSL_CTX that created it: after a
// certificate rotation the new client context starts with an empty slot for every key (a session
// from the old context would present the old identity's resumption state).
#include <openssl/ossl_typ.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

typedef struct ssl_session_st SSL_SESSION;  // as <openssl/ssl.h> declares it

namespace pillion::tls {

class SessionCache {
 public:
  static constexpr size_t kDefaultCapacity = 1024;

  explicit SessionCache(size_t capacity = kDefaultCapacity);
  ~SessionCache();
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  // Before connecting: offers the cached session for `key` (if any, and if it belongs to the
  // SSL's context) and tags `ssl` so that sessions it receives are stored under `key`. Call once
  // per SSL object. The SSL may outlive the cache (the tag holds a weak reference).
  void apply(SSL* ssl, const std::string& key);

  // After the handshake: true when the session was resumed; counts a hit or a miss.
  bool resumed(SSL* ssl);

  // Drops the entry for `key` (e.g. after a failed handshake that offered it).
  void forget(const std::string& key);
  void clear();

  size_t size() const;
  size_t capacity() const;
  uint64_t hits() const;
  uint64_t misses() const;
  uint64_t stored() const;  // sessions received and stored

  // The SSL_CTX new-session callback (SSL_CTX_sess_set_new_cb): stores `session` in the cache
  // that tagged `ssl` (a copy of it); returns 0: OpenSSL keeps its own reference.
  static int on_new_session(SSL* ssl, SSL_SESSION* session);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// True when the handshake on `ssl` resumed a session (SSL_session_reused).
bool session_resumed(SSL* ssl);

}  // namespace pillion::tls
